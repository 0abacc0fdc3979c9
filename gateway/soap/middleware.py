"""The outer middlewares: a request id for every call, and every error as the caller expects it.

A gateway error becomes a SOAP fault in the caller's SOAP version on the SOAP routes, an
RFC 7807 ``application/problem+xml`` document on the plain XML routes, and
``application/problem+json`` elsewhere. This is the only catch-all in the gateway: an
unexpected exception is logged with its traceback and answered as an internal error,
without its details.
"""

from __future__ import annotations

import logging
from xml.sax.saxutils import escape

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import ns
from gateway.errors import GatewayError
from gateway.observability import context
from gateway.problems import PROBLEM_JSON, problem_json
from gateway.soap.envelope import fault, fault_status
from gateway.soap.service import PLAIN_XML, SOAP_VERSION

log = logging.getLogger("gateway.errors")


class InternalError(GatewayError):
    code = "INTERNAL_ERROR"


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = context.new_request_id(request.headers.get("X-Request-Id"))
    context.request_id.set(request_id)
    context.school.set("-")
    response = await handler(request)
    response.headers["X-Request-Id"] = request_id
    return response


@web.middleware
async def error_responses(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as exc:
        error = exc
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unexpected error", extra={"path": request.path})
        error = InternalError("the gateway failed to handle the request")
    level = logging.INFO if error.caller_fault else logging.WARNING
    log.log(level, "%s", error.fault_string, extra={"code": error.code, "path": request.path})
    return error_response(request, error)


def error_response(request: web.Request, error: GatewayError) -> web.Response:
    request_id = context.request_id.get()
    headers = {"X-Request-Id": request_id}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    version = request.get(SOAP_VERSION)
    if version is not None:
        headers["Content-Type"] = version.content_type
        return web.Response(
            status=fault_status(version, error),
            body=fault(version, error, request_id),
            headers=headers,
        )
    if request.get(PLAIN_XML):
        if error.http_status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="fng-gateway"'
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><problem xmlns="{ns.PROBLEM}">'
            f"<type>urn:fng-gateway:error:{escape(error.code)}</type>"
            f"<title>{escape(error.fault_string)}</title><status>{error.http_status}</status>"
            f"<code>{escape(error.code)}</code><requestId>{escape(request_id)}</requestId>"
            "</problem>"
        )
        headers["Content-Type"] = "application/problem+xml; charset=utf-8"
        return web.Response(status=error.http_status, body=body.encode(), headers=headers)
    headers["Content-Type"] = PROBLEM_JSON
    return web.Response(
        status=error.http_status, body=problem_json(error, request_id), headers=headers
    )
