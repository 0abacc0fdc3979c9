"""One sandbox and one gateway on loopback for a whole test module of the hostile corpus.

Hundreds of hostile requests each refused in milliseconds would otherwise spend most of
their time seeding a sandbox and migrating a gateway. They share one stack instead, built
with the same helpers as the ``gateway`` fixture; each case compares what FNG has seen
before and after it, so the cases stay independent of each other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.fernet import Fernet

from gateway.sandbox import SandboxState, create_sandbox_app, seed_demo
from gateway.tenancy.secrets import SecretBox
from tests.conftest import Gateway, Sandbox, gateway_settings, start_gateway
from tests.hostile.corpus import Seen, Target, Tripwire, seen_by_fng

#: The limits of the shared gateway: small, so that every limit is crossed cheaply.
LIMITS: Final = {
    "max_bytes": 1024 * 1024,
    "max_depth": 64,
    "max_elements": 20_000,
    "max_attributes": 20_000,
    "body_timeout_seconds": 30.0,
}


async def serve(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@dataclass
class Stack:
    sandbox: Sandbox
    gateway: Gateway
    http: aiohttp.ClientSession
    tripwire: Tripwire
    tmp: Path

    def target(self, service: str, version: str) -> Target:
        return Target(service, version, self.gateway, self.sandbox.demo)

    async def seen(self) -> Seen:
        return await seen_by_fng(self.sandbox)

    async def assert_nothing_reached(self, before: Seen) -> None:
        """FNG saw no new call and holds nothing new; the tripwire was never fetched."""
        after = await self.seen()
        assert after.stats == before.stats
        assert after.journals == before.journals
        assert after.budgets == before.budgets
        assert self.tripwire.connections == []

    async def assert_only_banks_read(self, before: Seen) -> None:
        """Nothing written to FNG, no other call: a journal refused by the gateway's own rules
        may have had its payment system's banks read once, to list every problem it has."""
        after = await self.seen()
        reads = after.stats["requests"]["GetBanks"] - before.stats["requests"]["GetBanks"]
        assert reads in (0, 1)
        others = [
            {key: value for key, value in seen.stats.items() if not key.startswith("token")}
            for seen in (before, after)
        ]
        for stats in others:
            stats["requests"] = {**stats["requests"], "GetBanks": 0}
        assert others[0] == others[1]
        assert after.journals == before.journals
        assert after.budgets == before.budgets
        assert self.tripwire.connections == []


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("hostile")
    state = await SandboxState.open(f"sqlite+aiosqlite:///{tmp / 'sandbox.db'}")
    demo = await seed_demo(state)
    sandbox_server = await serve(create_sandbox_app(state))
    sandbox = Sandbox(state, demo, str(sandbox_server.make_url("")).rstrip("/"), sandbox_server)
    settings = gateway_settings(tmp, sandbox, xml=LIMITS)

    async def aiohttp_server(app: web.Application) -> Any:
        return await serve(app)

    gateway = await start_gateway(
        aiohttp_server, settings, SecretBox([Fernet.generate_key()]), sandbox
    )
    tripwire = Tripwire()
    await tripwire.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Stack(sandbox, gateway, http, tripwire, tmp)
    finally:
        await tripwire.stop()
        await gateway.server.close()
        await sandbox_server.close()
        await state.close()
