"""Guessing passwords gets a caller nowhere: failed logins are counted and then refused."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.tenancy.secrets import SecretBox
from tests.conftest import REDIS_URL, Sandbox, gateway_settings, require_service, start_gateway
from tests.support import Auth, operation, soap_call

GET_BANKS = operation("GetBanks", systemIdentifier="TPPCS")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("shared", ["memory", "redis", "redis-down"])
async def test_too_many_failures_lock_the_account_for_a_while(
    tmp_path: Path,
    sandbox: Sandbox,
    aiohttp_server: Any,
    box: SecretBox,
    http: aiohttp.ClientSession,
    shared: str,
) -> None:
    overrides: dict[str, Any] = {"auth": {"max_failures": 3, "failure_window_seconds": 2}}
    if shared == "redis-down":
        # Redis configured but unreachable: each replica counts on its own, never not at all.
        overrides["redis_url"] = f"redis://127.0.0.1:{closed_port()}/0"
    if shared == "redis":
        require_service("Redis", "127.0.0.1", 6379)
        overrides["redis_url"] = REDIS_URL
        import redis.asyncio as redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in await client.keys("fng-gateway:failed:*"):
            await client.delete(key)
        await client.aclose()
    gateway = await start_gateway(
        aiohttp_server, gateway_settings(tmp_path, sandbox, **overrides), box, sandbox
    )
    right = gateway.auth
    wrong = Auth(right.username, "guess", right.database)
    codes = [
        (await soap_call(http, gateway.soap_url, GET_BANKS, wrong)).fault_code for _ in range(4)
    ]
    assert codes == ["AUTHENTICATION_FAILED"] * 3 + ["TOO_MANY_ATTEMPTS"]
    locked = await soap_call(http, gateway.soap_url, GET_BANKS, right)
    assert locked.fault_code == "TOO_MANY_ATTEMPTS"  # even the right password, for now
    await asyncio.sleep(2.2)
    assert not (await soap_call(http, gateway.soap_url, GET_BANKS, right)).is_fault
