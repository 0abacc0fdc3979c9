"""The sandbox's control API, under ``/_sandbox``.

It is open to anyone who can reach the port, on purpose: the sandbox is a test double
and a quick start, never a place for real schools' data. Tests and integrators use it to
inject faults, revoke tokens, change the token lifetime, and observe what was posted.

``PUT|GET|DELETE /_sandbox/faults``        the fault rules (see :mod:`.faults`)
``POST /_sandbox/revoke-tokens``           refuse every token issued so far
``GET|PUT /_sandbox/simsid``               ``{"token_lifetime": seconds}`` of new tokens
``GET /_sandbox/stats``                    counters; ``POST /_sandbox/stats/reset`` zeroes them
``GET /_sandbox/journals``                 posted submissions with their lines
``GET /_sandbox/audit-messages``           audit notes received
``GET /_sandbox/budgets``                  imported budgets with their allocations
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.sandbox import documents
from gateway.sandbox.appkeys import FAULTS, SANDBOX_STATE, SIMSID
from gateway.sandbox.faults import FaultRule

_MAX_TOKEN_LIFETIME = 7 * 24 * 3600


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (ValueError, UnicodeError):
        raise web.HTTPBadRequest(
            text=documents.problem_text(400, "the body must be JSON"),
            content_type=documents.PROBLEM_CONTENT_TYPE,
        ) from None


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response({"rules": request.app[FAULTS].as_json()})


async def put_faults(request: web.Request) -> web.Response:
    data = await _json_body(request)
    raw_rules = data.get("rules") if isinstance(data, dict) else None
    if not isinstance(raw_rules, list):
        return documents.problem(400, 'the body must be {"rules": [...]}')
    try:
        rules = [FaultRule.from_json(item) for item in raw_rules]
    except ValueError as exc:
        return documents.problem(400, str(exc))
    board = request.app[FAULTS]
    board.replace(rules)
    return web.json_response({"rules": board.as_json()})


async def delete_faults(request: web.Request) -> web.Response:
    request.app[FAULTS].clear()
    return web.json_response({"rules": []})


async def revoke_tokens(request: web.Request) -> web.Response:
    revoked = await request.app[SANDBOX_STATE].revoke_tokens()
    return web.json_response({"revoked": revoked})


async def get_simsid(request: web.Request) -> web.Response:
    return web.json_response({"token_lifetime": request.app[SIMSID].token_lifetime})


async def put_simsid(request: web.Request) -> web.Response:
    data = await _json_body(request)
    lifetime = data.get("token_lifetime") if isinstance(data, dict) else None
    if (
        isinstance(lifetime, bool)
        or not isinstance(lifetime, int)
        or not 1 <= lifetime <= _MAX_TOKEN_LIFETIME
    ):
        return documents.problem(400, f"token_lifetime must be seconds, 1 to {_MAX_TOKEN_LIFETIME}")
    request.app[SIMSID].token_lifetime = lifetime
    return web.json_response({"token_lifetime": lifetime})


async def get_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[SANDBOX_STATE].stats.as_dict())


async def reset_stats(request: web.Request) -> web.Response:
    stats = request.app[SANDBOX_STATE].stats
    stats.reset()
    return web.json_response(stats.as_dict())


async def get_journals(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SANDBOX_STATE].journals())


async def get_audit_messages(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SANDBOX_STATE].audit_messages())


async def get_budgets(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SANDBOX_STATE].budgets())


def add_routes(app: web.Application, prefix: str = "/_sandbox") -> None:
    router = app.router
    router.add_get(f"{prefix}/faults", get_faults, allow_head=False)
    router.add_put(f"{prefix}/faults", put_faults)
    router.add_delete(f"{prefix}/faults", delete_faults)
    router.add_post(f"{prefix}/revoke-tokens", revoke_tokens)
    router.add_get(f"{prefix}/simsid", get_simsid, allow_head=False)
    router.add_put(f"{prefix}/simsid", put_simsid)
    router.add_get(f"{prefix}/stats", get_stats, allow_head=False)
    router.add_post(f"{prefix}/stats/reset", reset_stats)
    router.add_get(f"{prefix}/journals", get_journals, allow_head=False)
    router.add_get(f"{prefix}/audit-messages", get_audit_messages, allow_head=False)
    router.add_get(f"{prefix}/budgets", get_budgets, allow_head=False)
