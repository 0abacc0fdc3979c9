"""A client of the operators' HTTP API under /admin/ and what its tests set up: the
``admin`` fixture (``tests/integration/conftest.py``) gives an :class:`Admin` of a running
gateway, as operator ``alice``; the ``test_admin_api_*`` files test it by resource."""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from gateway.eproc.documents import DocState
from gateway.eproc.orders import OrderState
from gateway.store import Store
from gateway.store.tables import eproc_documents, eproc_orders
from tests.conftest import Gateway

BIN = Path(sys.executable).parent
GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"


@dataclass
class Admin:
    """A client of the admin API of a running gateway, as operator ``alice``."""

    gateway: Gateway
    http: aiohttp.ClientSession
    token: str

    @property
    def url(self) -> str:
        return f"{self.gateway.url}/admin"

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = "",
        expect: int | None = None,
        **kwargs: Any,
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token or self.token}")
        async with self.http.request(
            method, f"{self.url}{path}", headers=headers, **kwargs
        ) as response:
            text = await response.text()
            body = json.loads(text) if text else None
            if expect is not None:
                assert response.status == expect, (response.status, body)
            if response.status >= 400:
                assert response.content_type == "application/problem+json", text
                assert body["status"] == response.status
            return response.status, body, response

    async def get(self, path: str, **kwargs: Any) -> Any:
        return (await self.request("GET", path, expect=kwargs.pop("expect", 200), **kwargs))[1]

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        expect = kwargs.pop("expect", 200)
        return (await self.request("POST", path, json=body, expect=expect, **kwargs))[1]

    async def put(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        expect = kwargs.pop("expect", 200)
        return (await self.request("PUT", path, json=body, expect=expect, **kwargs))[1]


async def new_vendor(admin: Admin, secret: str = "vendor secret %+") -> int:
    created = await admin.post(
        "/vendors",
        {
            "name": f"Vendor {uuid.uuid4().hex[:6]}",
            "token_url": "https://simsid.example/connect/token",
            "client_id": "payments-ltd",
            "secret": secret,
        },
        expect=201,
    )
    return int(created["id"])


async def new_school(admin: Admin, la: str = "123", establishment: str = "0456") -> int:
    created = await admin.post(
        "/schools",
        {"name": "Hill Primary", "la_number": la, "establishment_number": establishment},
        expect=201,
    )
    return int(created["id"])


async def new_database(admin: Admin, fng_key: str = GUID) -> dict[str, Any]:
    vendor_id = await new_vendor(admin)
    school_id = await new_school(admin)
    created: dict[str, Any] = await admin.post(
        "/databases",
        {
            "school_id": school_id,
            "vendor_id": vendor_id,
            "name": "Public funds",
            "fng_key": fng_key,
        },
        expect=201,
    )
    return created


async def quarantine(
    store: Store, database_id: int, portal_id: int, *, count: int
) -> tuple[list[int], list[int]]:
    """``count`` quarantined documents and orders, as the eProcurement pipeline leaves them
    (a row each: the pipeline's own tests make them for real)."""
    now = datetime.now(UTC)
    documents, orders = [], []
    async with store.write() as conn:
        for number in range(1, count + 1):
            result = await conn.execute(
                eproc_documents.insert().values(
                    portal_id=portal_id,
                    document_id=f"doc-{number}",
                    doc_type="invoice",
                    state=DocState.QUARANTINED.value,
                    content=b"<Invoice>\xc2\xa3 5</Invoice>",
                    rule="checksum",
                    reason="the checksum is wrong",
                    attempts=1,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            documents.append(int(result.inserted_primary_key[0]))
            result = await conn.execute(
                eproc_orders.insert().values(
                    database_id=database_id,
                    order_id=f"order-{number}",
                    portal_id=portal_id,
                    state=OrderState.QUARANTINED.value,
                    content=b"<Order/>",
                    rule="portal_rejected",
                    reason="InvalidXmlException",
                    created_at=now,
                    updated_at=now,
                )
            )
            orders.append(int(result.inserted_primary_key[0]))
    return documents, orders
