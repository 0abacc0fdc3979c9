"""The sandbox's control API, under ``/_sandbox``.

It is open to anyone who can reach the port, on purpose: the sandbox is a test double
and a quick start, never a place for real schools' data. Tests and integrators use it to
inject faults, revoke tokens, change the token lifetime, and observe what was posted.

``PUT|GET|DELETE /_sandbox/faults``        the fault rules (see :mod:`.switches`)
``POST /_sandbox/revoke-tokens``           refuse every token issued so far
``GET|PUT /_sandbox/simsid``               ``{"token_lifetime": seconds}`` of new tokens
``GET /_sandbox/stats``                    counters; ``POST /_sandbox/stats/reset`` zeroes them
``GET /_sandbox/stats/databases``          per database id, the calls that reached it, by
    operation (zeroed with the other counters)
``GET /_sandbox/journals``                 posted submissions with their lines
``GET /_sandbox/audit-messages``           audit notes received
``GET /_sandbox/budgets``                  imported budgets with their allocations

eProcurement (``?database_id=`` narrows the two lists to one database):

``GET /_sandbox/eproc/documents``                 documents delivered to FNG
``GET|POST /_sandbox/eproc/authorised-orders``    orders authorised in FNG (pending or sent);
    POST ``{"database_id", "supplier_duns", "order_xml"?, "order_id"?, "buyer_duns"?,
    "source"?, "document_id"?}`` (the last two: the content order it was made from)
``GET|POST /_sandbox/portals``                    portal names; POST ``{"name", "username",
    "password", "supplier_duns"}`` opens one
``GET /_sandbox/portals/{name}``                  account, documents, orders, counters
``POST /_sandbox/portals/{name}/documents``       ``{"type", "xml", "uuid"?, "created"?}``
``PUT /_sandbox/portals/{name}/switches``         ``{"refuse_auth": bool}``
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.sandbox import responses
from gateway.sandbox.appkeys import FAULTS, SANDBOX_STATE, SIMSID
from gateway.sandbox.switches import FaultRule

_MAX_TOKEN_LIFETIME = 7 * 24 * 3600


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (ValueError, UnicodeError):
        raise web.HTTPBadRequest(
            text=responses.problem_text(400, "the body must be JSON"),
            content_type=responses.PROBLEM_CONTENT_TYPE,
        ) from None


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response({"rules": request.app[FAULTS].as_json()})


async def put_faults(request: web.Request) -> web.Response:
    data = await _json_body(request)
    raw_rules = data.get("rules") if isinstance(data, dict) else None
    if not isinstance(raw_rules, list):
        return responses.problem(400, 'the body must be {"rules": [...]}')
    try:
        rules = [FaultRule.from_json(item) for item in raw_rules]
    except ValueError as exc:
        return responses.problem(400, str(exc))
    board = request.app[FAULTS]
    board.replace(rules)
    return web.json_response({"rules": board.as_json()})


async def delete_faults(request: web.Request) -> web.Response:
    request.app[FAULTS].clear()
    return web.json_response({"rules": []})


async def revoke_tokens(request: web.Request) -> web.Response:
    revoked = await request.app[SANDBOX_STATE].simsid.revoke_tokens()
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
        return responses.problem(400, f"token_lifetime must be seconds, 1 to {_MAX_TOKEN_LIFETIME}")
    request.app[SIMSID].token_lifetime = lifetime
    return web.json_response({"token_lifetime": lifetime})


async def get_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[SANDBOX_STATE].stats.as_dict())


async def get_database_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[SANDBOX_STATE].stats.databases_as_dict())


async def reset_stats(request: web.Request) -> web.Response:
    stats = request.app[SANDBOX_STATE].stats
    stats.reset()
    return web.json_response(stats.as_dict())


async def get_journals(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SANDBOX_STATE].journals.posted())


async def get_audit_messages(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SANDBOX_STATE].journals.audit_messages())


async def get_budgets(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SANDBOX_STATE].budgets.imported())


def _database_filter(request: web.Request) -> int | None:
    text = request.query.get("database_id")
    if text is None:
        return None
    if not text.isdigit():
        raise _bad_request("database_id must be an integer")
    return int(text)


def _bad_request(detail: str) -> web.HTTPException:
    return web.HTTPBadRequest(
        text=responses.problem_text(400, detail), content_type=responses.PROBLEM_CONTENT_TYPE
    )


def _not_found(detail: str) -> web.HTTPException:
    return web.HTTPNotFound(
        text=responses.problem_text(404, detail), content_type=responses.PROBLEM_CONTENT_TYPE
    )


def _strings(
    data: Any, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, str]:
    """The named string fields of a JSON object; 400 if one is missing or not a string."""
    if not isinstance(data, dict):
        raise _bad_request("the body must be a JSON object")
    unknown = set(data) - set(required) - set(optional)
    if unknown:
        raise _bad_request(f"unknown fields: {', '.join(sorted(unknown))}")
    found: dict[str, str] = {}
    for name in (*required, *optional):
        value = data.get(name)
        if value is None and name in optional:
            continue
        if not isinstance(value, str):
            raise _bad_request(f"{name} must be a string")
        found[name] = value
    return found


async def get_eproc_documents(request: web.Request) -> web.Response:
    state = request.app[SANDBOX_STATE]
    return web.json_response(await state.procurement.documents(_database_filter(request)))


async def get_authorised_orders(request: web.Request) -> web.Response:
    state = request.app[SANDBOX_STATE]
    return web.json_response(await state.procurement.authorised_orders(_database_filter(request)))


async def post_authorised_order(request: web.Request) -> web.Response:
    data = await _json_body(request)
    database_id = data.pop("database_id", None) if isinstance(data, dict) else None
    if isinstance(database_id, bool) or not isinstance(database_id, int):
        return responses.problem(400, "database_id must be an integer")
    fields = _strings(
        data,
        ("supplier_duns",),
        ("order_xml", "order_id", "buyer_duns", "source", "document_id"),
    )
    if ("source" in fields) != ("document_id" in fields):
        return responses.problem(400, "source and document_id come together")
    origin = (fields["source"], fields["document_id"]) if "source" in fields else None
    try:
        order_id = await request.app[SANDBOX_STATE].procurement.add_authorised_order(
            database_id,
            supplier_duns=fields["supplier_duns"],
            order_xml=fields.get("order_xml"),
            order_id=fields.get("order_id"),
            buyer_duns=fields.get("buyer_duns"),
            content_order=origin,
        )
    except ValueError as exc:
        return responses.problem(400, str(exc))
    except LookupError as exc:
        return responses.problem(404, str(exc))
    return web.json_response({"id": order_id})


async def get_portals(request: web.Request) -> web.Response:
    return web.json_response({"portals": await request.app[SANDBOX_STATE].portals.names()})


async def post_portal(request: web.Request) -> web.Response:
    fields = _strings(await _json_body(request), ("name", "username", "password", "supplier_duns"))
    state = request.app[SANDBOX_STATE]
    try:
        await state.portals.add(
            fields["name"],
            username=fields["username"],
            password=fields["password"],
            supplier_duns=fields["supplier_duns"],
        )
    except ValueError as exc:
        return responses.problem(400, str(exc))
    return web.json_response(await state.portals.describe(fields["name"]))


async def get_portal(request: web.Request) -> web.Response:
    try:
        found = await request.app[SANDBOX_STATE].portals.describe(request.match_info["name"])
    except LookupError as exc:
        raise _not_found(str(exc)) from None
    return web.json_response(found)


async def post_portal_document(request: web.Request) -> web.Response:
    fields = _strings(await _json_body(request), ("type", "xml"), ("uuid", "created"))
    created = None
    if "created" in fields:
        try:
            created = datetime.fromisoformat(fields["created"])
        except ValueError:
            return responses.problem(400, "created must be an ISO 8601 date and time")
    try:
        uuid = await request.app[SANDBOX_STATE].portals.add_document(
            request.match_info["name"],
            doc_type=fields["type"],
            xml=fields["xml"],
            uuid=fields.get("uuid"),
            created=created,
        )
    except ValueError as exc:
        return responses.problem(400, str(exc))
    except LookupError as exc:
        return responses.problem(404, str(exc))
    return web.json_response({"uuid": uuid})


async def put_portal_switches(request: web.Request) -> web.Response:
    data = await _json_body(request)
    refuse = data.get("refuse_auth") if isinstance(data, dict) else None
    if not isinstance(refuse, bool) or set(data) != {"refuse_auth"}:
        return responses.problem(400, 'the body must be {"refuse_auth": true|false}')
    try:
        await request.app[SANDBOX_STATE].portals.set_switches(
            request.match_info["name"], refuse_auth=refuse
        )
    except LookupError as exc:
        return responses.problem(404, str(exc))
    return web.json_response({"refuse_auth": refuse})


def add_routes(app: web.Application, prefix: str = "/_sandbox") -> None:
    router = app.router
    router.add_get(f"{prefix}/faults", get_faults, allow_head=False)
    router.add_put(f"{prefix}/faults", put_faults)
    router.add_delete(f"{prefix}/faults", delete_faults)
    router.add_post(f"{prefix}/revoke-tokens", revoke_tokens)
    router.add_get(f"{prefix}/simsid", get_simsid, allow_head=False)
    router.add_put(f"{prefix}/simsid", put_simsid)
    router.add_get(f"{prefix}/stats", get_stats, allow_head=False)
    router.add_get(f"{prefix}/stats/databases", get_database_stats, allow_head=False)
    router.add_post(f"{prefix}/stats/reset", reset_stats)
    router.add_get(f"{prefix}/journals", get_journals, allow_head=False)
    router.add_get(f"{prefix}/audit-messages", get_audit_messages, allow_head=False)
    router.add_get(f"{prefix}/budgets", get_budgets, allow_head=False)
    router.add_get(f"{prefix}/eproc/documents", get_eproc_documents, allow_head=False)
    router.add_get(f"{prefix}/eproc/authorised-orders", get_authorised_orders, allow_head=False)
    router.add_post(f"{prefix}/eproc/authorised-orders", post_authorised_order)
    router.add_get(f"{prefix}/portals", get_portals, allow_head=False)
    router.add_post(f"{prefix}/portals", post_portal)
    router.add_get(f"{prefix}/portals/{{name}}", get_portal, allow_head=False)
    router.add_post(f"{prefix}/portals/{{name}}/documents", post_portal_document)
    router.add_put(f"{prefix}/portals/{{name}}/switches", put_portal_switches)
