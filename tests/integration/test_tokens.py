"""SIMS ID tokens: one request for many callers, refreshed ahead of time, kept through outages."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from gateway.tenancy.model import AuthMethod
from tests.conftest import Gateway, GatewayWith, Sandbox, add_school
from tests.support import Auth, operation, soap_call

GET_BANKS = operation("GetBanks", systemIdentifier="TPPCS")


async def get_banks(http: aiohttp.ClientSession, gateway: Gateway, auth: Auth | None = None) -> str:
    answer = await soap_call(http, gateway.soap_url, GET_BANKS, auth or gateway.auth)
    return answer.part("isSuccess") if not answer.is_fault else answer.fault_string  # type: ignore[return-value]


class TestSingleFlight:
    async def test_a_thousand_calls_on_a_cold_cache_make_one_token_request(
        self, gateway_with: GatewayWith, sandbox: Sandbox
    ) -> None:
        # Client, gateway and sandbox share this test's event loop: allow them the time.
        gateway = await gateway_with(fng={"timeout_seconds": 120})
        # A slow token endpoint keeps the whole crowd waiting on the one request in flight.
        await sandbox.faults({"target": "simsid", "kind": "latency", "latency_ms": 500})
        # 250 connections at once (the test server's listen backlog is 100): the crowd is
        # in the gateway long before the one token request is answered.
        connector = aiohttp.TCPConnector(limit=250)
        async with aiohttp.ClientSession(connector=connector) as http:
            results = await asyncio.gather(*(get_banks(http, gateway) for _ in range(1000)))
        assert results == ["true"] * 1000
        stats = await sandbox.stats()
        assert stats["token_requests"] == 1
        assert stats["requests"]["GetBanks"] == 1000


class TestRefresh:
    async def test_revoked_token_is_replaced_once_and_the_call_retried(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        assert await get_banks(http, gateway) == "true"
        await sandbox.revoke_tokens()
        results = await asyncio.gather(*(get_banks(http, gateway) for _ in range(20)))
        assert results == ["true"] * 20
        assert (await sandbox.stats())["token_requests"] == 2

    async def test_refreshed_in_the_background_before_expiry(
        self, gateway_with: GatewayWith, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        """In its refresh window a token is still served at once while a new one is fetched."""
        gateway = await gateway_with(
            simsid={"refresh_before_seconds": 100, "refresh_jitter_seconds": 0}
        )
        await sandbox.token_lifetime(4)  # refresh window opens after 2 s
        assert await get_banks(http, gateway) == "true"
        await sandbox.faults({"target": "simsid", "kind": "latency", "latency_ms": 1000})
        await asyncio.sleep(2.2)
        started = time.monotonic()
        assert await get_banks(http, gateway) == "true"
        assert time.monotonic() - started < 0.8, "the call waited for the refresh"
        for _ in range(40):
            if (await sandbox.stats())["token_requests"] == 2:
                break
            await asyncio.sleep(0.1)
        assert (await sandbox.stats())["token_requests"] == 2
        await asyncio.sleep(2.0)  # past the first token's expiry
        assert await get_banks(http, gateway) == "true"
        assert (await sandbox.stats())["token_requests"] == 2

    async def test_valid_token_kept_while_simsid_is_down(
        self, gateway_with: GatewayWith, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        gateway = await gateway_with(
            simsid={
                "refresh_before_seconds": 100,
                "refresh_jitter_seconds": 0,
                "retry_seconds": 0.3,
            }
        )
        # The refresh window opens after 6 s; the token is usable for 10.8 s: the margin
        # leaves the five calls below time on a loaded machine.
        await sandbox.token_lifetime(12)
        assert await get_banks(http, gateway) == "true"
        await sandbox.faults({"target": "simsid", "kind": "error", "status": 503})
        await asyncio.sleep(6.2)
        for _ in range(5):  # refreshes fail; calls go on with the token they have
            assert await get_banks(http, gateway) == "true"
            await asyncio.sleep(0.3)
        assert (await sandbox.stats())["tokens_issued"] == 1


class TestClientAuthentication:
    @pytest.mark.parametrize(
        "method",
        [AuthMethod.CLIENT_SECRET_BASIC, AuthMethod.CLIENT_SECRET_POST, AuthMethod.PRIVATE_KEY_JWT],
    )
    async def test_each_method_gets_a_token(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession, method: AuthMethod
    ) -> None:
        """Secrets with characters that need form-encoding included."""
        auth = await add_school(
            sandbox,
            gateway,
            "Other School",
            la_number="321",
            establishment_number="7654",
            auth_method=method,
        )
        assert await get_banks(http, gateway, auth) == "true"
        assert (await sandbox.stats())["tokens_issued"] == 1

    async def test_refused_client_is_a_clear_fault(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        auth = await add_school(
            sandbox, gateway, "Other School", la_number="321", establishment_number="7654"
        )
        await sandbox.faults({"target": "simsid", "kind": "error", "status": 401, "count": 1})
        answer = await soap_call(http, gateway.soap_url, GET_BANKS, auth)
        assert answer.fault_code == "TOKEN_UNAVAILABLE"
        assert answer.fault_string.startswith(
            "TokenException:SIMS ID refused the token request (HTTP 401"
        )
        assert auth.password not in answer.raw.decode()
        assert (await sandbox.stats())["requests"]["GetBanks"] == 0
