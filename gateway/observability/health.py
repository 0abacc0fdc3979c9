"""``/healthz`` (the process answers) and ``/readyz`` (it can serve: the store reachable, not
draining).

A check is either required (the gateway cannot serve without it: readiness fails) or not
(the gateway serves without it, in a lesser way: readiness stays 200 and names it as
degraded). Redis is of the second kind: without it each replica keeps its tokens, locks and
failed-login counts to itself, and taking every replica out of service because a cache is
down would turn a small outage into a whole one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

Check = Callable[[], Awaitable[bool]]


async def _within(check: Check, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            return await check()
    except TimeoutError:
        return False


class Health:
    def __init__(self) -> None:
        self.draining = False
        self._checks: list[tuple[str, Check, bool]] = []

    def add_check(self, name: str, check: Check, *, required: bool = True) -> None:
        self._checks.append((name, check, required))

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, _request: web.Request) -> web.Response:
        if self.draining:
            return web.json_response({"status": "draining"}, status=503)
        # Side by side, so one slow dependency costs the probe 2 s, not 2 s for each.
        results = await asyncio.gather(*(_within(check, 2.0) for _n, check, _r in self._checks))
        down = [
            (name, required)
            for (name, _c, required), ok in zip(self._checks, results, strict=True)
            if not ok
        ]
        failed = [name for name, required in down if required]
        degraded = [name for name, required in down if not required]
        if failed:
            body = {"status": "unavailable", "failed": failed, "degraded": degraded}
            return web.json_response(body, status=503)
        if degraded:
            return web.json_response({"status": "degraded", "degraded": degraded})
        return web.json_response({"status": "ok"})

    def routes(self) -> Sequence[web.RouteDef]:
        return [web.get("/healthz", self.healthz), web.get("/readyz", self.readyz)]
