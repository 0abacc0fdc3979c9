"""The admin API's errors, each an ``application/problem+json`` document with its status.

The admin API's own errors extend the gateway's tree and are drawn in it, marked
(``gateway.errors``): ``InvalidInput`` (422), ``BodyTooLarge`` (413), ``UnsupportedMediaType``
(415), ``Unauthenticated`` (401), ``Conflict`` (409) and ``HttpError`` (404, 405).

A ``RegistryError`` reaching the API is a conflict: the API checks its inputs against the
registry's rules before any service function sees them, so what a service still refuses is
a clash with what the registry holds (a name taken, a key already pending, none to
promote). Unexpected exceptions are left to the gateway's outer middleware, which logs them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import ValidationError

from gateway.errors import (
    AuthenticationFailed,
    CallerError,
    GatewayError,
    MalformedRequest,
    RegistryError,
)
from gateway.observability import context
from gateway.problems import PROBLEM_JSON, problem_json

log = logging.getLogger("gateway.admin")

REALM = 'realm="fng-gateway admin"'


class InvalidInput(MalformedRequest):
    code = "INVALID_INPUT"
    http_status = 422

    def __init__(self, message: str, errors: Sequence[dict[str, Any]]) -> None:
        super().__init__(message)
        self.errors = list(errors)

    @classmethod
    def from_validation(cls, where: str, error: ValidationError) -> InvalidInput:
        """The failures, without the values that failed (a value may be a secret)."""
        errors = [
            {"loc": [where, *item["loc"]], "msg": item["msg"], "type": item["type"]}
            for item in error.errors(include_url=False, include_context=False, include_input=False)
        ]
        return cls(f"the request's {where} is not valid", errors)


class BodyTooLarge(MalformedRequest):
    code = "BODY_TOO_LARGE"
    http_status = 413


class UnsupportedMediaType(MalformedRequest):
    code = "UNSUPPORTED_MEDIA_TYPE"
    http_status = 415


class Conflict(CallerError):
    exception_type = "ConflictException"
    code = "CONFLICT"
    http_status = 409


class Unauthenticated(AuthenticationFailed):
    """No bearer token, or one that is not a live operator's (RFC 6750's challenge)."""

    def __init__(self, message: str, *, token_given: bool) -> None:
        super().__init__(message)
        self.challenge = (
            f'Bearer {REALM}, error="invalid_token"' if token_given else f"Bearer {REALM}"
        )


class HttpError(CallerError):
    """aiohttp's own refusals (no such route, a method the route lacks), as problems."""

    def __init__(self, exc: web.HTTPException) -> None:
        super().__init__(exc.reason, code=exc.reason.upper().replace(" ", "_"))
        self.http_status = exc.status  # type: ignore[misc]
        self.headers = {name: exc.headers[name] for name in ("Allow",) if name in exc.headers}


def problem_response(error: GatewayError, headers: dict[str, str] | None = None) -> web.Response:
    extensions = {"errors": error.errors} if isinstance(error, InvalidInput) else {}
    response = web.Response(
        status=error.http_status,
        body=problem_json(error, context.request_id.get(), **extensions),
        content_type=PROBLEM_JSON,
    )
    response.headers.update(headers or {})
    return response


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every gateway error, and aiohttp's 4xx refusals, as a problem document."""
    headers: dict[str, str] = {}
    try:
        return await handler(request)
    except RegistryError as exc:
        error: GatewayError = Conflict(exc.message)
    except GatewayError as exc:
        error = exc
        if error.http_status == 401:
            headers["WWW-Authenticate"] = (
                error.challenge if isinstance(error, Unauthenticated) else f"Bearer {REALM}"
            )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        http = HttpError(exc)
        error, headers = http, http.headers
    level = logging.INFO if error.caller_fault else logging.WARNING
    log.log(level, "%s", error.fault_string, extra={"code": error.code, "path": request.path})
    return problem_response(error, headers)
