"""SIMS ID, as the sandbox emulates it: the token endpoint, discovery and the JWKS.

The token endpoint grants ``client_credentials`` for the ``fngapi`` scope only. Clients
authenticate with ``client_secret_basic`` (id and secret each form-urlencoded before they
are joined, RFC 6749 §2.3.1 — and decoded so here, so a client that skips the encoding
is refused), ``client_secret_post``, or ``private_key_jwt`` (RFC 7523).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any, Final
from urllib.parse import parse_qsl, unquote_plus

from aiohttp import web

from gateway.sandbox.appkeys import SANDBOX_STATE, SIMSID
from gateway.sandbox.errors import SandboxError, TokenError
from gateway.sandbox.simsid import tokens

ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
AUTH_METHODS: Final = ("client_secret_basic", "client_secret_post", "private_key_jwt")

_MAX_FORM_BYTES: Final = 64 * 1024
_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(SandboxError):
    """A refusal with the OAuth error body RFC 6749 §5.2 prescribes."""

    def __init__(
        self, status: int, error: str, description: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or {}

    def response(self) -> web.Response:
        body = {"error": self.error, "error_description": self.description}
        return web.Response(
            status=self.status,
            text=json.dumps(body),
            content_type="application/json",
            headers={**_NO_STORE, **self.headers},
        )


def _invalid_client(description: str, *, basic: bool = False) -> OAuthError:
    headers = {"WWW-Authenticate": 'Basic realm="SIMS ID"'} if basic else None
    return OAuthError(401, "invalid_client", description, headers=headers)


def token_endpoint_url(request: web.Request) -> str:
    return request.app[SIMSID].issuer_for(request) + "/connect/token"


async def token(request: web.Request) -> web.Response:
    """``POST /connect/token``: an access token for a vendor, by client credentials."""
    state = request.app[SANDBOX_STATE]
    state.stats.token_requests += 1
    if request.method != "POST":
        raise web.HTTPMethodNotAllowed(
            request.method,
            ["POST"],
            text=json.dumps(
                {"error": "invalid_request", "error_description": "the token endpoint takes POST"}
            ),
            content_type="application/json",
        )
    try:
        form = await _read_form(request)
        client_id = await _authenticate(request, form)
        _check_grant(form)
    except OAuthError as exc:
        return exc.response()
    settings = request.app[SIMSID]
    access_token = await state.simsid.issue_token(
        client_id, issuer=settings.issuer_for(request), lifetime=settings.token_lifetime
    )
    state.stats.tokens_issued += 1
    body = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": settings.token_lifetime,
        "scope": tokens.FNG_SCOPE,
    }
    return web.json_response(body, headers=_NO_STORE)


async def _read_form(request: web.Request) -> dict[str, str]:
    if request.content_type != "application/x-www-form-urlencoded":
        raise OAuthError(
            400, "invalid_request", "the body must be application/x-www-form-urlencoded"
        )
    body = await request.read()
    if len(body) > _MAX_FORM_BYTES:
        raise OAuthError(400, "invalid_request", "the request body is too large")
    try:
        pairs = parse_qsl(
            body.decode("ascii"), keep_blank_values=True, max_num_fields=32, errors="strict"
        )
    except (UnicodeError, ValueError):
        raise OAuthError(400, "invalid_request", "the form body cannot be decoded") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError(400, "invalid_request", f"the parameter {name!r} is repeated")
        form[name] = value
    return form


def _check_grant(form: dict[str, str]) -> None:
    grant_type = form.get("grant_type")
    if not grant_type:
        raise OAuthError(400, "invalid_request", "grant_type is required")
    if grant_type != "client_credentials":
        raise OAuthError(400, "unsupported_grant_type", "only client_credentials is granted")
    scope = form.get("scope", "")
    if not scope.strip():
        raise OAuthError(400, "invalid_request", "scope is required")
    if set(scope.split()) != {tokens.FNG_SCOPE}:
        raise OAuthError(400, "invalid_scope", f"the only scope granted is {tokens.FNG_SCOPE}")


async def _authenticate(request: web.Request, form: dict[str, str]) -> str:
    """The client id, once its credentials are proven; OAuthError otherwise."""
    header = request.headers.get("Authorization")
    used = [
        name
        for name, present in (
            ("client_secret_basic", header is not None),
            ("client_secret_post", "client_secret" in form),
            ("private_key_jwt", "client_assertion" in form or "client_assertion_type" in form),
        )
        if present
    ]
    if not used:
        raise _invalid_client("no client authentication was sent")
    if len(used) > 1:
        raise OAuthError(
            400, "invalid_request", "more than one client authentication method was used"
        )
    state = request.app[SANDBOX_STATE]
    if header is not None:
        client_id, secret = _basic_credentials(header)
        if form.get("client_id", client_id) != client_id:
            raise _invalid_client("client_id differs from the Basic credentials", basic=True)
        if not await state.simsid.client_secret_matches(client_id, secret):
            raise _invalid_client("the client id or secret is wrong", basic=True)
        return client_id
    if used == ["client_secret_post"]:
        client_id = form.get("client_id", "")
        if not client_id or not await state.simsid.client_secret_matches(
            client_id, form["client_secret"]
        ):
            raise _invalid_client("the client id or secret is wrong")
        return client_id
    return await _authenticate_assertion(request, form)


def _basic_credentials(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise _invalid_client("the Authorization header must use the Basic scheme", basic=True)
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        raw_id, colon, raw_secret = decoded.partition(":")
        # RFC 6749 §2.3.1: each part was form-urlencoded before they were joined.
        client_id = unquote_plus(raw_id, errors="strict")
        secret = unquote_plus(raw_secret, errors="strict")
    except (binascii.Error, UnicodeError):
        raise _invalid_client("the Basic credentials cannot be decoded", basic=True) from None
    if not colon or not client_id:
        raise _invalid_client("the Basic credentials have no client id or secret", basic=True)
    return client_id, secret


async def _authenticate_assertion(request: web.Request, form: dict[str, str]) -> str:
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise _invalid_client(f"client_assertion_type must be {ASSERTION_TYPE}")
    assertion = form.get("client_assertion", "")
    state = request.app[SANDBOX_STATE]
    try:
        client_id = form.get("client_id") or tokens.assertion_issuer(assertion)
        key = await state.simsid.client_public_key(client_id)
        if key is None:
            raise _invalid_client("the client has no registered public key")
        jti, expires_at = tokens.verify_client_assertion(
            assertion,
            key,
            client_id=client_id,
            audience=token_endpoint_url(request),
            now=int(time.time()),
        )
    except TokenError as exc:
        raise _invalid_client(str(exc)) from None
    if not await state.simsid.remember_assertion(client_id, jti, expires_at):
        raise _invalid_client("the client assertion has been used before")
    return client_id


async def discovery(request: web.Request) -> web.Response:
    """``GET /.well-known/openid-configuration``."""
    issuer = request.app[SIMSID].issuer_for(request)
    document: dict[str, Any] = {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/.well-known/openid-configuration/jwks",
        "token_endpoint": f"{issuer}/connect/token",
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": sorted(
            {alg for algs in tokens.ASSERTION_ALGORITHMS.values() for alg in algs}
        ),
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": [tokens.FNG_SCOPE],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [tokens.ACCESS_TOKEN_ALGORITHM],
        "claims_supported": ["iss", "aud", "client_id", "scope", "iat", "nbf", "exp", "jti"],
    }
    return web.json_response(document)


async def jwks(request: web.Request) -> web.Response:
    """``GET /.well-known/openid-configuration/jwks``: the keys tokens are signed with."""
    return web.json_response(request.app[SANDBOX_STATE].simsid.jwks())
