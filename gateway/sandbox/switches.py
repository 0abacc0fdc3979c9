"""Fault switches: make SIMS ID or FNG slow, failing, silent or nonsensical on demand.

A :class:`FaultRule` names its target (``fng``, ``simsid`` or ``portal``: every supplier
portal), optionally a substring of the request path (``/portals/slow-supplier/`` for one
portal) and of the SOAP action (``UpdateDocumentStatus`` for one portal method), and what to
do:

``latency``      wait ``latency_ms``, then answer normally (it combines with the others)
``error``        answer ``status`` without doing anything
``drop_before``  close the connection without doing anything or answering
``drop_after``   do the work (a journal is committed, a document marked processed), then
                 close without answering
``garbage``      do the work, then answer 200 with a body that is not XML or JSON

A rule applies with its ``probability``; ``count`` limits it to the next N requests it is
applied to, after which it disappears (None keeps it until the rules are cleared).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from http import HTTPStatus
from typing import Any, Final, Literal, cast, get_args

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.sandbox.responses import problem

Target = Literal["fng", "simsid", "portal"]
Kind = Literal["latency", "error", "drop_before", "drop_after", "garbage"]

TARGETS: Final = get_args(Target)
KINDS: Final = get_args(Kind)

#: The body of a ``garbage`` answer: neither XML nor JSON, and not valid UTF-8 either.
GARBAGE: Final = b"\xff\xfe<<< sandbox fault: this is not a document \x00>>>"

_INJECTED: Final = "a fault injected by the sandbox"
_STATUSES: Final = frozenset(item.value for item in HTTPStatus)

_FIELDS: Final = frozenset(
    {"target", "path", "action", "kind", "status", "latency_ms", "probability", "count"}
)


@dataclass(slots=True)
class FaultRule:
    target: Target
    kind: Kind
    path: str | None = None
    action: str | None = None
    status: int = 503
    latency_ms: int = 1000
    probability: float = 1.0
    count: int | None = None

    @classmethod
    def from_json(cls, data: object) -> FaultRule:
        """Build a rule from its JSON form; ValueError says what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("a rule is a JSON object")
        unknown = set(data) - _FIELDS
        if unknown:
            raise ValueError(f"unknown rule fields: {', '.join(sorted(unknown))}")
        target, kind = data.get("target"), data.get("kind")
        if target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        path = data.get("path")
        if path is not None and not isinstance(path, str):
            raise ValueError("path must be a string")
        action = data.get("action")
        if action is not None and not isinstance(action, str):
            raise ValueError("action must be a string")
        status = _integer(data, "status", 503, 400, 599)
        latency_ms = _integer(data, "latency_ms", 1000, 0, 600_000)
        probability = data.get("probability", 1.0)
        if (
            isinstance(probability, bool)
            or not isinstance(probability, int | float)
            or not 0.0 <= probability <= 1.0
        ):
            raise ValueError("probability must be a number from 0 to 1")
        count = data.get("count")
        if count is not None:
            count = _integer(data, "count", 1, 1, 10**9)
        return cls(
            target=cast(Target, target),
            kind=cast(Kind, kind),
            path=path or None,
            action=action or None,
            status=status,
            latency_ms=latency_ms,
            probability=float(probability),
            count=count,
        )

    def matches(self, target: str, path: str, action: str = "") -> bool:
        return (
            self.target == target
            and (self.path is None or self.path in path)
            and (self.action is None or self.action in action)
        )


def _integer(data: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}")
    return value


class FaultBoard:
    """The rules in force. Only the event loop touches it, so it needs no lock."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []

    def replace(self, rules: list[FaultRule]) -> None:
        self._rules = list(rules)

    def clear(self) -> None:
        self._rules = []

    def as_json(self) -> list[dict[str, Any]]:
        return [asdict(rule) for rule in self._rules]

    def draw(self, target: str, path: str, action: str = "") -> tuple[int, FaultRule | None]:
        """Decide what happens to one request: total latency (ms), and the fault if any.

        Every latency rule that fires adds its delay; the first other rule that fires
        decides the outcome. Rules that fire spend one of their ``count``.
        """
        latency = 0
        chosen: FaultRule | None = None
        for rule in list(self._rules):
            if not rule.matches(target, path, action):
                continue
            if rule.kind != "latency" and chosen is not None:
                continue
            if rule.probability < 1.0 and random.random() >= rule.probability:
                continue
            self._spend(rule)
            if rule.kind == "latency":
                latency += rule.latency_ms
            else:
                chosen = rule
        return latency, chosen

    def _spend(self, rule: FaultRule) -> None:
        if rule.count is None:
            return
        rule.count -= 1
        if rule.count <= 0:
            self._rules.remove(rule)


def target_of(path: str) -> Target | None:
    """Which emulated service a path belongs to (None for the control API)."""
    if path == "/fng" or path.startswith("/fng/"):
        return "fng"
    if path.startswith(("/connect/", "/.well-known/")):
        return "simsid"
    if path.startswith("/portals/"):
        return "portal"
    return None


def _error_response(target: Target, status: int) -> web.Response:
    if target == "simsid":
        error = "temporarily_unavailable" if status == 503 else "server_error"
        body = {"error": error, "error_description": _INJECTED}
        return web.Response(status=status, text=json.dumps(body), content_type="application/json")
    if target == "portal":
        # What Windows' http.sys answers for a service that is down: an HTML page (not
        # well-formed XML), not a SOAP fault.
        phrase = HTTPStatus(status).phrase if status in _STATUSES else "Error"
        page = (
            f"<HTML><HEAD><TITLE>{phrase}</TITLE>\r\n"
            '<META HTTP-EQUIV="Content-Type" Content="text/html; charset=us-ascii"></HEAD>\r\n'
            f"<BODY><h2>{phrase}</h2>\r\n<hr><p>HTTP Error {status}. {_INJECTED}</p>\r\n"
            "</BODY></HTML>\r\n"
        )
        return web.Response(status=status, text=page, content_type="text/html")
    return problem(status, _INJECTED)


def _drop(request: web.Request) -> web.Response:
    """Close the connection without a word; the returned response is never written."""
    transport = request.transport
    if transport is not None:
        transport.close()
    # aiohttp finds the transport closing when it writes this, and drops it quietly.
    return web.Response(status=204)


def fault_middleware(board: FaultBoard) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        target = target_of(request.path)
        if target is None:
            return await handler(request)
        # The SOAP action, from SOAPAction (1.1) or the content type's action (1.2).
        action = request.headers.get("SOAPAction", "") + request.headers.get("Content-Type", "")
        latency, rule = board.draw(target, request.path, action)
        if latency:
            # The request is read whole first, as a server does before it works on it: a
            # client that goes away while it waits does not stop the work (it may commit).
            await request.read()
            await asyncio.sleep(latency / 1000)
        if rule is None:
            return await handler(request)
        if rule.kind == "error":
            return _error_response(target, rule.status)
        if rule.kind == "drop_before":
            # Read the request first, so the client sees a disconnect, not a refused write.
            await request.read()
            return _drop(request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
        if rule.kind == "drop_after":
            return _drop(request)
        garbage = web.Response(status=200, body=GARBAGE)
        garbage.content_type = response.content_type or "application/octet-stream"
        return garbage

    return middleware
