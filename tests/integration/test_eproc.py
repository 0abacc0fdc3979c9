"""eProcurement end to end: the gateway polls the sandbox's demo portal as FMS did.

The scheduler is driven here one round at a time (``run_once``), so each test knows exactly
what has happened; the quick start test and the fault tests run it on its own clock.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from gateway.app import SCHEDULER, STORE
from gateway.eproc.admin import EprocAdmin
from gateway.sandbox import ebis
from gateway.sandbox.fng.procurement import generated_order
from gateway.store.tables import eproc_documents, eproc_orders, portals, schools
from gateway.tenancy.secrets import SecretBox
from tests.conftest import Gateway, GatewayWith, Sandbox


async def run_once(gateway: Gateway) -> None:
    await gateway.app[SCHEDULER].run_once()


async def documents_in_fng(sandbox: Sandbox) -> list[str]:
    return sorted(item["document_id"] for item in await sandbox.state.procurement.documents())


async def ledger(gateway: Gateway) -> dict[str, tuple[str, str | None]]:
    async with gateway.app[STORE].read() as conn:
        rows = await conn.execute(
            sa.select(
                eproc_documents.c.document_id, eproc_documents.c.state, eproc_documents.c.rule
            )
        )
        return {row.document_id: (row.state, row.rule) for row in rows}


async def due_now(gateway: Gateway, **values: Any) -> None:
    """Every portal due for its index and its orders (what time would do)."""
    now = datetime.now(UTC)
    async with gateway.app[STORE].write() as conn:
        await conn.execute(
            portals.update().values(
                next_poll_at=now, next_orders_at=now, lease_until=None, **values
            )
        )


async def add_portals(gateway: Gateway, sandbox: Sandbox, *names: str) -> None:
    """Open portals in the sandbox for the demo supplier and register them for the school."""
    for name in names:
        await sandbox.state.portals.add(name, username="u", password="p", supplier_duns="123123123")
        await gateway.tenancy.add_portal(
            gateway.demo.database_id,
            name=name,
            url=f"{sandbox.url}/portals/{name}/EProcurementService.asmx",
            username="u",
            password="p",
            supplier_duns=["123123123"],
            poll_seconds=10,
            allow_http=True,
        )


def expected(sandbox: Sandbox, kind: str) -> list[str]:
    return sorted(uuid for uuid, _type, outcome in sandbox.demo.portal_documents if outcome == kind)


class TestDocuments:
    async def test_valid_documents_reach_fng_and_are_acknowledged(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        await run_once(gateway)
        assert await documents_in_fng(sandbox) == expected(sandbox, "valid")
        portal = await sandbox.state.portals.describe(sandbox.demo.portal_name)
        processed = sorted(d["uuid"] for d in portal["documents"] if d["processed"])
        assert processed == expected(sandbox, "valid")

    async def test_each_invalid_document_is_quarantined_for_its_rule(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        await run_once(gateway)
        entries = await ledger(gateway)
        for uuid, _doc_type, outcome in sandbox.demo.portal_documents:
            if outcome == "valid":
                assert entries[uuid] == ("acknowledged", None)
            elif outcome == "quote":
                assert uuid not in entries  # quotes are left alone
            else:
                assert entries[uuid] == ("quarantined", outcome), uuid
        held = await EprocAdmin(gateway.app[STORE], "test").quarantined()
        reasons = {item.reference: item.reason or "" for item in held}
        assert "CTO" in reasons["demo-bad-order-type"]
        assert "EUR" in reasons["demo-bad-currency"]

    async def test_a_second_poll_changes_nothing(self, gateway: Gateway, sandbox: Sandbox) -> None:
        await run_once(gateway)
        before = await sandbox.stats()
        await due_now(gateway)
        await run_once(gateway)
        after = await sandbox.stats()
        assert after["documents_received"] == before["documents_received"] == 5
        assert after["requests"]["PostDocument"] == before["requests"]["PostDocument"]
        portal = await sandbox.state.portals.describe(sandbox.demo.portal_name)
        assert portal["counters"]["calls"]["ResetAll"] == 0  # never called

    async def test_fng_failing_leaves_documents_unacknowledged_until_it_recovers(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        await sandbox.faults(
            {"target": "fng", "path": "EProcurement/Documents", "kind": "error", "status": 503}
        )
        await run_once(gateway)
        portal = await sandbox.state.portals.describe(sandbox.demo.portal_name)
        assert not any(d["processed"] for d in portal["documents"])
        await sandbox.clear_faults()
        async with gateway.app[STORE].write() as conn:  # the retry is due
            await conn.execute(eproc_documents.update().values(next_attempt_at=datetime.now(UTC)))
        await due_now(gateway)
        await run_once(gateway)
        assert await documents_in_fng(sandbox) == expected(sandbox, "valid")

    async def test_lost_answer_from_fng_is_delivered_again_once(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """FNG stored it but the answer was lost: delivering again finds it already there."""
        await sandbox.faults(
            {"target": "fng", "path": "EProcurement/Documents", "kind": "drop_after", "count": 1}
        )
        await run_once(gateway)
        async with gateway.app[STORE].write() as conn:
            await conn.execute(eproc_documents.update().values(next_attempt_at=datetime.now(UTC)))
        await due_now(gateway)
        await run_once(gateway)
        assert await documents_in_fng(sandbox) == expected(sandbox, "valid")
        assert (await sandbox.stats())["documents_received"] == 5


class TestOperators:
    async def test_retry_after_the_school_is_put_right(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        await run_once(gateway)
        admin = EprocAdmin(gateway.app[STORE], "operator")
        held = {item.reference: item for item in await admin.quarantined()}
        async with gateway.app[STORE].write() as conn:  # the school now trades in euros
            await conn.execute(schools.update().values(currency="EUR"))
        await admin.retry_document(held["demo-bad-currency"].id)
        await due_now(gateway)
        await run_once(gateway)
        assert "demo-bad-currency" in await documents_in_fng(sandbox)
        assert (await ledger(gateway))["demo-bad-currency"] == ("acknowledged", None)

    async def test_release_acknowledges_without_delivering(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        await run_once(gateway)
        admin = EprocAdmin(gateway.app[STORE], "operator")
        held = {item.reference: item for item in await admin.quarantined()}
        item, content = await admin.document(held["demo-bad-test-mode"].id)
        assert b"<Order" in content and item.rule == "test_mode"
        await admin.release_document(item.id)
        await due_now(gateway)
        await run_once(gateway)
        portal = await sandbox.state.portals.describe(sandbox.demo.portal_name)
        assert next(d for d in portal["documents"] if d["uuid"] == "demo-bad-test-mode")[
            "processed"
        ]
        assert "demo-bad-test-mode" not in await documents_in_fng(sandbox)


class TestAuthorisedOrders:
    async def test_sent_once_and_marked_sent(self, gateway: Gateway, sandbox: Sandbox) -> None:
        await run_once(gateway)
        await due_now(gateway)
        await run_once(gateway)
        portal = await sandbox.state.portals.describe(sandbox.demo.portal_name)
        assert len(portal["orders"]) == 1
        (order,) = await sandbox.state.procurement.authorised_orders()
        assert (order["id"], order["state"]) == (sandbox.demo.authorised_order_id, "sent")

    async def test_refused_by_the_portal_is_quarantined_with_its_message(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """An order naming another supplier in its XML: the portal answers InvalidXmlException."""
        xml = generated_order(
            number="PO-99",
            supplier_duns="111111111",
            buyer_duns=sandbox.demo.school_duns,
            order_date=date.today(),
        )
        order_id = await sandbox.state.procurement.add_authorised_order(
            sandbox.demo.database_id, supplier_duns=sandbox.demo.supplier_duns, order_xml=xml
        )
        await run_once(gateway)
        async with gateway.app[STORE].read() as conn:
            row = (
                await conn.execute(
                    sa.select(eproc_orders).where(eproc_orders.c.order_id == order_id)
                )
            ).one()
        assert (row.state, row.rule) == ("quarantined", "portal_rejected")
        assert "111111111" in row.reason
        states = {o["id"]: o["state"] for o in await sandbox.state.procurement.authorised_orders()}
        assert states[order_id] == "pending"


class TestPasswords:
    async def test_changed_when_due_and_stored(self, gateway: Gateway, sandbox: Sandbox) -> None:
        old = sandbox.demo.portal_password
        async with gateway.app[STORE].write() as conn:
            await conn.execute(
                portals.update().values(
                    password_days=60, password_changed_at=datetime.now(UTC) - timedelta(days=61)
                )
            )
        await run_once(gateway)
        current = (await sandbox.state.portals.describe(sandbox.demo.portal_name))["password"]
        assert current != old
        async with gateway.app[STORE].read() as conn:
            stored = await conn.scalar(sa.select(portals.c.password_enc))
        assert gateway.box.decrypt(stored).get_secret_value() == current
        await due_now(gateway)
        await run_once(gateway)  # polls with the new password
        assert await documents_in_fng(sandbox) == expected(sandbox, "valid")

    async def test_not_changed_before_sixty_days(self, gateway: Gateway, sandbox: Sandbox) -> None:
        async with gateway.app[STORE].write() as conn:
            await conn.execute(
                portals.update().values(
                    password_days=60, password_changed_at=datetime.now(UTC) - timedelta(days=59)
                )
            )
        await run_once(gateway)
        counters = (await sandbox.state.portals.describe(sandbox.demo.portal_name))["counters"]
        assert counters["calls"]["ChangePassword"] == 0


class TestRecovery:
    async def test_after_an_outage_what_another_client_processed_is_reported_not_imported(
        self, gateway: Gateway, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
    ) -> None:
        """FetchIndex lists every unprocessed document however long the gateway was away;
        FetchIndexFromDate, asked after an outage, only names what another client processed
        meanwhile, which FMS would never have imported."""
        await run_once(gateway)

        def order(number: str) -> str:
            return ebis.to_text(
                ebis.order(
                    number=number,
                    order_date=date.today(),
                    supplier_duns=sandbox.demo.supplier_duns,
                    buyer_duns=sandbox.demo.school_duns,
                    lines=[ebis.OrderLine(1, "P-1", "Pencils", "3", Decimal("2.50"))],
                )
            )

        name = sandbox.demo.portal_name
        waiting = await sandbox.state.portals.add_document(name, doc_type="order", xml=order("A"))
        taken = await sandbox.state.portals.add_document(name, doc_type="order", xml=order("B"))
        await sandbox.state.portals.set_processed(name, taken, True)
        await due_now(gateway, last_success_at=datetime.now(UTC) - timedelta(days=2))
        caplog.set_level(logging.WARNING, "gateway.eproc")
        await run_once(gateway)
        in_fng = await documents_in_fng(sandbox)
        assert waiting in in_fng
        assert taken not in in_fng
        [warning] = [r for r in caplog.records if "another client collected" in r.getMessage()]
        assert warning.__dict__["document_ids"] == taken
        counters = (await sandbox.state.portals.describe(name))["counters"]
        assert counters["calls"]["FetchIndexFromDate"] == 1


class TestPortalIsolation:
    async def test_broken_portals_do_not_hold_up_the_others(
        self, gateway_with: GatewayWith, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
    ) -> None:
        gateway = await gateway_with(eproc={"call_timeout_seconds": 2.0})
        demo = sandbox.demo
        await add_portals(gateway, sandbox, "refusing", "slow", "garbled")
        await sandbox.state.portals.set_switches("refusing", refuse_auth=True)
        await sandbox.faults(
            {"target": "portal", "path": "/portals/slow/", "kind": "latency", "latency_ms": 10_000},
            {"target": "portal", "path": "/portals/garbled/", "kind": "garbage"},
        )
        caplog.set_level(logging.WARNING, "gateway.eproc")
        started = asyncio.get_running_loop().time()
        await gateway.app[SCHEDULER].tick()
        for _ in range(100):  # the demo portal finishes while the slow one still hangs
            if len(await documents_in_fng(sandbox)) == len(expected(sandbox, "valid")):
                break
            await asyncio.sleep(0.1)
        assert asyncio.get_running_loop().time() - started < 8
        assert await documents_in_fng(sandbox) == expected(sandbox, "valid")
        await gateway.app[SCHEDULER].run_once()  # and the rest fail, each on its own
        async with gateway.app[STORE].read() as conn:
            rows = {row.name: row for row in await conn.execute(sa.select(portals))}
        assert rows[demo.portal_name].failures == 0
        assert rows["refusing"].last_error.startswith("PORTAL_AUTHENTICATION_FAILED")
        assert rows["slow"].last_error.startswith("PORTAL_TIMEOUT")
        assert rows["garbled"].last_error.startswith("PORTAL_GARBAGE")
        async with aiohttp.ClientSession() as http, http.get(f"{gateway.url}/metrics") as response:
            metrics = await response.text()
        database = gateway.demo.database_id
        for name, kind in (
            ("refusing", "PORTAL_AUTHENTICATION_FAILED"),
            ("slow", "PORTAL_TIMEOUT"),
            ("garbled", "PORTAL_GARBAGE"),
        ):
            labels = f'kind="{kind}",portal="{database}:{name}"'
            assert f"fng_gateway_eproc_portal_errors_total{{{labels}}} 1.0" in metrics, metrics
        logged = [
            record for record in caplog.records if record.getMessage() == "a portal poll failed"
        ]
        assert {getattr(record, "portal", None) for record in logged} == {
            f"{database}:refusing",
            f"{database}:slow",
            f"{database}:garbled",
        }

    async def test_a_password_the_master_keys_cannot_decrypt_fails_that_portal_alone(
        self, gateway: Gateway, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A portal whose password was stored under a master key the gateway no longer has
        (a key removed too soon, a store restored beside other keys): its polls fail saying
        why and what to do, and every other portal is polled."""
        await add_portals(gateway, sandbox, "foreign")
        other = SecretBox([SecretBox.new_key().encode()])
        async with gateway.app[STORE].write() as conn:
            await conn.execute(
                portals.update()
                .where(portals.c.name == "foreign")
                .values(password_enc=other.encrypt("p"))
            )
        caplog.set_level(logging.WARNING, "gateway.eproc")
        await run_once(gateway)
        assert await documents_in_fng(sandbox) == expected(sandbox, "valid")
        async with gateway.app[STORE].read() as conn:
            rows = {row.name: row for row in await conn.execute(sa.select(portals))}
        assert rows[sandbox.demo.portal_name].failures == 0
        assert rows["foreign"].failures == 1
        assert rows["foreign"].last_error.startswith("CONFIGURATION_ERROR: its stored password")
        assert "portals password" in rows["foreign"].last_error
        calls = (await sandbox.state.portals.describe("foreign"))["counters"]["calls"]
        assert sum(calls.values()) == 0

    async def test_a_round_polls_every_due_portal_once_however_few_the_slots(
        self, gateway_with: GatewayWith, sandbox: Sandbox
    ) -> None:
        gateway = await gateway_with(eproc={"max_concurrent_portals": 1})
        await add_portals(gateway, sandbox, "second", "third")
        await due_now(gateway)
        await gateway.app[SCHEDULER].run_once()
        for name in (sandbox.demo.portal_name, "second", "third"):
            counters = (await sandbox.state.portals.describe(name))["counters"]
            assert counters["calls"]["FetchIndex"] == 1, name
        assert await documents_in_fng(sandbox) == expected(sandbox, "valid")
