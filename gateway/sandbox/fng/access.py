"""What every FNG call goes through: its checks, its body, and the problems it answers.

Every call is checked as FNG checks it: a SIMS ID bearer token (signature, issuer,
audience, expiry, not revoked) or 401; then the ``fngapi`` scope, the ``scope`` header and
the two keys of a database set up for the token's client, or 403. Refusals are RFC 9457
problems.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web
from lxml import etree

from gateway.sandbox import responses
from gateway.sandbox.appkeys import SANDBOX_STATE, SIMSID
from gateway.sandbox.errors import DocumentRefused, DocumentTooLarge, TokenError
from gateway.sandbox.parsing import read_xml
from gateway.sandbox.simsid import tokens
from gateway.xmlsafe import Limits

#: Generous: the sandbox must take whatever a real payment system could send.
LIMITS: Final = Limits(
    max_bytes=32 * 1024 * 1024,
    max_depth=64,
    max_elements=2_000_000,
    max_attributes=40_000_000,
)

_XML_TYPES: Final = frozenset({"application/xml", "text/xml"})


def refusal(
    exc_class: type[web.HTTPException], detail: str, *, challenge: str | None = None
) -> web.HTTPException:
    headers = {"WWW-Authenticate": challenge} if challenge else None
    return exc_class(
        text=responses.problem_text(exc_class.status_code, detail),
        content_type=responses.PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def _invalid_token(detail: str) -> web.HTTPException:
    quoted = detail.replace("\\", "").replace('"', "'")
    challenge = f'Bearer error="invalid_token", error_description="{quoted}"'
    return refusal(web.HTTPUnauthorized, detail, challenge=challenge)


async def authorize(request: web.Request, operation: str) -> tuple[int, str]:
    """The database and client a call is for, counted as the database's ``operation``;
    raises 401 or 403 otherwise."""
    state = request.app[SANDBOX_STATE]
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _invalid_token("a SIMS ID bearer token is required")
    try:
        claims = await state.simsid.verify_token(
            token.strip(), issuer=request.app[SIMSID].issuer_for(request)
        )
    except TokenError as exc:
        raise _invalid_token(str(exc)) from None
    if tokens.FNG_SCOPE not in claims.scopes:
        raise refusal(
            web.HTTPForbidden,
            f"the token lacks the {tokens.FNG_SCOPE} scope",
            challenge=f'Bearer error="insufficient_scope", scope="{tokens.FNG_SCOPE}"',
        )
    if request.headers.get("scope", "").strip() != tokens.FNG_SCOPE:
        raise refusal(web.HTTPForbidden, f"the scope header must be {tokens.FNG_SCOPE}")
    psk = request.headers.get("X-PSK", "")
    client_key = request.headers.get("X-Client-Id", "")
    database_id = await state.databases.find(claims.client_id, psk, client_key)
    if database_id is None:
        raise refusal(
            web.HTTPForbidden,
            "X-PSK and X-Client-Id do not name a database set up for this client",
        )
    state.stats.reached(database_id, operation)
    return database_id, claims.client_id


async def xml_body(request: web.Request) -> bytes:
    content_type = request.content_type
    if content_type not in _XML_TYPES and not content_type.endswith("+xml"):
        raise refusal(web.HTTPUnsupportedMediaType, "the body must be application/xml")
    return await request.read()


async def xml_document(request: web.Request) -> tuple[bytes, etree._Element]:
    """The request's XML body and its root, parsed safely; 415, 413 or 400 problems
    otherwise."""
    body = await xml_body(request)
    try:
        return body, read_xml(body, LIMITS)
    except DocumentTooLarge as exc:
        raise refusal(web.HTTPRequestEntityTooLarge, exc.message) from None
    except DocumentRefused as exc:
        raise refusal(web.HTTPBadRequest, exc.message) from None
