"""The sandbox application: SIMS ID at the root, FNG under ``/fng``, supplier portals under
``/portals``, control under ``/_sandbox``."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.sandbox import control
from gateway.sandbox.appkeys import FAULTS, SANDBOX_STATE, SCHEMAS, SIMSID
from gateway.sandbox.fng import budget_api, eproc_api, journal_api
from gateway.sandbox.portal import service as portal_service
from gateway.sandbox.simsid import endpoints as simsid
from gateway.sandbox.simsid.settings import SimsIdSettings
from gateway.sandbox.state import SandboxState
from gateway.sandbox.switches import FaultBoard, fault_middleware
from gateway.xmlsafe import SchemaRegistry, shipped_schemas_dir

#: The largest request body accepted (journals can be long).
MAX_BODY = 32 * 1024 * 1024

SCHEMA_NAMES = ("ejournal/ControlAccounts.xsd", "budget/BudgetImport.xsd")


def _finish_despite_disconnect(app: web.Application) -> Middleware:
    """Let a request's work (and the faults' delay before it) run to its end when the caller
    goes away, as real services do: a journal whose caller died while FNG held it is still
    committed. Servers that cancel handlers on disconnect (aiohttp's test server does)
    would otherwise hide that case. What is left running at shutdown is cancelled."""
    running: set[asyncio.Task[web.StreamResponse]] = set()

    async def cancel_running(_app: web.Application) -> None:
        tasks = list(running)
        for task in tasks:
            task.cancel()
        # What a cancelled request raises as it ends (its caller long gone, a connection
        # lost mid-read) concerns nobody at shutdown.
        await asyncio.gather(*tasks, return_exceptions=True)

    app.on_cleanup.append(cancel_running)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        task = asyncio.ensure_future(handler(request))
        running.add(task)
        task.add_done_callback(running.discard)
        return await asyncio.shield(task)

    return middleware


def create_sandbox_app(
    state: SandboxState, *, token_lifetime: int = 3600, issuer: str | None = None
) -> web.Application:
    """Build the sandbox over an open state; the caller opens and closes the state.

    ``issuer`` fixes the tokens' issuer; without it the issuer is the scheme and host each
    request was sent to, so the sandbox works on whatever port it is given.
    """
    if token_lifetime < 1:
        raise ValueError("token_lifetime must be at least one second")
    board = FaultBoard()
    app = web.Application(client_max_size=MAX_BODY)
    app.middlewares.extend((_finish_despite_disconnect(app), fault_middleware(board)))
    app[SANDBOX_STATE] = state
    app[FAULTS] = board
    app[SIMSID] = SimsIdSettings(
        token_lifetime=token_lifetime, issuer=issuer.rstrip("/") if issuer else None
    )
    schemas_dir = shipped_schemas_dir()
    app[SCHEMAS] = SchemaRegistry(schemas_dir, SCHEMA_NAMES)

    app.router.add_route("*", "/connect/token", simsid.token)
    app.router.add_get("/.well-known/openid-configuration", simsid.discovery)
    app.router.add_get("/.well-known/openid-configuration/jwks", simsid.jwks)
    journal_api.add_routes(app)
    budget_api.add_routes(app)
    eproc_api.add_routes(app)
    portal_service.add_routes(app, schemas_dir)
    control.add_routes(app)
    return app
