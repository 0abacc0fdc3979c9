"""FMS's import and export rules (seed 002), each against the sandbox's portal and FNG.

Every document is written here for its test and queued on the sandbox's demo portal (or,
for authorised orders, authorised in the sandbox's FNG); the real gateway collects, checks
and delivers it, one scheduler round at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from lxml import etree

from gateway.app import STORE
from gateway.sandbox import ebis
from gateway.store.tables import eproc_documents, eproc_orders, schools
from tests.conftest import Gateway, GatewayWith, Sandbox
from tests.integration.test_eproc import due_now, ledger, run_once

DAY = date(2026, 11, 20)
LINES = (
    ebis.OrderLine(1, "P-100", "Exercise books, A4, pack of 10", "3", Decimal("2.50")),
    ebis.OrderLine(2, "P-220", "Whiteboard markers, box of 12", "2", Decimal("6.75")),
)
#: The numbers an Order writes with its decimal separator.
NUMBERS = ("Amount", "TaxRate", "UnitPrice", "NetLineTotal", "GoodsValue", "GrossValue")
GLN = "5012345678900"


def content_order(sandbox: Sandbox, number: str, **changes: Any) -> etree._Element:
    values: dict[str, Any] = {
        "number": number,
        "order_date": DAY,
        "supplier_duns": sandbox.demo.supplier_duns,
        "buyer_duns": sandbox.demo.school_duns,
        "lines": LINES,
    }
    return ebis.order(**{**values, **changes})


def invoice(sandbox: Sandbox, number: str, **changes: Any) -> etree._Element:
    lines = [
        ebis.InvoiceLine(1, 1, "P-100", "Exercise books, A4, pack of 10", "3", Decimal("2.50"))
    ]
    values: dict[str, Any] = {
        "number": number,
        "invoice_date": DAY,
        "order_number": "WEB-1",
        "supplier_duns": sandbox.demo.supplier_duns,
        "buyer_duns": sandbox.demo.school_duns,
        "lines": lines,
    }
    return ebis.invoice(**{**values, **changes})


def exported(line: ebis.OrderLine) -> ebis.OrderLine:
    """An order line as FMS exported it: commodity class, ledger code and fund, a date."""
    return replace(line, commodity_class="00 00 00 00", narrative="1001-01", preferred_date=DAY)


def authorised_order(
    sandbox: Sandbox, number: str, lines: tuple[ebis.OrderLine, ...] = LINES, **changes: Any
) -> etree._Element:
    values: dict[str, Any] = {
        "number": number,
        "order_date": DAY,
        "supplier_duns": sandbox.demo.supplier_duns,
        "buyer_duns": sandbox.demo.school_duns,
        "lines": [exported(line) for line in lines],
        "order_type": "PUO",
        "user": None,
        "originating_software": ("SIMS", "FMS6", "6.180"),
    }
    return ebis.order(**{**values, **changes})


def with_separator(order: etree._Element, separator: str = ",") -> etree._Element:
    """The same order written with another decimal separator."""
    for element in order.iter(*NUMBERS):
        element.text = (element.text or "").replace(".", separator)
    head = order.find("OrderHead/Parameters/DecimalSeparator")
    assert head is not None
    head.text = separator
    return order


def set_text(order: etree._Element, path: str, value: str) -> etree._Element:
    found = order.find(path)
    assert found is not None, path
    found.text = value
    return order


def remove(order: etree._Element, path: str) -> etree._Element:
    found = order.find(path)
    assert found is not None, path
    parent = found.getparent()
    assert parent is not None
    parent.remove(found)
    return order


async def queue(sandbox: Sandbox, doc_type: str, document: etree._Element) -> str:
    """Put a document on the demo portal; its id."""
    return await sandbox.state.portals.add_document(
        sandbox.demo.portal_name, doc_type=doc_type, xml=ebis.to_text(document)
    )


async def poll(gateway: Gateway) -> None:
    await due_now(gateway)
    await run_once(gateway)


async def in_fng(sandbox: Sandbox, uuid: str) -> dict[str, Any]:
    (document,) = [
        d for d in await sandbox.state.procurement.documents() if d["document_id"] == uuid
    ]
    return document


async def authorise(sandbox: Sandbox, order: etree._Element, **options: Any) -> str:
    """Authorise ``order`` in FNG for the demo supplier; its id."""
    return await sandbox.state.procurement.add_authorised_order(
        sandbox.demo.database_id,
        supplier_duns=options.pop("supplier_duns", sandbox.demo.supplier_duns),
        order_xml=ebis.to_text(order),
        **options,
    )


async def received_order(
    sandbox: Sandbox, number: str, namespace: str | None = None
) -> etree._Element:
    """The order the demo portal received with BuyersOrderNumber ``number``."""
    q = "" if namespace is None else f"{{{namespace}}}"
    received = [
        etree.fromstring(item["xml"].encode())
        for item in (await sandbox.state.portals.describe(sandbox.demo.portal_name))["orders"]
    ]
    (sent,) = [
        order
        for order in received
        if order.findtext(f"{q}OrderReferences/{q}BuyersOrderNumber") == number
    ]
    return sent


async def documents(gateway: Gateway) -> dict[str, tuple[str, str | None, str]]:
    """The gateway's document ledger: document id -> (state, rule, reason)."""
    async with gateway.app[STORE].read() as conn:
        rows = await conn.execute(
            sa.select(
                eproc_documents.c.document_id, eproc_documents.c.state, eproc_documents.c.rule
            ).add_columns(eproc_documents.c.reason)
        )
        return {row.document_id: (row.state, row.rule, row.reason or "") for row in rows}


async def orders(gateway: Gateway) -> dict[str, tuple[str, str | None, str | None]]:
    """The gateway's order ledger: order id -> (state, rule, reason)."""
    async with gateway.app[STORE].read() as conn:
        rows = await conn.execute(
            sa.select(
                eproc_orders.c.order_id, eproc_orders.c.state, eproc_orders.c.rule
            ).add_columns(eproc_orders.c.reason)
        )
        return {row.order_id: (row.state, row.rule, row.reason) for row in rows}


async def fng_order_states(sandbox: Sandbox) -> dict[str, str]:
    return {
        order["id"]: order["state"] for order in await sandbox.state.procurement.authorised_orders()
    }


async def metrics(gateway: Gateway) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{gateway.url}/metrics") as response:
        return await response.text()


IN_OUT = ("in", "out")


async def mismatches(gateway: Gateway, sandbox: Sandbox, direction: str) -> float:
    """The demo portal's checksum mismatches let through, in one direction, so far."""
    portal = f"{gateway.demo.database_id}:{sandbox.demo.portal_name}"
    labels = f'{{direction="{direction}",portal="{portal}"}}'
    for line in (await metrics(gateway)).splitlines():
        if line.startswith(f"fng_gateway_eproc_checksum_mismatches_total{labels} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class TestDecimalSeparator:
    async def test_a_comma_document_imports_with_its_values(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """DecimalSeparator "," is "Use[d] to interpret values during import": 2,50 is two
        pounds fifty, and FNG is given the values as FMS held them, written with "."."""
        uuid = await queue(sandbox, "order", with_separator(content_order(sandbox, "WEB-C1")))
        await poll(gateway)
        assert (await ledger(gateway))[uuid] == ("acknowledged", None)
        body = etree.fromstring((await in_fng(sandbox, uuid))["body"].encode())
        assert body.findtext("OrderHead/Parameters/DecimalSeparator") == "."
        assert [p.text for p in body.iterfind("OrderLine/Price/UnitPrice")] == ["2.50", "6.75"]
        assert [a.text for a in body.iterfind("OrderLine/Quantity/Amount")] == ["3", "2"]
        assert body.findtext("OrderTotal/GoodsValue") == "21.00"
        assert body.findtext("OrderLine/LineTax/TaxRate") == "20.00"

    async def test_a_value_written_with_the_other_separator_is_quarantined(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        order = set_text(
            with_separator(content_order(sandbox, "WEB-C2")), "OrderLine/Price/UnitPrice", "2.50"
        )
        uuid = await queue(sandbox, "order", order)
        await poll(gateway)
        assert (await ledger(gateway))[uuid] == ("quarantined", "decimal_separator")

    async def test_a_document_with_the_dot_is_delivered_as_the_portal_sent_it(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """Nothing FMS would read differently: FNG gets the bytes the gateway collected."""
        uuid = await queue(sandbox, "order", content_order(sandbox, "WEB-C3"))
        await poll(gateway)
        async with gateway.app[STORE].read() as conn:
            collected = await conn.scalar(
                sa.select(eproc_documents.c.content).where(eproc_documents.c.document_id == uuid)
            )
        assert (await in_fng(sandbox, uuid))["body"].encode() == collected


class TestPrecision:
    async def test_money_is_held_in_pence_rounded_half_up(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """ "If less than 2 decimals default pence as zero, if greater than 2 round to 2
        decimal places": 2,505 is 2.51, 6,7 is 6.70."""
        order = with_separator(content_order(sandbox, "WEB-P1"))
        prices = order.findall("OrderLine/Price/UnitPrice")
        prices[0].text, prices[1].text = "2,505", "6,7"
        uuid = await queue(sandbox, "order", order)
        await poll(gateway)
        body = etree.fromstring((await in_fng(sandbox, uuid))["body"].encode())
        assert [p.text for p in body.iterfind("OrderLine/Price/UnitPrice")] == ["2.51", "6.70"]

    async def test_the_checksum_takes_the_goods_value_in_pence(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """GoodsValue 12,995 is held as 13.00, so the checksum's TotalValue is 13 (the
        checksum module's second worked example: 46070), not 12 (34885)."""
        lines = (
            ebis.OrderLine(1, "P-1", "Pens", "3", Decimal("2.50")),
            ebis.OrderLine(2, "P-2", "Pads", "2", Decimal("2.75")),
        )
        held = with_separator(content_order(sandbox, "WEB-P2", lines=lines))
        set_text(held, "OrderTotal/GoodsValue", "12,995")
        truncated = set_text(
            with_separator(content_order(sandbox, "WEB-P3", lines=lines)),
            "OrderTotal/GoodsValue",
            "12,995",
        )
        set_text(held, "OrderHead/Checksum", "46070")
        set_text(truncated, "OrderHead/Checksum", "34885")
        good = await queue(sandbox, "order", held)
        bad = await queue(sandbox, "order", truncated)
        await poll(gateway)
        entries = await ledger(gateway)
        assert entries[good] == ("acknowledged", None)
        assert entries[bad] == ("quarantined", "checksum")


class TestWhatFmsIgnores:
    async def test_fields_and_lines_fms_did_not_read_do_not_fail_the_import(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """ "Any data in the XML file not shown in this section will be ignored by FMS, but
        will not cause the import to fail", and a line whose Action is not Original is
        ignored: values FMS never read pass as they are, and reach FNG as written."""
        lines = (*LINES, ebis.OrderLine(3, "P-9", "Withdrawn", "2", Decimal("1.00")))
        order = content_order(sandbox, "WEB-I1", lines=lines)
        set_text(order, "OrderTotal/GrossValue", "n/a")
        set_text(order, "OrderLine/NetLineTotal", "")
        withdrawn = order.findall("OrderLine")[2]
        set_text(withdrawn, "Action", "Delete")
        set_text(withdrawn, "Quantity/Amount", "2.0")
        set_text(withdrawn, "Price/UnitPrice", "see catalogue")
        invoice_to = etree.SubElement(etree.SubElement(order, "InvoiceTo"), "InvoiceToReferences")
        etree.SubElement(invoice_to, "DUNS").text = "12-345-6789"
        uuid = await queue(sandbox, "order", order)
        await poll(gateway)
        assert (await ledger(gateway))[uuid] == ("acknowledged", None)
        body = etree.fromstring((await in_fng(sandbox, uuid))["body"].encode())
        assert body.findtext("OrderTotal/GrossValue") == "n/a"
        assert body.findall("OrderLine")[2].findtext("Price/UnitPrice") == "see catalogue"

    async def test_what_fms_read_is_still_checked(self, gateway: Gateway, sandbox: Sandbox) -> None:
        """The same kind of value where FMS read it: an Original line's unit price."""
        order = set_text(
            content_order(sandbox, "WEB-I2"), "OrderLine/Price/UnitPrice", "see catalogue"
        )
        uuid = await queue(sandbox, "order", order)
        await poll(gateway)
        assert (await ledger(gateway))[uuid] == ("quarantined", "schema")


#: The order's lines and one FMS ignores, with a quantity that is not a whole number.
WITHDRAWN = (*LINES, ebis.OrderLine(4, "P-9", "Withdrawn", "2.5", Decimal("1.00"), action="Delete"))


class TestQuantity:
    async def test_a_quantity_must_be_written_as_an_integer(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """ "FMS will only accept an integer for line quantity": 3.00 is three, but it is
        not written as an integer."""
        order = set_text(content_order(sandbox, "WEB-Q1"), "OrderLine/Quantity/Amount", "3.00")
        uuid = await queue(sandbox, "order", order)
        await poll(gateway)
        assert (await ledger(gateway))[uuid] == ("quarantined", "quantity")

    async def test_an_invoice_or_credit_note_line_too(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """The rule is FMS's, "On import", for "An Order, Invoice, or Credit Note line"."""
        uuids = {}
        for number, kind, quantity in (
            ("INV-Q1", "INV", "2.5"),
            ("CRN-Q2", "CRN", "1.5"),
            ("INV-Q3", "INV", "4"),
        ):
            document = invoice(sandbox, number, invoice_type=kind)
            uuids[number] = await queue(
                sandbox, "invoice", set_text(document, "InvoiceLine/Quantity/Amount", quantity)
            )
        await poll(gateway)
        entries = await ledger(gateway)
        assert entries[uuids["INV-Q1"]] == entries[uuids["CRN-Q2"]] == ("quarantined", "quantity")
        assert entries[uuids["INV-Q3"]] == ("acknowledged", None)

    async def test_judged_as_the_portal_wrote_it(self, gateway: Gateway, sandbox: Sandbox) -> None:
        """ "3." is a decimal, not an integer, even though it reads as three."""
        order = set_text(content_order(sandbox, "WEB-Q2"), "OrderLine/Quantity/Amount", "3.")
        uuid = await queue(sandbox, "order", order)
        await poll(gateway)
        assert (await ledger(gateway))[uuid] == ("quarantined", "quantity")

    async def test_an_ignored_lines_fraction_leaves_no_checksum_to_check(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """The checksum counts every line in 64-bit integers: a line FMS ignores (its Action
        is not Original) with 2.5 in it gives no checksum FMS could have computed. It is a
        checksum problem, so the checksum policy decides: by default, quarantined."""
        uuid = await queue(sandbox, "order", content_order(sandbox, "WEB-Q3", lines=WITHDRAWN))
        await poll(gateway)
        state, rule, reason = (await documents(gateway))[uuid]
        assert (state, rule) == ("quarantined", "checksum")
        assert "line(s) 4 (2.5) is not a whole number" in reason

    async def test_which_the_checksum_policy_lets_through(
        self, gateway_with: GatewayWith, sandbox: Sandbox
    ) -> None:
        gateway = await gateway_with(eproc={"checksum_policy": "off"})
        uuid = await queue(sandbox, "order", content_order(sandbox, "WEB-Q4", lines=WITHDRAWN))
        await poll(gateway)
        assert (await ledger(gateway))[uuid] == ("acknowledged", None)


class TestTestFlag:
    async def test_a_content_order_is_as_live_as_its_least_live_flag(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """Seed 002 reads TestFlag/Test/Mode: "Must be 0 ... FMS does not support handling of
        test messages". A flag written both ways, 0 on TestFlag and 1 on its Test, is a test
        message."""
        order = content_order(sandbox, "WEB-T1")
        flag = order.find("OrderHead/TestFlag")
        assert flag is not None and flag.get("Mode") == "0"
        etree.SubElement(flag, "Test", Mode="1")
        uuid = await queue(sandbox, "order", order)
        await poll(gateway)
        assert (await ledger(gateway))[uuid] == ("quarantined", "test_mode")


class TestHandshakeCodes:
    async def test_a_missing_code_is_quarantined_by_its_rule(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """BuyersCodeForSupplier and SuppliersCodeForBuyer "must be present if file is to
        import"."""
        no_supplier_code = remove(
            content_order(sandbox, "WEB-H1"), "Supplier/SupplierReferences/BuyersCodeForSupplier"
        )
        no_account = remove(
            content_order(sandbox, "WEB-H2"), "Buyer/BuyerReferences/SuppliersCodeForBuyer"
        )
        first = await queue(sandbox, "order", no_supplier_code)
        second = await queue(sandbox, "order", no_account)
        await poll(gateway)
        entries = await ledger(gateway)
        assert entries[first] == ("quarantined", "handshake_codes")
        assert entries[second] == ("quarantined", "handshake_codes")

    async def test_waived_for_portals_relying_on_duns(
        self, gateway_with: GatewayWith, sandbox: Sandbox
    ) -> None:
        gateway = await gateway_with(eproc={"require_handshake_codes": False})
        order = remove(
            content_order(sandbox, "WEB-H3"), "Supplier/SupplierReferences/BuyersCodeForSupplier"
        )
        uuid = await queue(sandbox, "order", order)
        await poll(gateway)
        assert (await ledger(gateway))[uuid] == ("acknowledged", None)


class TestInvoices:
    async def test_a_missing_buyer_duns_is_quarantined(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """The handshake "makes use of the DUNS numbers ... for both supplier and
        establishment"."""
        uuid = await queue(sandbox, "invoice", invoice(sandbox, "INV-B1", buyer_duns=None))
        await poll(gateway)
        assert (await ledger(gateway))[uuid] == ("quarantined", "buyer_duns")

    async def test_a_school_named_as_the_party_invoiced_is_the_buyer(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """BASDA's Invoice makes Buyer optional: an invoice naming the school by the DUNS of
        InvoiceTo imports; naming another school there, it does not."""
        uuids = {}
        for number, duns in (("INV-B2", sandbox.demo.school_duns), ("INV-B3", "111111111")):
            document = invoice(sandbox, number, buyer_duns=None)
            references = etree.SubElement(
                etree.SubElement(document, "InvoiceTo"), "InvoiceToReferences"
            )
            etree.SubElement(references, "DUNS").text = duns
            uuids[number] = await queue(sandbox, "invoice", document)
        await poll(gateway)
        entries = await ledger(gateway)
        assert entries[uuids["INV-B2"]] == ("acknowledged", None)
        assert entries[uuids["INV-B3"]] == ("quarantined", "buyer_duns")

    async def test_a_credit_note_listed_as_an_invoice_reaches_fng_as_a_credit_note(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """InvoiceType Code "Determines whether the message is treated as an Invoice or as a
        Credit Note", whatever the portal's index says; the other way round too."""
        credit = invoice(sandbox, "CRN-T1", invoice_type="CRN", credited_invoice="INV-T0")
        listed_invoice = await queue(sandbox, "invoice", credit)
        listed_credit = await queue(sandbox, "creditnote", invoice(sandbox, "INV-T2"))
        await poll(gateway)
        entries = await ledger(gateway)
        assert entries[listed_invoice] == entries[listed_credit] == ("acknowledged", None)
        assert (await in_fng(sandbox, listed_invoice))["type"] == "creditnote"
        assert (await in_fng(sandbox, listed_credit))["type"] == "invoice"

    async def test_codes_and_flags_are_read_as_their_types_read_them(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """InvoiceType "INV" or "CRN" "(any case)", and a test flag whose xs:boolean value
        " 0 " is 0: the spaces around them are not part of them."""
        credit = invoice(sandbox, "CRN-S1", invoice_type="CRN", credited_invoice="INV-S0")
        kind, flag = credit.find("InvoiceHead/InvoiceType"), credit.find("InvoiceHead/TestFlag")
        assert kind is not None and flag is not None
        kind.set("Code", " crn ")
        flag.set("Mode", " 0 ")
        uuid = await queue(sandbox, "creditnote", credit)
        await poll(gateway)
        assert (await ledger(gateway))[uuid] == ("acknowledged", None)
        assert (await in_fng(sandbox, uuid))["type"] == "creditnote"


class TestChecksumPolicy:
    async def test_enforce_quarantines_both_ways(self, gateway: Gateway, sandbox: Sandbox) -> None:
        """The default, as FMS did: a content order in, an authorised order out."""
        uuid = await queue(sandbox, "order", content_order(sandbox, "WEB-K1", checksum_offset=2))
        order_id = await authorise(sandbox, authorised_order(sandbox, "PO-K1", checksum_offset=2))
        await poll(gateway)
        assert (await ledger(gateway))[uuid] == ("quarantined", "checksum")
        assert (await orders(gateway))[order_id][:2] == ("quarantined", "checksum")

    async def test_warn_imports_sends_and_counts(
        self, gateway_with: GatewayWith, sandbox: Sandbox
    ) -> None:
        gateway = await gateway_with(eproc={"checksum_policy": "warn"})
        await poll(gateway)  # the demo portal's own documents first
        before = {direction: await mismatches(gateway, sandbox, direction) for direction in IN_OUT}
        uuid = await queue(sandbox, "order", content_order(sandbox, "WEB-K2", checksum_offset=2))
        order_id = await authorise(sandbox, authorised_order(sandbox, "PO-K2", checksum_offset=2))
        await poll(gateway)
        assert (await ledger(gateway))[uuid] == ("acknowledged", None)
        assert (await in_fng(sandbox, uuid))["type"] == "order"
        assert (await orders(gateway))[order_id][:2] == ("sent", None)
        assert (await fng_order_states(sandbox))[order_id] == "sent"
        for direction in IN_OUT:
            assert await mismatches(gateway, sandbox, direction) == before[direction] + 1

    async def test_off_imports_and_sends_without_counting(
        self, gateway_with: GatewayWith, sandbox: Sandbox
    ) -> None:
        gateway = await gateway_with(eproc={"checksum_policy": "off"})
        uuid = await queue(sandbox, "order", content_order(sandbox, "WEB-K3", checksum_offset=2))
        order_id = await authorise(sandbox, authorised_order(sandbox, "PO-K3", checksum_offset=2))
        await poll(gateway)
        assert (await ledger(gateway))[uuid] == ("acknowledged", None)
        assert (await orders(gateway))[order_id][:2] == ("sent", None)
        assert "fng_gateway_eproc_checksum_mismatches_total{" not in await metrics(gateway)


class TestPartiesByGlnOrDuns:
    async def test_a_gln_suppliers_order_is_sent(self, gateway: Gateway, sandbox: Sandbox) -> None:
        """SupplierReferences/GLN when the supplier's "GLN | DUNs" attribute is GLN."""
        await sandbox.state.portals.add(
            "gln-supplier", username="u", password="p", supplier_duns=GLN
        )
        await gateway.tenancy.add_portal(
            gateway.demo.database_id,
            name="gln-supplier",
            url=f"{sandbox.url}/portals/gln-supplier/EProcurementService.asmx",
            username="u",
            password="p",
            supplier_duns=[GLN],
            poll_seconds=10,
            allow_http=True,
        )
        order_id = await sandbox.state.procurement.add_authorised_order(
            sandbox.demo.database_id, supplier_duns=GLN, buyer_duns=sandbox.demo.school_duns
        )
        await poll(gateway)
        assert (await orders(gateway))[order_id][:2] == ("sent", None)
        (received,) = (await sandbox.state.portals.describe("gln-supplier"))["orders"]
        sent = etree.fromstring(received["xml"].encode())
        assert sent.findtext("Supplier/SupplierReferences/GLN") == GLN
        assert sent.find("Supplier/SupplierReferences/DUNS") is None

    async def test_a_school_known_by_its_gln_is_named_by_it(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        async with gateway.app[STORE].write() as conn:
            await conn.execute(schools.update().values(duns=GLN))
        by_gln = await authorise(
            sandbox, authorised_order(sandbox, "PO-G1", buyer_duns=None, buyer_gln=GLN)
        )
        by_duns = await authorise(sandbox, authorised_order(sandbox, "PO-G2"))
        await poll(gateway)
        ledger_orders = await orders(gateway)
        assert ledger_orders[by_gln][:2] == ("sent", None)
        state, rule, reason = ledger_orders[by_duns]
        assert (state, rule) == ("quarantined", "buyer_id")
        assert "Buyer/BuyerReferences/GLN is missing" in (reason or "")

    async def test_a_supplier_named_by_the_wrong_kind_of_number_is_quarantined(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """A DUNS-identified supplier's order that names it only by GLN."""
        order = authorised_order(sandbox, "PO-G3", supplier_duns=None, supplier_gln=GLN)
        order_id = await authorise(sandbox, order)
        await poll(gateway)
        state, rule, reason = (await orders(gateway))[order_id]
        assert (state, rule) == ("quarantined", "supplier_id")
        assert "Supplier/SupplierReferences/DUNS is missing" in (reason or "")

    async def test_the_party_invoiced_is_the_school_and_only_the_school(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """InvoiceTo's references are "Set as Establishment Details", as the buyer's are: an
        order telling the supplier to invoice another party, or naming the school by a
        second number FMS never wrote, is quarantined; one invoicing the school is sent."""
        ids = {}
        for number, references in (
            ("PO-I1", {"DUNS": sandbox.demo.school_duns}),
            ("PO-I2", {"DUNS": "555555555"}),
            ("PO-I3", {"DUNS": sandbox.demo.school_duns, "GLN": GLN}),
        ):
            order = authorised_order(sandbox, number)
            party = etree.SubElement(etree.SubElement(order, "InvoiceTo"), "InvoiceToReferences")
            for tag, value in references.items():
                etree.SubElement(party, tag).text = value
            ids[number] = await authorise(sandbox, order)
        foreign_buyer = authorised_order(sandbox, "PO-I4")
        buyer = foreign_buyer.find("Buyer/BuyerReferences")
        assert buyer is not None
        etree.SubElement(buyer, "GLN").text = GLN
        ids["PO-I4"] = await authorise(sandbox, foreign_buyer)
        await poll(gateway)
        ledger_orders = await orders(gateway)
        assert ledger_orders[ids["PO-I1"]][:2] == ("sent", None)
        for number, rule, words in (
            ("PO-I2", "invoice_to_id", "InvoiceTo/InvoiceToReferences/DUNS is 555555555"),
            ("PO-I3", "invoice_to_id", f"InvoiceTo/InvoiceToReferences/GLN is {GLN}"),
            ("PO-I4", "buyer_id", f"Buyer/BuyerReferences/GLN is {GLN}"),
        ):
            state, found, reason = ledger_orders[ids[number]]
            assert (state, found) == ("quarantined", rule), number
            assert words in (reason or ""), reason
        assert (await received_order(sandbox, "PO-I1")).findtext(
            "InvoiceTo/InvoiceToReferences/DUNS"
        ) == sandbox.demo.school_duns


Mutation = Callable[[etree._Element], etree._Element]


def _without_uom(order: etree._Element) -> etree._Element:
    quantity = order.find("OrderLine/Quantity")
    assert quantity is not None
    del quantity.attrib["UOMCode"]
    return order


def _currency_code_list(order: etree._Element) -> etree._Element:
    currency = order.find("OrderHead/OrderCurrency/Currency")
    assert currency is not None
    currency.set("CodeList", "ISO4217")
    return order


#: (what is wrong, how to make it so, the field the quarantine names)
CONSTANTS: tuple[tuple[str, Mutation, str], ...] = (
    (
        "schema version",
        lambda o: set_text(o, "OrderHead/Schema/Version", "3.10"),
        "OrderHead/Schema/Version is '3.10'",
    ),
    (
        "precision",
        lambda o: remove(o, "OrderHead/Parameters/Precision"),
        "OrderHead/Parameters/Precision is missing",
    ),
    (
        "originating software",
        lambda o: set_text(o, "OrderHead/OriginatingSoftware/SoftwareProduct", "FNG"),
        "OrderHead/OriginatingSoftware/SoftwareProduct is 'FNG'",
    ),
    (
        "currency code list",
        _currency_code_list,
        "OrderHead/OrderCurrency/Currency/@Codelist is 'ISO4217'",
    ),
    (
        "commodity class",
        lambda o: remove(o, "OrderLine[2]/Product/CommodityClass"),
        "line 2: OrderLine/Product/CommodityClass is missing",
    ),
    ("UOM", _without_uom, "line 1: OrderLine/Quantity/@UOMCode is missing"),
    (
        "narrative",
        lambda o: set_text(o, "OrderLine/Narrative", "1001"),
        "line 1: OrderLine/Narrative is '1001'",
    ),
    (
        "preferred date",
        lambda o: remove(o, "OrderLine[2]/Delivery/PreferredDate"),
        "line 2: OrderLine/Delivery/PreferredDate is missing",
    ),
)


class TestExportConstants:
    async def test_an_order_without_fmss_constants_is_quarantined_naming_the_field(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        complete = await authorise(sandbox, authorised_order(sandbox, "PO-X0"))
        broken = {
            await authorise(sandbox, mutate(authorised_order(sandbox, f"PO-X{n}"))): (what, field)
            for n, (what, mutate, field) in enumerate(CONSTANTS, start=1)
        }
        await poll(gateway)
        ledger_orders = await orders(gateway)
        assert ledger_orders[complete][:2] == ("sent", None)
        for order_id, (what, field) in broken.items():
            state, rule, reason = ledger_orders[order_id]
            assert (state, rule) == ("quarantined", "export_constant"), what
            assert field in (reason or ""), (what, reason)
        states = await fng_order_states(sandbox)
        assert all(states[order_id] == "pending" for order_id in broken)


def _add(path: str, tag: str, value: str) -> Mutation:
    def mutate(order: etree._Element) -> etree._Element:
        parent = order.find(path)
        assert parent is not None, path
        etree.SubElement(parent, tag).text = value
        return order

    return mutate


def _post_code(order: etree._Element) -> etree._Element:
    delivery = order.find("OrderLine/Delivery")
    assert delivery is not None
    address = etree.SubElement(etree.SubElement(delivery, "DeliverTo"), "Address")
    etree.SubElement(address, "AddressLine").text = "1 School Lane"
    etree.SubElement(address, "PostCode").text = "AB1 2CD"
    return order


def _test_flag(order: etree._Element) -> etree._Element:
    flag = order.find("OrderHead/TestFlag")
    assert flag is not None
    flag.set("Mode", "false")
    return order


#: (what is wrong, how to make it so, the rule, what the quarantine's reason says)
FIGURES_AND_FIELDS: tuple[tuple[str, Mutation, str, str], ...] = (
    (
        "a line total not its quantity times its price",
        lambda o: set_text(o, "OrderLine/NetLineTotal", "999.99"),
        "export_totals",
        "line 1: NetLineTotal is 999.99; 3 at 2.50 is 7.50",
    ),
    (
        "goods value not the lines' total",
        lambda o: set_text(o, "OrderTotal/GoodsValue", "1000.00"),
        "export_totals",
        "GoodsValue is 1000.00; the lines' NetLineTotal add up to 21.00",
    ),
    (
        "no gross value",
        lambda o: remove(o, "OrderTotal/GrossValue"),
        "export_totals",
        "GrossValue is missing",
    ),
    (
        "a price written with a comma",
        lambda o: set_text(o, "OrderLine/Price/UnitPrice", "2,50"),
        "export_number",
        "UnitPrice is '2,50'",
    ),
    (
        "a price of three decimals",
        lambda o: set_text(o, "OrderLine/Price/UnitPrice", "2.505"),
        "export_number",
        "UnitPrice is '2.505'",
    ),
    (
        "a quantity that is not whole",
        lambda o: set_text(o, "OrderLine/Quantity/Amount", "3.0"),
        "export_number",
        "line 1: the quantity '3.0' is not whole",
    ),
    (
        "no order number",
        lambda o: remove(o, "OrderReferences/BuyersOrderNumber"),
        "export_field",
        "OrderReferences/BuyersOrderNumber is missing",
    ),
    (
        "no invoice currency",
        lambda o: remove(o, "OrderHead/InvoiceCurrency"),
        "export_field",
        "OrderHead/InvoiceCurrency/Currency/@Code is missing",
    ),
    (
        "a tag with no value",
        _add("OrderReferences", "ContractOrderReference", ""),
        "export_field",
        "OrderReferences/ContractOrderReference has no value",
    ),
    ("a post code FMS never supplied", _post_code, "export_field", "This will not be supplied"),
    ("a test flag of false", _test_flag, "test_mode", '"0" as a numeric'),
)


class TestExportFiguresAndFields:
    async def test_an_order_fms_would_not_have_written_is_quarantined_naming_why(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """Totals "Calculate[d]", numbers as "." and "13.2" write them, the fields FMS always
        filled, "A tag will not be included in the XML file with no value", a PostCode
        that "will not be supplied", TestFlag "0" as a numeric."""
        broken = {
            await authorise(sandbox, mutate(authorised_order(sandbox, f"PO-F{n}"))): (
                what,
                rule,
                said,
            )
            for n, (what, mutate, rule, said) in enumerate(FIGURES_AND_FIELDS)
        }
        await poll(gateway)
        ledger_orders = await orders(gateway)
        for order_id, (what, rule, said) in broken.items():
            state, found, reason = ledger_orders[order_id]
            assert (state, found) == ("quarantined", rule), (what, reason)
            assert said in (reason or ""), (what, reason)
        states = await fng_order_states(sandbox)
        assert all(states[order_id] == "pending" for order_id in broken)


class TestEditsOfAContentOrder:
    async def _collected(self, gateway: Gateway, sandbox: Sandbox, order: etree._Element) -> str:
        uuid = await queue(sandbox, "order", order)
        await poll(gateway)
        assert (await ledger(gateway))[uuid] == ("acknowledged", None)
        return uuid

    async def test_quantities_changed_and_lines_deleted_are_sent(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """ "The user can edit the line quantity to be purchased. Lines can be deleted." The
        content order wrote its prices with ","; they are the same prices."""
        uuid = await self._collected(
            gateway, sandbox, with_separator(content_order(sandbox, "WEB-E1"))
        )
        edited = (replace(LINES[1], quantity="5"),)
        order_id = await authorise(
            sandbox,
            authorised_order(sandbox, "PO-E1", lines=edited),
            content_order=(sandbox.demo.portal_name, uuid),
        )
        await poll(gateway)
        assert (await orders(gateway))[order_id][:2] == ("sent", None)

    async def test_an_added_line_or_a_changed_price_is_quarantined_naming_the_line(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """ "Additional lines can not be added"; "The user can not edit the part number, the
        description, or the price"."""
        uuid = await self._collected(gateway, sandbox, content_order(sandbox, "WEB-E2"))
        origin = (sandbox.demo.portal_name, uuid)
        added = (*LINES, ebis.OrderLine(3, "P-315", "Glue sticks", "1", Decimal("11.99")))
        cases = {
            "line 3 is not in the content order": added,
            "line 2: its price changed from 6.75 to 7.00": (
                LINES[0],
                replace(LINES[1], unit_price=Decimal("7.00")),
            ),
            "line 1: its part number changed from P-100 to P-101": (
                replace(LINES[0], product_code="P-101"),
            ),
            "line 1: its description changed": (replace(LINES[0], description="Rulers"),),
            "line 1: its UOM code changed from EA to PK": (replace(LINES[0], uom="PK"),),
            "line number 2 is given to more than one line": (
                LINES[0],
                LINES[1],
                replace(LINES[1], quantity="1"),
            ),
        }
        ids = {
            await authorise(
                sandbox,
                authorised_order(sandbox, f"PO-E2{n}", lines=lines),
                content_order=origin,
            ): expected
            for n, (expected, lines) in enumerate(cases.items())
        }
        await poll(gateway)
        ledger_orders = await orders(gateway)
        for order_id, expected in ids.items():
            state, rule, reason = ledger_orders[order_id]
            assert (state, rule) == ("quarantined", "order_edits"), expected
            assert expected in (reason or ""), (expected, reason)

    async def test_the_suppliers_commodity_class_comes_back_as_it_was_given(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """CommodityClass: "Not used by FMS but returned in a confirmed order XML file"; the
        constant "00 00 00 00" is for a line that came without one."""
        classified = (replace(LINES[0], commodity_class="24 11 18 00"), LINES[1])
        uuid = await self._collected(
            gateway, sandbox, content_order(sandbox, "WEB-E4", lines=classified)
        )
        order_id = await authorise(
            sandbox,
            authorised_order(sandbox, "PO-E4"),
            content_order=(sandbox.demo.portal_name, uuid),
        )
        await poll(gateway)
        state, rule, reason = (await orders(gateway))[order_id]
        assert (state, rule) == ("quarantined", "order_edits")
        assert "line 1: its commodity class changed from 24 11 18 00 to 00 00 00 00" in (
            reason or ""
        )

    async def test_a_content_order_the_gateway_never_collected_is_quarantined(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        order_id = await authorise(
            sandbox,
            authorised_order(sandbox, "PO-E3"),
            content_order=(sandbox.demo.portal_name, "no-such-document"),
        )
        await poll(gateway)
        state, rule, reason = (await orders(gateway))[order_id]
        assert (state, rule) == ("quarantined", "content_order")
        assert "no-such-document" in (reason or "")

    async def test_a_content_orders_own_commodity_class_goes_back_in_any_form(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """ "Order Line Details | Commodity class, if available otherwise constant": a class
        the supplier gave (here UNSPSC's eight digits) is returned as it came, and sent."""
        classified = (replace(LINES[0], commodity_class="43211503"), LINES[1])
        uuid = await self._collected(
            gateway, sandbox, content_order(sandbox, "WEB-E5", lines=classified)
        )
        order = set_text(
            authorised_order(sandbox, "PO-E5"), "OrderLine[1]/Product/CommodityClass", "43211503"
        )
        order_id = await authorise(sandbox, order, content_order=(sandbox.demo.portal_name, uuid))
        await poll(gateway)
        assert (await orders(gateway))[order_id][:2] == ("sent", None)


#: The namespaces BASDA's eBIS-XML schemas give an Order and an Invoice.
BASDA_ORDER = "urn:schemas-basda-org:2000:purchaseOrder:xdr:3.01"
BASDA_INVOICE = "urn:schemas-basda-org:2000:salesInvoice:xdr:3.01"


def in_namespace(document: etree._Element, namespace: str) -> etree._Element:
    """The document with every element in ``namespace``, declared as the default."""
    qualified = etree.Element(f"{{{namespace}}}{document.tag}", nsmap={None: namespace})
    qualified.attrib.update(document.attrib)
    qualified.text = document.text
    for child in document:
        qualified.append(child)
    for element in qualified.iterdescendants():
        if isinstance(element.tag, str):
            element.tag = f"{{{namespace}}}{element.tag}"
    return etree.fromstring(etree.tostring(qualified))


def actions_as_attributes(order: etree._Element) -> etree._Element:
    """Each line's Action written as eBIS-XML writes it: an attribute of OrderLine."""
    for line in order.iterfind("OrderLine"):
        element = line.find("Action")
        assert element is not None
        line.set("Action", element.text or "")
        line.remove(element)
    return order


class TestEbisForms:
    """Documents written as BASDA's schemas have them: in their namespace, with attributes
    where eBIS-XML puts them."""

    async def test_documents_in_basdas_namespace_import_and_reach_fng_without_it(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        order = await queue(
            sandbox, "order", in_namespace(content_order(sandbox, "WEB-N1"), BASDA_ORDER)
        )
        credit = await queue(
            sandbox,
            "invoice",
            in_namespace(invoice(sandbox, "INV-N1", invoice_type="CRN"), BASDA_INVOICE),
        )
        await poll(gateway)
        assert (await ledger(gateway))[order] == ("acknowledged", None)
        assert (await ledger(gateway))[credit] == ("acknowledged", None)
        for uuid, tag in ((order, "Order"), (credit, "Invoice")):
            delivered = etree.fromstring((await in_fng(sandbox, uuid))["body"].encode())
            # One form for FNG, the profiles': every element without a namespace.
            assert delivered.tag == tag
            assert {element.tag for element in delivered.iter()} >= {f"{tag}Head"}
            assert not [e.tag for e in delivered.iter() if etree.QName(e).namespace], uuid
        assert (await in_fng(sandbox, credit))["type"] == "creditnote"

    async def test_a_document_in_basdas_namespace_still_breaks_fmss_rules(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        wrong = set_text(content_order(sandbox, "WEB-N2"), "OrderHead/OrderType", "x")
        wrong.find("OrderHead/OrderType").set("Code", "PUO")  # type: ignore[union-attr]
        uuid = await queue(sandbox, "order", in_namespace(wrong, BASDA_ORDER))
        await poll(gateway)
        assert (await ledger(gateway))[uuid] == ("quarantined", "order_type")

    async def test_line_actions_written_as_attributes_are_read(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """OrderLine/Action, "If = "Original" add line to order otherwise ignore line", is
        an attribute in eBIS-XML: a content order so written imports, and an authorised
        order so written is sent, each line read."""
        uuid = await queue(
            sandbox, "order", actions_as_attributes(content_order(sandbox, "WEB-A1"))
        )
        await poll(gateway)
        assert (await ledger(gateway))[uuid] == ("acknowledged", None)
        order_id = await authorise(
            sandbox,
            actions_as_attributes(authorised_order(sandbox, "PO-A1")),
            content_order=(sandbox.demo.portal_name, uuid),
        )
        await poll(gateway)
        assert (await orders(gateway))[order_id][:2] == ("sent", None)

    async def test_a_function_code_list_as_basda_spells_it_is_not_written_twice(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        order = authorised_order(sandbox, "PO-C1")
        function = order.find("OrderHead/Function")
        assert function is not None
        del function.attrib["CodeList"]
        function.set("Codelist", "UKGov-DocStatus")
        order_id = await authorise(sandbox, order)
        await poll(gateway)
        assert (await orders(gateway))[order_id][:2] == ("sent", None)
        sent = await received_order(sandbox, "PO-C1")
        sent_function = sent.find("OrderHead/Function")
        assert sent_function is not None
        assert dict(sent_function.attrib) == {
            "Code": "original",
            "Codelist": "UKGov-DocStatus",
            "Preserve": "true",
        }


def official_schema(root: str, namespace: str) -> str:
    """A stand-in for BASDA's schema of ``root`` (which may not be redistributed): any
    content, in BASDA's namespace."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{namespace}"
           xmlns="{namespace}" elementFormDefault="qualified">
  <xs:element name="{root}">
    <xs:complexType>
      <xs:sequence>
        <xs:any processContents="skip" minOccurs="0" maxOccurs="unbounded"
                namespace="##targetNamespace"/>
      </xs:sequence>
      <xs:anyAttribute processContents="skip"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""


class TestOfficialSchemas:
    """With the operator's official schemas, which put documents in BASDA's namespaces."""

    @pytest.fixture
    async def gateway(self, gateway_with: GatewayWith, tmp_path: Path) -> Gateway:
        schemas = tmp_path / "ebis"
        schemas.mkdir()
        (schemas / "Order-v3.xsd").write_text(official_schema("Order", BASDA_ORDER))
        (schemas / "Invoice-v3.xsd").write_text(official_schema("Invoice", BASDA_INVOICE))
        return await gateway_with(eproc={"ebis_schema_dir": str(schemas)})

    async def test_an_authorised_order_is_sent_in_the_schemas_namespace(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """ "The Authorised Order exported from FMS is schema valid"."""
        order_id = await authorise(sandbox, authorised_order(sandbox, "PO-O1"))
        await poll(gateway)
        assert (await orders(gateway))[order_id][:2] == ("sent", None)
        sent = await received_order(sandbox, "PO-O1", BASDA_ORDER)
        assert sent.tag == f"{{{BASDA_ORDER}}}Order"
        assert sent.nsmap == {None: BASDA_ORDER}
        assert all(etree.QName(e).namespace == BASDA_ORDER for e in sent.iter())

    async def test_an_invoice_is_judged_by_the_official_schema_as_the_portal_sent_it(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """ "The file is validated against the schema and must therefore be schema
        compliant": in BASDA's namespace it imports; without it, it breaks the schema."""
        valid = await queue(
            sandbox, "invoice", in_namespace(invoice(sandbox, "INV-O1"), BASDA_INVOICE)
        )
        plain = await queue(sandbox, "invoice", invoice(sandbox, "INV-O2"))
        await poll(gateway)
        documents = await ledger(gateway)
        assert documents[valid] == ("acknowledged", None)
        assert documents[plain] == ("quarantined", "ebis_schema")
