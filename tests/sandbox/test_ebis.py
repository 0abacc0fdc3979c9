"""The eBIS-XML documents the sandbox writes, their checksum, and the demo portal's stock."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from lxml import etree

from gateway.eproc.checksum import WORKED_EXAMPLES, WorkedExample
from gateway.sandbox import SandboxState, ebis, seed_demo
from gateway.sandbox.demo import DEMO_CLIENT_ID, DEMO_DATABASE, seed_budget_planning
from gateway.sandbox.fng.databases import new_guid
from gateway.sandbox.portal.demo import (
    DEMO_SCHOOL_DUNS,
    DEMO_SUPPLIER_DUNS,
    DemoDocument,
    demo_documents,
)
from gateway.xmlsafe import SchemaRegistry
from tests.sandbox.conftest import Sandbox

PROFILES = {
    "order": "eproc/profile/Order.xsd",
    "invoice": "eproc/profile/Invoice.xsd",
    "creditnote": "eproc/profile/Invoice.xsd",
}


def _parse(text: str) -> etree._Element:
    return etree.fromstring(text.encode())


def _hand_checksum(order: etree._Element) -> int:
    """The checksum as seed 002 and the brief state it, written again here on purpose."""
    year, month, day = (int(part) for part in (order.findtext("OrderDate") or "").split("-"))
    lines = order.findall("OrderLine")
    lines_total = sum(
        int(line.findtext("LineNumber") or "") * Decimal(line.findtext("Quantity/Amount") or "")
        for line in lines
    )
    total_value = int(Decimal(order.findtext("OrderTotal/GoodsValue") or ""))
    f1 = year + 13 * day - 7 * int(lines_total)
    f2 = month + 17 * len(lines) + 5 * total_value
    return abs(f1 * f2) % 100_000


def broken_rules(document: DemoDocument) -> set[str]:
    """FMS's import rules (seed 002) that a portal document breaks, checked independently
    of the generator."""
    try:
        root = _parse(document.xml)
    except etree.XMLSyntaxError:
        return {"not_xml"}
    broken: set[str] = set()
    supplier = root.findtext("Supplier/SupplierReferences/DUNS")
    buyer = root.findtext("Buyer/BuyerReferences/DUNS")
    if supplier != DEMO_SUPPLIER_DUNS:
        broken.add("supplier_duns")
    if buyer != DEMO_SCHOOL_DUNS:
        broken.add("buyer_duns")
    if document.doc_type == "order":
        head = root.find("OrderHead")
        assert head is not None
        if head.find("OrderType").get("Code") != "CTO":  # type: ignore[union-attr]
            broken.add("order_type")
        if head.find("TestFlag").get("Mode") != "0":  # type: ignore[union-attr]
            broken.add("test_mode")
        if (head.findtext("Parameters/Language") or "")[:2].lower() != "en":
            broken.add("language")
        if head.find("OrderCurrency/Currency").get("Code") != "GBP":  # type: ignore[union-attr]
            broken.add("currency")
        amounts = [Decimal(a.text or "") for a in root.iterfind("OrderLine/Quantity/Amount")]
        if any(amount != amount.to_integral_value() for amount in amounts):
            broken.add("quantity")
        if abs(int(head.findtext("Checksum") or "") - _hand_checksum(root)) > 1:
            broken.add("checksum")
    elif document.doc_type in ("invoice", "creditnote"):
        head = root.find("InvoiceHead")
        assert head is not None
        kind = head.find("InvoiceType")
        assert kind is not None
        if (kind.get("Code") or "").upper() not in ("INV", "CRN"):
            broken.add("invoice_type")
        if (kind.get("Codelist") or "").upper() != "BASDA":
            broken.add("code_list")
        flag = head.find("TestFlag")
        if flag is not None and flag.get("Mode") != "0":
            broken.add("invoice_test_mode")
    return broken


class TestChecksum:
    def test_the_first_worked_example_gives_its_checksum(self) -> None:
        """2026-11-20, one line 1 x 3, goods 7.50: F1 2265, F2 63, 142695 -> 42695."""
        assert ebis.order_checksum(date(2026, 11, 20), [(1, Decimal(3))], Decimal("7.50")) == 42695
        order = ebis.order(
            number="WEB-1001",
            order_date=date(2026, 11, 20),
            supplier_duns=DEMO_SUPPLIER_DUNS,
            buyer_duns=DEMO_SCHOOL_DUNS,
            lines=[ebis.OrderLine(1, "P-100", "Exercise books", "3", Decimal("2.50"))],
        )
        assert order.findtext("OrderTotal/GoodsValue") == "7.50"
        assert order.findtext("OrderHead/Checksum") == "42695"

    def test_the_second_worked_example_gives_its_checksum(self) -> None:
        """2026-01-01, lines 1 x 1 and 2 x 208, goods 834.50: F1 -880, F2 4205, |-3700400|
        -> 00400, written 400."""
        lines = [(1, Decimal(1)), (2, Decimal(208))]
        assert ebis.order_checksum(date(2026, 1, 1), lines, Decimal("834.50")) == 400
        order = ebis.order(
            number="WEB-1002",
            order_date=date(2026, 1, 1),
            supplier_duns=DEMO_SUPPLIER_DUNS,
            buyer_duns=DEMO_SCHOOL_DUNS,
            lines=[
                ebis.OrderLine(1, "P-100", "Exercise books", "1", Decimal("2.50")),
                ebis.OrderLine(2, "P-500", "Pencils", "208", Decimal("4.00")),
            ],
        )
        assert order.findtext("OrderTotal/GoodsValue") == "834.50"
        assert order.findtext("OrderHead/Checksum") == "400"

    def test_goods_value_is_truncated(self) -> None:
        """The goods value enters as its integer part: 7.99 counts as 7."""
        day = date(2026, 11, 20)
        lines = [(1, Decimal(3))]
        assert ebis.order_checksum(day, lines, Decimal("7.99")) == ebis.order_checksum(
            day, lines, Decimal("7.00")
        )

    def test_every_line_counts(self) -> None:
        """Lines FMS ignores on import (Action Changed) still enter the checksum."""
        changed = ebis.OrderLine(2, "X", "Changed", "4", Decimal("1.00"), action="Changed")
        order = ebis.order(
            number="WEB-1",
            order_date=date(2026, 11, 20),
            supplier_duns=DEMO_SUPPLIER_DUNS,
            buyer_duns=DEMO_SCHOOL_DUNS,
            lines=[ebis.OrderLine(1, "P", "P", "3", Decimal("2.50")), changed],
        )
        assert int(order.findtext("OrderHead/Checksum") or "") == _hand_checksum(order)

    def test_fractional_lines_total_is_refused(self) -> None:
        """A LinesTotal that is not an integer has no checksum."""
        with pytest.raises(ValueError):
            ebis.order_checksum(date(2026, 11, 20), [(1, Decimal("1.5"))], Decimal(0))


class TestDemoDocuments:
    def test_each_breaks_exactly_its_rule(self) -> None:
        """Valid documents break no import rule; each invalid one breaks the one it names."""
        for document in demo_documents():
            if document.expected == "quote":
                continue
            expected = set() if document.expected == "valid" else {document.expected}
            assert broken_rules(document) == expected, document.uuid

    def test_every_well_formed_demo_document_fits_the_profile_schemas(
        self, schemas: SchemaRegistry
    ) -> None:
        """Every well-formed demo order, invoice and credit note fits the gateway's profile
        schemas (the rules are import rules, not schema rules); not_xml does not parse."""
        for document in demo_documents():
            if document.expected == "not_xml":
                with pytest.raises(etree.XMLSyntaxError):
                    _parse(document.xml)
                continue
            root = _parse(document.xml)
            if document.doc_type == "quote":
                assert root.tag == "Quote"
                continue
            assert schemas.issues(PROFILES[document.doc_type], root) == [], document.uuid

    def test_the_demo_holds_valid_documents_a_quote_and_each_broken_rule(self) -> None:
        """The demo holds five valid documents, a quote, and one of each broken rule."""
        expected = [document.expected for document in demo_documents()]
        assert expected.count("valid") == 5
        assert sorted(set(expected) - {"valid"}) == sorted(
            [
                "quote",
                "order_type",
                "test_mode",
                "currency",
                "language",
                "checksum",
                "quantity",
                "buyer_duns",
                "supplier_duns",
                "invoice_type",
                "code_list",
                "invoice_test_mode",
                "not_xml",
            ]
        )

    def test_tolerated_checksum_and_changed_line(self) -> None:
        """The valid orders include a checksum one off and a line whose Action is Changed."""
        documents = {document.uuid: document for document in demo_documents()}
        off_by_one = _parse(documents["demo-order-3"].xml)
        sent = int(off_by_one.findtext("OrderHead/Checksum") or "")
        assert sent == _hand_checksum(off_by_one) + 1
        changed = _parse(documents["demo-order-2"].xml)
        actions = [line.findtext("Action") for line in changed.iterfind("OrderLine")]
        assert actions.count("Changed") == 1 and actions.count("Original") >= 1
        credit = _parse(documents["demo-creditnote-1"].xml)
        assert credit.find("InvoiceHead/InvoiceType").get("Code") == "CRN"  # type: ignore[union-attr]
        assert credit.findtext("Extensions/CN2InvoiceReferences/InvoiceNumber") == "INV-2001"


class TestDemoSeed:
    async def test_portal_holds_the_documents(self, sandbox: Sandbox) -> None:
        """The demo portal holds every listed document, unprocessed, for the demo's user."""
        demo = sandbox.demo
        assert demo.school_duns.isdigit() and len(demo.school_duns) == 9
        assert demo.portal_path == "/portals/demo-supplier/EProcurementService.asmx"
        portal = await sandbox.state.portals.describe(demo.portal_name)
        assert (portal["username"], portal["password"], portal["supplier_duns"]) == (
            demo.portal_username,
            demo.portal_password,
            demo.supplier_duns,
        )
        stocked = [(d["uuid"], d["type"], d["processed"]) for d in portal["documents"]]
        assert stocked == [(uuid, kind, False) for uuid, kind, _ in demo.portal_documents]
        for uuid, _, _ in demo.portal_documents:
            assert len(uuid) <= 100 and " " not in uuid

    async def test_seeding_again_changes_nothing(self, sandbox: Sandbox) -> None:
        """A second seed returns the same demo and adds no documents or orders; the
        password it reports is the portal's current one."""
        again = await seed_demo(sandbox.state)
        assert again == sandbox.demo
        portal = await sandbox.state.portals.describe(sandbox.demo.portal_name)
        assert len(portal["documents"]) == len(sandbox.demo.portal_documents)
        assert len(await sandbox.state.procurement.authorised_orders()) == 1
        new = await sandbox.state.portals.change_password(sandbox.demo.portal_name)
        assert (await seed_demo(sandbox.state)).portal_password == new

    async def test_older_demo_gains_procurement(self, state: SandboxState) -> None:
        """A demo seeded before the sandbox knew eProcurement gains its portal and order."""
        await state.simsid.add_client(DEMO_CLIENT_ID, secret="secret")
        fng_key, partner_key = new_guid(), new_guid()
        database_id = await state.databases.add(
            DEMO_DATABASE,
            school_name="Demo Primary School",
            la_number="123",
            establishment_number="4567",
            client_id=DEMO_CLIENT_ID,
            fng_key=fng_key,
            partner_key=partner_key,
        )
        ps_id = await state.journals.add_payment_system(database_id, "TPPCS", "Demo payments", {})
        planning = await seed_budget_planning(state, database_id, date.today())
        older = {
            "client_id": DEMO_CLIENT_ID,
            "client_secret": "secret",
            "fng_key": fng_key,
            "partner_key": partner_key,
            "database_id": database_id,
            "payment_system_id": ps_id,
            **planning,
        }
        await state.store.put_setting("demo", json.dumps(older))
        demo = await seed_demo(state)
        (order,) = await state.procurement.authorised_orders(database_id)
        assert order["id"] == demo.authorised_order_id
        portal = await state.portals.describe(demo.portal_name)
        assert portal["password"] == demo.portal_password
        assert len(portal["documents"]) == len(demo.portal_documents)
        assert await seed_demo(state) == demo


@pytest.mark.parametrize("example", WORKED_EXAMPLES, ids=lambda example: example.goods_value)
def test_the_sandboxs_checksum_is_the_gateways(example: WorkedExample) -> None:
    """The sandbox writes its orders' checksums independently of the gateway, and the two
    agree on every worked example, the goods value in pence before its whole pounds."""
    lines = [(number, Decimal(quantity)) for number, quantity in example.lines]
    goods = Decimal(example.goods_value.replace(example.separator, "."))
    assert ebis.order_checksum(date(*example.order_date), lines, goods) == example.checksum
