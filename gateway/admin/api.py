"""The operators' HTTP API: a sub-application mounted at ``/admin/`` when ``admin.enabled``.

Every operation but ``GET /admin/openapi.json`` needs ``Authorization: Bearer <token>``, a
token from ``fng-gateway admin-tokens create NAME``; the change is audited as
``admin:NAME``. The handlers call the same service functions as the command line
(``gateway.cli.registry``), and their signatures are the route tables the OpenAPI document is
made from (``gateway.admin.routing``): the admin package's own (``gateway.admin.operations``)
and those capability packages contribute (``gateway.app`` hands them over). Secrets travel
in JSON bodies, never in URLs; a response shows a secret only when it was made here (a
generated password or key, once).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.admin.context import Context
from gateway.admin.openapi import openapi
from gateway.admin.operations import api
from gateway.admin.problems import Unauthenticated, problems
from gateway.admin.routing import Endpoint, RouteTable
from gateway.admin.tokens import AdminTokens
from gateway.config import AdminSettings, KeySettings
from gateway.store import Store
from gateway.tenancy.callers import CallerResolver
from gateway.tenancy.secrets import SecretBox

#: The operator a request is authenticated as.
OPERATOR: Final = web.RequestKey("operator", str)
#: A token's alphabet (``secrets.token_urlsafe`` after a prefix): anything else is not one.
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{1,200}")
_BEARER: Final = re.compile(r"Bearer +(\S+) *", re.IGNORECASE)


def _version() -> str:
    try:
        return version("fng-gateway")
    except PackageNotFoundError:
        return "0"


def document(contributed: Sequence[RouteTable] = (), prefix: str = "/admin") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API mounted at ``prefix``, with the operations of
    the ``contributed`` route tables after the admin package's own."""
    tables = [api, *contributed]
    return openapi(
        [endpoint for table in tables for endpoint in table.endpoints],
        title="fng-gateway admin API",
        version=_version(),
        server=prefix,
        tags={name: text for table in tables for name, text in table.tags.items()}
        | {"meta": "This document."},
        public={
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document (no token needed).",
                    "tags": ["meta"],
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI 3.1 document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            }
        },
    )


def create_admin_app(
    settings: AdminSettings,
    keys: KeySettings,
    *,
    store: web.AppKey[Store],
    box: web.AppKey[SecretBox],
    callers: web.AppKey[CallerResolver],
    contributed: Sequence[RouteTable] = (),
    prefix: str = "/admin",
) -> web.Application:
    """The sub-application: the admin package's operations and the ``contributed`` ones. The
    store, master keys and caller resolver are the parent's, named by its keys (they open
    when the parent starts)."""

    @web.middleware
    async def bearer(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.route.name == "openapi":
            return await handler(request)
        header = request.headers.get("Authorization")
        if header is None:
            raise Unauthenticated("an operator's bearer token is needed", token_given=False)
        found = _BEARER.fullmatch(header)
        token = found.group(1) if found else None
        name = None
        if token is not None and _TOKEN.fullmatch(token):
            name = await AdminTokens(request.config_dict[store], "admin").verify(token)
        if name is None:
            raise Unauthenticated("the bearer token is not a live operator's", token_given=True)
        request[OPERATOR] = name
        response = await handler(request)
        if request.method != "GET" and response.status < 400:
            # This replica sees the change at once; others within auth.registry_cache_seconds.
            request.config_dict[callers].forget()
        return response

    app = web.Application(middlewares=[problems, bearer])
    body = json.dumps(document(contributed, prefix), indent=1).encode()

    async def serve_document(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app.router.add_get("/openapi.json", serve_document, name="openapi")
    for endpoint in [endpoint for table in (api, *contributed) for endpoint in table.endpoints]:
        app.router.add_route(
            endpoint.method, endpoint.path, _handler(endpoint, store, box, keys, settings)
        )
    return app


def _handler(
    endpoint: Endpoint,
    store: web.AppKey[Store],
    box: web.AppKey[SecretBox],
    keys: KeySettings,
    settings: AdminSettings,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.Response:
        context = Context(
            store=request.config_dict[store],
            box=request.config_dict[box],
            actor=f"admin:{request[OPERATOR]}"[:100],
            keys=keys,
        )
        return await endpoint(context, request, settings.max_body_bytes)

    handle.__name__ = endpoint.name
    return handle
