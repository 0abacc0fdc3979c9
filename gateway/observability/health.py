"""``/healthz`` (the process answers) and ``/readyz`` (it can serve: store and cache reachable,
not draining)."""

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
        self._checks: list[tuple[str, Check]] = []

    def add_check(self, name: str, check: Check) -> None:
        self._checks.append((name, check))

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, _request: web.Request) -> web.Response:
        if self.draining:
            return web.json_response({"status": "draining"}, status=503)
        # Side by side, so one slow dependency costs the probe 2 s, not 2 s for each.
        results = await asyncio.gather(*(_within(check, 2.0) for _name, check in self._checks))
        failed = [name for (name, _check), ok in zip(self._checks, results, strict=True) if not ok]
        if failed:
            return web.json_response({"status": "unavailable", "failed": failed}, status=503)
        return web.json_response({"status": "ok"})

    def routes(self) -> Sequence[web.RouteDef]:
        return [web.get("/healthz", self.healthz), web.get("/readyz", self.readyz)]
