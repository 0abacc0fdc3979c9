"""Fixtures: the sandbox and the gateway on real loopback ports, and the machine's services.

PostgreSQL and Redis are used when they are running; without them their tests skip,
except under ``CI=true``, where a missing service fails the run.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.fernet import Fernet
from joserfc.jwk import RSAKey

from gateway.app import STORE, create_app
from gateway.cli.quickstart import Registered, register_demo
from gateway.config import Settings
from gateway.sandbox import DemoSeed, SandboxState, create_sandbox_app, seed_demo
from gateway.sandbox.demo import seed_budget_planning
from gateway.tenancy.model import AuthMethod, Interface
from gateway.tenancy.secrets import SecretBox
from gateway.tenancy.service import TenancyAdmin
from tests.support import Auth

CI = os.environ.get("CI") == "true"
POSTGRES_URL = os.environ.get("FNG_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("FNG_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture(autouse=True, scope="session")
def _clean_environment() -> None:
    """No FNG_GATEWAY_ setting of the machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith("FNG_GATEWAY_"):
            del os.environ[name]


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    if CI:
        pytest.fail(f"{name} at {host}:{port} is required when CI=true")
    pytest.skip(f"{name} is not running at {host}:{port}")


async def own_redis_database(first: int) -> str:
    """The URL of a Redis database of this test worker's own among four from ``first`` (Redis
    has sixteen), emptied."""
    require_service("Redis", "127.0.0.1", 6379)
    import redis.asyncio as redis

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    url = REDIS_URL.rsplit("/", 1)[0] + f"/{first + int(worker or 0) % 4}"
    client = redis.Redis.from_url(url)
    await client.flushdb()
    await client.aclose()
    return url


def _admin(statement: str) -> None:
    """Run one statement on the PostgreSQL server, from a thread with its own event loop."""

    async def run() -> None:
        connection = await asyncpg.connect(POSTGRES_URL)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"fnggw_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"')
    base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    yield f"{base}/{name}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def box() -> SecretBox:
    return SecretBox([Fernet.generate_key()])


@dataclass
class Sandbox:
    state: SandboxState
    demo: DemoSeed
    url: str
    server: TestServer

    async def _call(self, method: str, path: str, json: Any = None) -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, f"{self.url}{path}", json=json) as response,
        ):
            assert response.status < 400, await response.text()
            return await response.json(content_type=None)

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/_sandbox/stats")
        return result

    async def reset_stats(self) -> None:
        await self._call("POST", "/_sandbox/stats/reset")

    async def faults(self, *rules: dict[str, Any]) -> None:
        await self._call("PUT", "/_sandbox/faults", {"rules": list(rules)})

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/_sandbox/faults")

    async def fault_rules(self) -> list[dict[str, Any]]:
        """The rules in force: a rule with a count is gone once spent."""
        result: dict[str, list[dict[str, Any]]] = await self._call("GET", "/_sandbox/faults")
        return result["rules"]

    async def revoke_tokens(self) -> None:
        await self._call("POST", "/_sandbox/revoke-tokens")

    async def token_lifetime(self, seconds: int) -> None:
        await self._call("PUT", "/_sandbox/simsid", {"token_lifetime": seconds})

    async def journals(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._call("GET", "/_sandbox/journals")
        return result


@pytest.fixture
async def sandbox(tmp_path: Path, aiohttp_server: Any) -> AsyncIterator[Sandbox]:
    state = await SandboxState.open(f"sqlite+aiosqlite:///{tmp_path / 'sandbox.db'}")
    demo = await seed_demo(state)
    server = await aiohttp_server(create_sandbox_app(state))
    yield Sandbox(state, demo, str(server.make_url("")).rstrip("/"), server)
    await state.close()


@dataclass
class Gateway:
    app: web.Application
    server: TestServer
    url: str
    settings: Settings
    demo: Registered
    box: SecretBox

    @property
    def soap_url(self) -> str:
        return f"{self.url}/soap/ejournal"

    @property
    def auth(self) -> Auth:
        return Auth(self.demo.username, self.demo.password, self.demo.database_key)

    @property
    def tenancy(self) -> TenancyAdmin:
        return TenancyAdmin(self.app[STORE], self.box, actor="test")


def gateway_settings(tmp_path: Path, sandbox: Sandbox, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
        "log_format": "text",
        "fng": {"base_url": f"{sandbox.url}/fng", "timeout_seconds": 5.0},
        # Every journal sent as text is streamed, however small, so the tests go that way.
        "xml": {"stream_above_bytes": 0},
        # Tests that are about eProcurement run the scheduler themselves.
        "eproc": {"enabled": False, "call_timeout_seconds": 5.0, "poll_timeout_seconds": 20.0},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return Settings(**values)


async def start_gateway(
    aiohttp_server: Any, settings: Settings, box: SecretBox, sandbox: Sandbox
) -> Gateway:
    app = create_app(settings, box=box)
    server = await aiohttp_server(app)
    registered = await register_demo(TenancyAdmin(app[STORE], box), sandbox.demo, sandbox.url)
    return Gateway(app, server, str(server.make_url("")).rstrip("/"), settings, registered, box)


#: Starts a gateway with settings over the tests' own: ``await gateway_with(xml={...})``.
GatewayWith = Callable[..., Awaitable[Gateway]]


@pytest.fixture
def gateway_with(
    tmp_path: Path, sandbox: Sandbox, aiohttp_server: Any, box: SecretBox
) -> GatewayWith:
    """A factory of gateways on the test's sandbox: each keyword is a setting (a section's
    dict merges with the tests' defaults); ``box`` replaces the test's master keys."""

    async def start(*, box: SecretBox = box, **settings: Any) -> Gateway:
        return await start_gateway(
            aiohttp_server, gateway_settings(tmp_path, sandbox, **settings), box, sandbox
        )

    return start


@pytest.fixture
async def gateway(gateway_with: GatewayWith) -> Gateway:
    return await gateway_with()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def add_school(
    sandbox: Sandbox,
    gateway: Gateway,
    name: str,
    *,
    la_number: str,
    establishment_number: str,
    auth_method: AuthMethod = AuthMethod.CLIENT_SECRET_BASIC,
    username: str | None = None,
) -> Auth:
    """Another school, set up in FNG (the sandbox) and in the gateway with its own vendor,
    database, keys, payment system TPPCS (the demo's codes) and account."""
    client_id = f"client-{uuid.uuid4().hex[:8]}"
    if auth_method is AuthMethod.PRIVATE_KEY_JWT:
        key = RSAKey.generate_key(2048, auto_kid=True)
        await sandbox.state.simsid.add_client(client_id, public_jwk=key.as_dict(private=False))
        credential = key.as_pem(private=True).decode()
    else:
        credential = f"s3cret {uuid.uuid4().hex}:%+"
        await sandbox.state.simsid.add_client(client_id, secret=credential)
    fng_key, partner_key = str(uuid.uuid4()), str(uuid.uuid4())
    database_id = await sandbox.state.databases.add(
        "Public funds",
        school_name=name,
        la_number=la_number,
        establishment_number=establishment_number,
        client_id=client_id,
        fng_key=fng_key,
        partner_key=partner_key,
    )
    await seed_budget_planning(sandbox.state, database_id, date.today())
    demo = sandbox.demo
    await sandbox.state.journals.add_payment_system(
        database_id,
        "TPPCS",
        "Payments",
        {
            "bank": {code: code for code in demo.banks},
            "product": {code: code for code in demo.products},
            "vat": {code: code for code in demo.vat_codes},
            "charge": {code: code for code in demo.charge_codes},
            "charge_vat": {code: code for code in demo.charge_vat_codes},
        },
    )
    tenancy = gateway.tenancy
    vendor_id = await tenancy.add_vendor(
        f"vendor {client_id}",
        token_url=f"{sandbox.url}/connect/token",
        client_id=client_id,
        credential=credential,
        auth_method=auth_method,
    )
    school_id = await tenancy.add_school(
        name, la_number=la_number, establishment_number=establishment_number
    )
    database = await tenancy.add_database(
        school_id,
        vendor_id=vendor_id,
        name="Public funds",
        fng_key=fng_key,
        partner_key=partner_key,
    )
    account = await tenancy.add_account(username or f"account-{client_id}")
    await tenancy.grant(
        account.account_id, database.database_id, [Interface.EJOURNAL, Interface.BUDGET], ["TPPCS"]
    )
    return Auth(username or f"account-{client_id}", account.password, database.partner_key)
