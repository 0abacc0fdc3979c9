"""The sandbox on a real loopback port, its demo seeded, and helpers to call it."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from joserfc.jwk import RSAKey
from lxml import etree

from gateway.sandbox import DemoSeed, SandboxState, create_sandbox_app, seed_demo
from gateway.sandbox.simsid.tokens import generate_signing_key
from gateway.xmlsafe import SchemaRegistry, shipped_schemas_dir

FNG = "/fng/api/JournalInterface"
BUDGET = "/fng/api/BudgetInterface"


def basic_header(client_id: str, secret: str) -> str:
    """HTTP Basic as RFC 6749 §2.3.1 asks: each part form-urlencoded before joining."""
    joined = f"{quote_plus(client_id, safe='')}:{quote_plus(secret, safe='')}"
    return "Basic " + base64.b64encode(joined.encode()).decode()


@dataclass
class Sandbox:
    client: TestClient[Any, Any]
    state: SandboxState
    demo: DemoSeed

    @property
    def issuer(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/connect/token"

    async def request_token(self, client_id: str, secret: str) -> ClientResponse:
        return await self.client.post(
            "/connect/token",
            data={"grant_type": "client_credentials", "scope": "fngapi"},
            headers={"Authorization": basic_header(client_id, secret)},
        )

    async def token(self, client_id: str | None = None, secret: str | None = None) -> str:
        response = await self.request_token(
            client_id or self.demo.client_id, secret or self.demo.client_secret
        )
        assert response.status == 200, await response.text()
        body = await response.json()
        return str(body["access_token"])

    def headers(
        self, token: str, *, psk: str | None = None, client_key: str | None = None
    ) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {token}",
            "scope": "fngapi",
            "X-PSK": psk if psk is not None else self.demo.fng_key,
            "X-Client-Id": client_key if client_key is not None else self.demo.partner_key,
        }

    async def get_banks(
        self, token: str | None = None, system: str = "TPPCS", **keys: str
    ) -> ClientResponse:
        token = token or await self.token()
        return await self.client.get(
            f"{FNG}/GetBanks",
            params={"systemIdentifier": system},
            headers=self.headers(token, **keys),
        )

    async def row_versions(self, token: str | None = None) -> dict[str, dict[str, str]]:
        response = await self.get_banks(token)
        assert response.status == 200
        root = etree.fromstring(await response.read())
        return {
            bank.get("externalReference", ""): {
                str(key): str(value)
                for key, value in bank.attrib.items()
                if key != "externalReference"
            }
            for bank in root.iterfind("Banks/Bank")
        }

    async def post(self, body: bytes, token: str | None = None) -> ClientResponse:
        token = token or await self.token()
        headers = {**self.headers(token), "Content-Type": "application/xml"}
        return await self.client.post(f"{FNG}/PostJournals", data=body, headers=headers)

    async def post_journal(self, body: bytes, token: str | None = None) -> etree._Element:
        response = await self.post(body, token)
        assert response.status == 200, await response.text()
        assert response.content_type == "application/xml"
        return etree.fromstring(await response.read())

    async def export_chart(self, day: str, token: str | None = None, **keys: str) -> ClientResponse:
        token = token or await self.token()
        return await self.client.get(
            f"{BUDGET}/ExportGlAccount", params={"date": day}, headers=self.headers(token, **keys)
        )

    async def export_years(self, token: str | None = None, **keys: str) -> ClientResponse:
        token = token or await self.token()
        return await self.client.get(
            f"{BUDGET}/ExportFinancialYears", headers=self.headers(token, **keys)
        )

    async def send_budget(
        self, body: bytes, token: str | None = None, **keys: str
    ) -> ClientResponse:
        token = token or await self.token()
        headers = {**self.headers(token, **keys), "Content-Type": "application/xml"}
        return await self.client.post(f"{BUDGET}/ImportBudget", data=body, headers=headers)

    def url(self, path: str) -> str:
        return str(self.client.make_url(path))

    async def control(self, method: str, path: str, json: Any = None) -> Any:
        response = await self.client.request(method, f"/_sandbox{path}", json=json)
        assert response.status == 200, await response.text()
        return await response.json()


def errors_of(result: etree._Element) -> list[dict[str, str]]:
    """Each Error of a JournalResult or BudgetImportResult as its attributes plus ``text``."""
    return [
        {**{str(k): str(v) for k, v in error.attrib.items()}, "text": error.text or ""}
        for error in result.iterfind("Errors/Error")
    ]


@pytest.fixture(scope="session")
def schemas() -> SchemaRegistry:
    return SchemaRegistry(
        shipped_schemas_dir(),
        [
            "ejournal/Banks.xsd",
            "ejournal/Results.xsd",
            "budget/GLAccounts.xsd",
            "budget/FiscalYear.xsd",
            "budget/BudgetResult.xsd",
            "eproc/FetchIndex.xsd",
            "eproc/FngEProcurement.xsd",
            "eproc/profile/Order.xsd",
            "eproc/profile/Invoice.xsd",
        ],
    )


@pytest.fixture(scope="session")
def signing_key() -> RSAKey:
    """One SIMS ID key for all the short-lived states (generating one costs 0.1 s)."""
    return generate_signing_key()


@pytest.fixture
async def state(
    request: pytest.FixtureRequest, tmp_path: Path, signing_key: RSAKey
) -> AsyncIterator[SandboxState]:
    """An empty state in memory, or in a file when parametrized indirectly with "file"."""
    storage = getattr(request, "param", "memory")
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'sandbox.db'}"
        if storage == "file"
        else "sqlite+aiosqlite:///:memory:"
    )
    opened = await SandboxState.open(url, signing_key=signing_key)
    yield opened
    await opened.close()


@pytest.fixture
async def sandbox(state: SandboxState, aiohttp_client: Any) -> Sandbox:
    demo = await seed_demo(state)
    client = await aiohttp_client(create_sandbox_app(state))
    return Sandbox(client=client, state=state, demo=demo)
