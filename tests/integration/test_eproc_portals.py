"""Portals that never stall: a bad index entry, a failing index, a re-sent order, a plain http
address or a portal of several suppliers holds up nothing it should not.

Each test runs the real gateway against the sandbox's portals and FNG on loopback, with
documents and orders written for it, one scheduler round at a time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from lxml import etree

from gateway.app import STORE
from gateway.eproc.admin import EprocAdmin
from gateway.errors import RegistryError
from gateway.sandbox import ebis
from gateway.sandbox.portal.portals import NewDocument, portal_path
from gateway.store.tables import eproc_documents, eproc_orders, portals
from tests.conftest import Gateway, GatewayWith, Sandbox
from tests.integration.test_eproc import documents_in_fng, due_now, expected, ledger, run_once

LONG_ID = "L" * 150
SPACED_ID = "order with spaces"
#: The suppliers of a price-comparison portal, and one it does not serve.
FIRST, SECOND, UNSERVED = "111111111", "222222222", "333333333"


def content_order(sandbox: Sandbox, number: str, supplier: str | None = None) -> str:
    return ebis.to_text(
        ebis.order(
            number=number,
            order_date=date.today(),
            supplier_duns=supplier or sandbox.demo.supplier_duns,
            buyer_duns=sandbox.demo.school_duns,
            lines=[ebis.OrderLine(1, "P-1", "Pencils", "3", Decimal("2.50"))],
        )
    )


async def portal_row(gateway: Gateway, name: str) -> Any:
    async with gateway.app[STORE].read() as conn:
        return (await conn.execute(sa.select(portals).where(portals.c.name == name))).one()


async def order_rows(gateway: Gateway) -> dict[str, Any]:
    async with gateway.app[STORE].read() as conn:
        return {row.order_id: row for row in await conn.execute(sa.select(eproc_orders))}


async def functions_received(sandbox: Sandbox, name: str) -> list[str]:
    """The Function Code of each order the portal received, in order."""
    orders = (await sandbox.state.portals.describe(name))["orders"]
    return [
        etree.fromstring(order["xml"].encode()).find("OrderHead/Function").get("Code")
        for order in orders
    ]


class TestIndexEntries:
    async def test_a_bad_entry_is_quarantined_alone(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """An id over 100 characters, an id with spaces and a type the standard does not name
        are each quarantined, never fetched; every other document is collected."""
        name = sandbox.demo.portal_name
        await sandbox.state.portals.add_documents(
            name,
            [
                NewDocument(
                    "order", content_order(sandbox, "W-LONG"), uuid=LONG_ID, standard=False
                ),
                NewDocument(
                    "order", content_order(sandbox, "W-SPACE"), uuid=SPACED_ID, standard=False
                ),
                NewDocument(
                    "purchaseorder",
                    content_order(sandbox, "W-TYPE"),
                    uuid="bad-type",
                    standard=False,
                ),
                NewDocument("order", content_order(sandbox, "W-GOOD"), uuid="good-order"),
            ],
        )
        await run_once(gateway)
        assert await documents_in_fng(sandbox) == sorted(
            [*expected(sandbox, "valid"), "good-order"]
        )
        entries = await ledger(gateway)
        assert entries[SPACED_ID] == ("quarantined", "index_entry")
        assert entries["bad-type"] == ("quarantined", "index_entry")
        (long_key,) = [key for key in entries if key.startswith("sha256:")]
        assert entries[long_key] == ("quarantined", "index_entry")
        held = {
            item.reference: item for item in await EprocAdmin(gateway.app[STORE], "t").quarantined()
        }
        assert "150 characters" in (held[long_key].reason or "")
        assert "spaces" in (held[SPACED_ID].reason or "")
        assert "'purchaseorder'" in (held["bad-type"].reason or "")
        row = await portal_row(gateway, name)
        assert (row.failures, row.last_error) == (0, None)
        counters = (await sandbox.state.portals.describe(name))["counters"]["calls"]
        fetched = counters["FetchDoc"]
        collected = [u for u, t, _o in sandbox.demo.portal_documents if t != "quote"]
        assert fetched == len(collected) + 1  # the good order; no bad entry was fetched

        await due_now(gateway)
        await run_once(gateway)  # still listed: nothing new, nothing fails
        assert len(await ledger(gateway)) == len(entries)
        assert (await portal_row(gateway, name)).failures == 0

    async def test_operators_release_or_retry_a_bad_entry(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """One with an id the portal knows is acknowledged on release; one whose id is too
        long to give back is refused; a retried one is read from the index afresh."""
        name = sandbox.demo.portal_name
        await sandbox.state.portals.add_documents(
            name,
            [
                NewDocument("order", "<Order/>", uuid=LONG_ID, standard=False),
                NewDocument("order", "<Order/>", uuid=SPACED_ID, standard=False),
                NewDocument("memo", "<Memo/>", uuid="a-memo", standard=False),
            ],
        )
        await run_once(gateway)
        admin = EprocAdmin(gateway.app[STORE], "operator")
        held = {item.reference: item.id for item in await admin.quarantined()}
        long_key = next(key for key in held if key.startswith("sha256:"))
        with pytest.raises(RegistryError, match="withdraw"):
            await admin.release_document(held[long_key])
        await admin.release_document(held[SPACED_ID])
        await admin.retry_document(held["a-memo"])
        assert "a-memo" not in await ledger(gateway)
        await due_now(gateway)
        await run_once(gateway)
        documents = (await sandbox.state.portals.describe(name))["documents"]
        assert next(d for d in documents if d["uuid"] == SPACED_ID)["processed"]
        entries = await ledger(gateway)
        assert entries[SPACED_ID] == ("released", "index_entry")
        assert entries["a-memo"] == ("quarantined", "index_entry")


class TestOrdersGoAtOnce:
    async def test_orders_are_sent_while_the_index_fails(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        await sandbox.faults(
            {"target": "portal", "action": "FetchIndex", "kind": "error", "status": 503}
        )
        await run_once(gateway)
        received = (await sandbox.state.portals.describe(sandbox.demo.portal_name))["orders"]
        assert len(received) == 1
        (order,) = await sandbox.state.procurement.authorised_orders()
        assert order["state"] == "sent"
        row = await portal_row(gateway, sandbox.demo.portal_name)
        assert row.failures == 1 and row.last_error.startswith("PORTAL_GARBAGE")

    async def test_orders_keep_their_own_clock(
        self, gateway_with: GatewayWith, sandbox: Sandbox
    ) -> None:
        """A portal whose index is backed off for an hour still gets an order authorised now,
        at the next orders round, without its index being read."""
        gateway = await gateway_with(eproc={"orders_seconds": 45.0})
        name = sandbox.demo.portal_name
        await run_once(gateway)
        row = await portal_row(gateway, name)
        assert (
            timedelta(seconds=40) < row.next_orders_at - datetime.now(UTC) <= timedelta(seconds=45)
        )
        order_id = await sandbox.state.procurement.add_authorised_order(
            sandbox.demo.database_id,
            supplier_duns=sandbox.demo.supplier_duns,
            buyer_duns=sandbox.demo.school_duns,
        )
        async with gateway.app[STORE].write() as conn:
            await conn.execute(
                portals.update().values(
                    failures=5,
                    next_poll_at=datetime.now(UTC) + timedelta(hours=1),
                    next_orders_at=datetime.now(UTC),
                )
            )
        before = (await sandbox.state.portals.describe(name))["counters"]["calls"]["FetchIndex"]
        await run_once(gateway)
        states = {o["id"]: o["state"] for o in await sandbox.state.procurement.authorised_orders()}
        assert states[order_id] == "sent"
        assert (await sandbox.state.portals.describe(name))["counters"]["calls"][
            "FetchIndex"
        ] == before
        row = await portal_row(gateway, name)
        assert row.failures == 5  # the index's clock is left as it was
        assert row.next_poll_at > datetime.now(UTC) + timedelta(minutes=50)


class TestCopies:
    async def test_the_first_file_is_the_original(self, gateway: Gateway, sandbox: Sandbox) -> None:
        await run_once(gateway)
        assert await functions_received(sandbox, sandbox.demo.portal_name) == ["original"]
        rows = await order_rows(gateway)
        assert rows[sandbox.demo.authorised_order_id].sends == 1

    async def test_printed_again_in_fng_it_goes_again_as_a_copy(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        await run_once(gateway)
        await sandbox.state.procurement.reopen_authorised_order(
            sandbox.demo.database_id, sandbox.demo.authorised_order_id
        )
        await due_now(gateway)
        await run_once(gateway)
        assert await functions_received(sandbox, sandbox.demo.portal_name) == ["original", "copy"]
        rows = await order_rows(gateway)
        assert (
            rows[sandbox.demo.authorised_order_id].sends,
            rows[sandbox.demo.authorised_order_id].state,
        ) == (2, "sent")
        (order,) = await sandbox.state.procurement.authorised_orders()
        assert order["state"] == "sent"

    async def test_an_operator_resends_it_as_a_copy(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        await run_once(gateway)
        admin = EprocAdmin(gateway.app[STORE], "operator")
        (listed,) = await admin.orders()
        assert (listed["reference"], listed["state"], listed["sends"]) == (
            sandbox.demo.authorised_order_id,
            "sent",
            1,
        )
        await admin.resend_order(listed["id"])
        with pytest.raises(RegistryError, match="on its way"):
            await admin.resend_order(listed["id"])
        await due_now(gateway)
        await run_once(gateway)
        assert await functions_received(sandbox, sandbox.demo.portal_name) == ["original", "copy"]
        await admin.resend_order(listed["id"])
        await due_now(gateway)
        await run_once(gateway)
        assert await functions_received(sandbox, sandbox.demo.portal_name) == [
            "original",
            "copy",
            "copy",
        ]
        (listed,) = await admin.orders()
        assert (listed["state"], listed["sends"]) == ("sent", 3)


class TestPortalsThatForget:
    async def test_a_document_gone_before_its_acknowledgement_holds_up_nothing(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """A document FNG holds whose acknowledgement did not take, and which the portal has
        since let expire ("Documents that are not downloaded should expire ... and then be
        removed"): DocumentNotExistException leaves nothing to mark; it is recorded as
        acknowledged and the portal's other documents are collected."""
        name = sandbox.demo.portal_name
        row = await portal_row(gateway, name)
        now = datetime.now(UTC)
        async with gateway.app[STORE].write() as conn:
            await conn.execute(
                eproc_documents.insert().values(
                    portal_id=row.id,
                    document_id="expired-order",
                    doc_type="order",
                    state="delivered",
                    content=content_order(sandbox, "W-GONE").encode(),
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
        await run_once(gateway)
        assert await documents_in_fng(sandbox) == expected(sandbox, "valid")
        assert (await ledger(gateway))["expired-order"] == ("acknowledged", None)
        assert (await portal_row(gateway, name)).failures == 0


class TestSendOrderFaults:
    async def test_a_fault_is_a_refusal_and_the_order_goes_later_as_the_original(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """ "If the call was not successful then a soap exception should be thrown": a
        portal refusing the login did not take the order, so it is not quarantined as an
        unknown outcome, and once the login works it goes as the first file it is."""
        name = sandbox.demo.portal_name
        order_id = sandbox.demo.authorised_order_id
        await sandbox.state.portals.set_switches(name, refuse_auth=True)
        await run_once(gateway)
        assert order_id not in await order_rows(gateway)
        assert (await portal_row(gateway, name)).last_error.startswith(
            "PORTAL_AUTHENTICATION_FAILED"
        )
        await sandbox.state.portals.set_switches(name, refuse_auth=False)
        await due_now(gateway)
        await run_once(gateway)
        assert await functions_received(sandbox, name) == ["original"]
        rows = await order_rows(gateway)
        assert (rows[order_id].state, rows[order_id].sends) == ("sent", 1)


class TestTheSameWebService:
    async def test_an_order_goes_back_through_the_portal_its_content_order_came_from(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """ "The Authorised Order is returned to the supplier using the same Web Service that
        sent the original Content Order to FMS", though another portal serves the supplier."""
        supplier = sandbox.demo.supplier_duns
        await sandbox.state.portals.add(
            "second", username="u", password="p", supplier_duns=supplier
        )
        await gateway.tenancy.add_portal(
            gateway.demo.database_id,
            name="second",
            url=f"{sandbox.url}{portal_path('second')}",
            username="u",
            password="p",
            supplier_duns=[supplier],
            allow_http=True,
        )
        await sandbox.state.portals.add_documents(
            "second", [NewDocument("order", content_order(sandbox, "C-S"), uuid="via-second")]
        )
        await run_once(gateway)
        assert "via-second" in await documents_in_fng(sandbox)
        authorised = ebis.order(
            number="PO-S",
            order_date=date.today(),
            supplier_duns=supplier,
            buyer_duns=sandbox.demo.school_duns,
            lines=[
                ebis.OrderLine(
                    1,
                    "P-1",
                    "Pencils",
                    "3",
                    Decimal("2.50"),
                    commodity_class="00 00 00 00",
                    narrative="1001-01",
                    preferred_date=date.today(),
                )
            ],
            order_type="PUO",
            user=None,
            originating_software=("SIMS", "FMS6", "6.180"),
        )
        order_id = await sandbox.state.procurement.add_authorised_order(
            sandbox.demo.database_id,
            supplier_duns=supplier,
            order_xml=ebis.to_text(authorised),
            content_order=("second", "via-second"),
        )
        await due_now(gateway)
        await run_once(gateway)
        assert (await order_rows(gateway))[order_id].state == "sent"

        async def received(portal: str) -> list[str]:
            orders = (await sandbox.state.portals.describe(portal))["orders"]
            return [order["buyers_order_number"] for order in orders]

        # (The demo's own order, made from no content order, goes through either.)
        assert (await received("second")).count("PO-S") == 1
        assert "PO-S" not in await received(sandbox.demo.portal_name)


class TestHttps:
    async def test_a_plain_http_address_needs_the_portal_s_allowance(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        await sandbox.state.portals.add("plain", username="u", password="p", supplier_duns=FIRST)
        register: dict[str, Any] = {
            "name": "plain",
            "url": f"{sandbox.url}{portal_path('plain')}",
            "username": "u",
            "password": "p",
            "supplier_duns": [FIRST],
        }
        with pytest.raises(RegistryError, match="must be https"):
            await gateway.tenancy.add_portal(gateway.demo.database_id, **register)
        await gateway.tenancy.add_portal(gateway.demo.database_id, **register, allow_http=True)

    async def test_a_stored_http_portal_without_the_allowance_is_not_called(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        async with gateway.app[STORE].write() as conn:
            await conn.execute(portals.update().values(allow_http=False))
        await run_once(gateway)
        row = await portal_row(gateway, sandbox.demo.portal_name)
        assert row.last_error.startswith("PORTAL_INSECURE: the portal URL must be https")
        calls = (await sandbox.state.portals.describe(sandbox.demo.portal_name))["counters"][
            "calls"
        ]
        assert sum(calls.values()) == 0


class TestSeveralSuppliers:
    async def test_each_document_and_order_is_matched_to_its_supplier(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """A price-comparison portal serving two suppliers: both suppliers' documents are
        delivered, a third supplier's quarantined; both suppliers' orders go through it."""
        name = "comparison"
        await sandbox.state.portals.add(
            name, username="school", password="pw", supplier_duns=[FIRST, SECOND]
        )
        await gateway.tenancy.add_portal(
            gateway.demo.database_id,
            name=name,
            url=f"{sandbox.url}{portal_path(name)}",
            username="school",
            password="pw",
            supplier_duns=[FIRST, SECOND],
            allow_http=True,
        )
        await sandbox.state.portals.add_documents(
            name,
            [
                NewDocument("order", content_order(sandbox, "C-1", FIRST), uuid="from-first"),
                NewDocument("order", content_order(sandbox, "C-2", SECOND), uuid="from-second"),
                NewDocument("order", content_order(sandbox, "C-3", UNSERVED), uuid="from-unserved"),
            ],
        )
        orders = {
            duns: await sandbox.state.procurement.add_authorised_order(
                sandbox.demo.database_id, supplier_duns=duns, buyer_duns=sandbox.demo.school_duns
            )
            for duns in (FIRST, SECOND, UNSERVED)
        }
        await run_once(gateway)
        delivered = await documents_in_fng(sandbox)
        assert {"from-first", "from-second"} <= set(delivered)
        assert "from-unserved" not in delivered
        entries = await ledger(gateway)
        assert entries["from-unserved"] == ("quarantined", "supplier_duns")
        async with gateway.app[STORE].read() as conn:
            reason = await conn.scalar(
                sa.select(eproc_documents.c.reason).where(
                    eproc_documents.c.document_id == "from-unserved"
                )
            )
        assert f"{FIRST} or {SECOND}" in reason
        received = (await sandbox.state.portals.describe(name))["orders"]
        assert len(received) == 2
        states = {o["id"]: o["state"] for o in await sandbox.state.procurement.authorised_orders()}
        assert states[orders[FIRST]] == states[orders[SECOND]] == "sent"
        assert states[orders[UNSERVED]] == "pending"
        (listed,) = [p for p in await gateway.tenancy.portals() if p["name"] == name]
        assert listed["supplier_duns"] == [FIRST, SECOND]
