"""FNG's eProcurement calls: documents delivered from portals, and authorised orders."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from aiohttp import ClientResponse
from lxml import etree

from gateway.sandbox import ebis
from gateway.xmlsafe import SchemaRegistry
from tests.sandbox.conftest import Sandbox

EPROC = "/fng/api/EProcurement"
FNG_EPROC_XSD = "eproc/FngEProcurement.xsd"

ORDER = ebis.to_text(
    ebis.order(
        number="WEB-1",
        order_date=date(2026, 11, 20),
        supplier_duns="987654321",
        buyer_duns="214365870",
        lines=[ebis.OrderLine(1, "P-100", "Exercise books", "3", Decimal("2.50"))],
    )
).encode()
INVOICE = ebis.to_text(
    ebis.invoice(
        number="INV-1",
        invoice_date=date(2026, 11, 21),
        order_number="WEB-1",
        supplier_duns="987654321",
        buyer_duns="214365870",
        lines=[ebis.InvoiceLine(1, 1, "P-100", "Exercise books", "3", Decimal("2.50"))],
    )
).encode()


async def deliver(
    sandbox: Sandbox,
    body: bytes,
    *,
    source: str = "demo-supplier",
    document_id: str = "doc-1",
    doc_type: str = "order",
    token: str | None = None,
    content_type: str = "application/xml",
    **keys: str,
) -> ClientResponse:
    token = token or await sandbox.token()
    return await sandbox.client.post(
        f"{EPROC}/Documents",
        params={"source": source, "documentId": document_id, "type": doc_type},
        data=body,
        headers={**sandbox.headers(token, **keys), "Content-Type": content_type},
    )


async def receipt(response: ClientResponse, schemas: SchemaRegistry) -> dict[str, str]:
    assert response.content_type == "application/xml"
    root = etree.fromstring(await response.read())
    assert schemas.issues(FNG_EPROC_XSD, root) == []
    return {str(key): str(value) for key, value in root.attrib.items()}


async def pending(sandbox: Sandbox, schemas: SchemaRegistry) -> etree._Element:
    token = await sandbox.token()
    response = await sandbox.client.get(f"{EPROC}/AuthorisedOrders", headers=sandbox.headers(token))
    assert response.status == 200
    root = etree.fromstring(await response.read())
    assert schemas.issues(FNG_EPROC_XSD, root) == []
    return root


async def mark_sent(sandbox: Sandbox, order_id: str, token: str | None = None) -> ClientResponse:
    token = token or await sandbox.token()
    return await sandbox.client.post(
        f"{EPROC}/AuthorisedOrders/{order_id}/Sent", headers=sandbox.headers(token)
    )


class TestDocumentIntake:
    async def test_created_then_existing(self, sandbox: Sandbox, schemas: SchemaRegistry) -> None:
        """A new document is 201 created; the same one again is 200 existing, stored once."""
        token = await sandbox.token()
        first = await deliver(sandbox, ORDER, token=token)
        assert first.status == 201
        assert await receipt(first, schemas) == {
            "source": "demo-supplier",
            "documentId": "doc-1",
            "status": "created",
        }
        again = await deliver(sandbox, ORDER, token=token)
        assert again.status == 200
        assert (await receipt(again, schemas))["status"] == "existing"
        (stored,) = await sandbox.state.procurement.documents()
        assert stored["database_id"] == sandbox.demo.database_id
        assert (stored["source"], stored["document_id"], stored["type"]) == (
            "demo-supplier",
            "doc-1",
            "order",
        )
        assert stored["body"] == ORDER.decode()
        assert (await sandbox.control("GET", "/stats"))["documents_received"] == 1

    async def test_other_content_conflicts(self, sandbox: Sandbox) -> None:
        """Other content under a delivered (source, documentId) is 409 and changes nothing."""
        token = await sandbox.token()
        assert (await deliver(sandbox, ORDER, token=token)).status == 201
        changed = ORDER.replace(b"WEB-1", b"WEB-2")
        response = await deliver(sandbox, changed, token=token)
        assert response.status == 409
        assert response.content_type == "application/problem+json"
        retyped = await deliver(sandbox, INVOICE, doc_type="invoice", token=token)
        assert retyped.status == 409
        (stored,) = await sandbox.control("GET", "/eproc/documents")
        assert stored["body"] == ORDER.decode()

    async def test_ids_are_per_source(self, sandbox: Sandbox) -> None:
        """The same document id from two portals is two documents."""
        token = await sandbox.token()
        assert (await deliver(sandbox, ORDER, source="a", token=token)).status == 201
        assert (await deliver(sandbox, INVOICE, source="b", doc_type="invoice")).status == 201
        assert len(await sandbox.state.procurement.documents(sandbox.demo.database_id)) == 2
        assert await sandbox.state.procurement.documents(sandbox.demo.database_id + 1) == []

    async def test_root_must_fit_the_type(self, sandbox: Sandbox) -> None:
        """The body is well-formed XML whose root is Order (order) or Invoice (the others)."""
        token = await sandbox.token()
        cases = [
            ("order", ORDER, 201),
            ("invoice", INVOICE, 201),
            ("creditnote", INVOICE, 201),
            ("order", INVOICE, 400),
            ("invoice", ORDER, 400),
            ("creditnote", b"<CreditNote/>", 400),
            ("order", b"<Order><OrderHead></Order>", 400),
            ("order", b'<Order xmlns="urn:elsewhere"/>', 400),
        ]
        for number, (doc_type, body, status) in enumerate(cases):
            response = await deliver(
                sandbox, body, doc_type=doc_type, document_id=f"doc-{number}", token=token
            )
            assert response.status == status, (doc_type, body)
            if status == 400:
                assert response.content_type == "application/problem+json"
        assert len(await sandbox.state.procurement.documents()) == 3

    async def test_source_document_id_and_type_are_required(self, sandbox: Sandbox) -> None:
        """source, documentId (each at most 100 characters) and a known type are required."""
        token = await sandbox.token()
        for params in (
            {"documentId": "d", "type": "order"},
            {"source": "s", "type": "order"},
            {"source": "s", "documentId": "d"},
            {"source": "s", "documentId": "d", "type": "quote"},
            {"source": "s" * 101, "documentId": "d", "type": "order"},
            {"source": "s", "documentId": "d" * 101, "type": "order"},
        ):
            response = await sandbox.client.post(
                f"{EPROC}/Documents",
                params=params,
                data=ORDER,
                headers={**sandbox.headers(token), "Content-Type": "application/xml"},
            )
            assert response.status == 400, params
        assert await sandbox.state.procurement.documents() == []

    async def test_a_body_not_sent_as_xml_is_415(self, sandbox: Sandbox) -> None:
        """A body that is not sent as XML is 415."""
        response = await deliver(sandbox, ORDER, content_type="text/plain")
        assert response.status == 415


class TestAuthorisedOrders:
    async def test_demo_order_is_pending(self, sandbox: Sandbox, schemas: SchemaRegistry) -> None:
        """The demo's authorised order is listed with its id, supplier and a PUO Order."""
        root = await pending(sandbox, schemas)
        (item,) = root
        assert item.get("id") == sandbox.demo.authorised_order_id
        assert item.get("supplierDuns") == sandbox.demo.supplier_duns
        (order,) = item
        assert order.tag == "Order"
        assert order.find("OrderHead/OrderType").get("Code") == "PUO"  # type: ignore[union-attr]
        assert order.findtext("Buyer/BuyerReferences/DUNS") == sandbox.demo.school_duns
        assert int(order.findtext("OrderHead/Checksum") or "") == ebis.checksum_of(order)
        assert schemas.issues("eproc/profile/Order.xsd", order) == []

    async def test_sent_orders_leave_the_list(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """Marking an order sent is 204, idempotent, and takes it off the pending list."""
        order_id = sandbox.demo.authorised_order_id
        token = await sandbox.token()
        assert (await mark_sent(sandbox, order_id, token)).status == 204
        assert len(await pending(sandbox, schemas)) == 0
        assert (await mark_sent(sandbox, order_id, token)).status == 204
        (order,) = await sandbox.control("GET", "/eproc/authorised-orders")
        assert order["state"] == "sent"
        assert (await sandbox.control("GET", "/stats"))["orders_sent"] == 1

    async def test_an_order_printed_again_is_pending_again(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """A sent order reopened (the school printed it again) is listed once more."""
        order_id = sandbox.demo.authorised_order_id
        assert (await mark_sent(sandbox, order_id)).status == 204
        await sandbox.state.procurement.reopen_authorised_order(sandbox.demo.database_id, order_id)
        (listed,) = await pending(sandbox, schemas)
        assert listed.get("id") == order_id
        with pytest.raises(LookupError):
            await sandbox.state.procurement.reopen_authorised_order(
                sandbox.demo.database_id, "no-such"
            )

    async def test_marking_an_unknown_order_is_404(self, sandbox: Sandbox) -> None:
        """Marking an order the database does not have is 404."""
        response = await mark_sent(sandbox, "no-such-order")
        assert response.status == 404
        assert response.content_type == "application/problem+json"

    async def test_orders_by_control_api(self, sandbox: Sandbox, schemas: SchemaRegistry) -> None:
        """An order authorised through the control API, with its own XML, is listed as given."""
        xml = ebis.to_text(
            ebis.order(
                number="PO-77",
                order_date=date(2026, 11, 25),
                supplier_duns="111222333",
                buyer_duns=None,
                lines=[ebis.OrderLine(1, "X", "Paper", "5", Decimal("4.00"))],
                order_type="PUO",
            )
        )
        added = await sandbox.control(
            "POST",
            "/eproc/authorised-orders",
            {
                "database_id": sandbox.demo.database_id,
                "supplier_duns": "111222333",
                "order_xml": xml,
                "order_id": "PO-77",
            },
        )
        assert added == {"id": "PO-77"}
        ids = [item.get("id") for item in await pending(sandbox, schemas)]
        assert ids == [sandbox.demo.authorised_order_id, "PO-77"]
        listed = await sandbox.control(
            "GET", f"/eproc/authorised-orders?database_id={sandbox.demo.database_id}"
        )
        assert listed[1]["order_xml"] == xml

    async def test_an_order_made_from_a_content_order_names_it(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """The control API's source and document_id (together) come back as the order's
        source and documentId; an order raised in FNG names none."""
        added = await sandbox.control(
            "POST",
            "/eproc/authorised-orders",
            {
                "database_id": sandbox.demo.database_id,
                "supplier_duns": "111222333",
                "source": "demo-supplier",
                "document_id": "demo-order-1",
            },
        )
        items = {item.get("id"): item for item in await pending(sandbox, schemas)}
        made = items[added["id"]]
        assert (made.get("source"), made.get("documentId")) == ("demo-supplier", "demo-order-1")
        raised = items[sandbox.demo.authorised_order_id]
        assert raised.get("source") is None and raised.get("documentId") is None
        response = await sandbox.client.post(
            "/_sandbox/eproc/authorised-orders",
            json={
                "database_id": sandbox.demo.database_id,
                "supplier_duns": "111222333",
                "source": "demo-supplier",
            },
        )
        assert response.status == 400

    async def test_generated_orders_carry_fmss_export(self, sandbox: Sandbox) -> None:
        """Each party by its DUNS, or its GLN (13 digits); each line with its commodity
        class, UOM, "<LedgerCode>-<Fund>" narrative and preferred date."""
        gln = "5012345678900"
        await sandbox.state.procurement.add_authorised_order(
            sandbox.demo.database_id, supplier_duns=gln, buyer_duns=gln, order_id="by-gln"
        )
        orders = {o["id"]: o for o in await sandbox.state.procurement.authorised_orders()}
        for order_id, tag, number in (
            (sandbox.demo.authorised_order_id, "DUNS", sandbox.demo.supplier_duns),
            ("by-gln", "GLN", gln),
        ):
            root = etree.fromstring(orders[order_id]["order_xml"].split("?>", 1)[1].encode())
            references = root.find("Supplier/SupplierReferences")
            assert references is not None
            assert [(child.tag, child.text) for child in references][-1] == (tag, number)
            for line in root.iterfind("OrderLine"):
                assert line.findtext("Product/CommodityClass") == "00 00 00 00"
                assert line.find("Quantity").get("UOMCode") == "EA"  # type: ignore[union-attr]
                assert line.findtext("Narrative") == "1001-01"
                assert line.findtext("Delivery/PreferredDate") == root.findtext("OrderDate")
        by_gln = etree.fromstring(orders["by-gln"]["order_xml"].split("?>", 1)[1].encode())
        assert by_gln.findtext("Buyer/BuyerReferences/GLN") == gln

    async def test_bad_orders_are_refused(self, sandbox: Sandbox) -> None:
        """An order without a database, with a bad DUNS, XML or id, is 400; an unknown
        database is 404."""
        good = {"database_id": sandbox.demo.database_id, "supplier_duns": "111222333"}
        for change in (
            {"database_id": None},
            {"database_id": "1"},
            {"supplier_duns": "1"},
            {"order_xml": "<Invoice/>"},
            {"order_xml": "<Order>"},
            {"order_id": "has/slash"},
            {"buyer_duns": "x"},
        ):
            response = await sandbox.client.post(
                "/_sandbox/eproc/authorised-orders", json={**good, **change}
            )
            assert response.status == 400, change
        response = await sandbox.client.post(
            "/_sandbox/eproc/authorised-orders", json={**good, "database_id": 404}
        )
        assert response.status == 404
        assert len(await sandbox.state.procurement.authorised_orders()) == 1

    async def test_generated_order_numbers(self, sandbox: Sandbox) -> None:
        """Generated orders number on from the database's last, and may omit the buyer."""
        await sandbox.state.procurement.add_authorised_order(
            sandbox.demo.database_id, supplier_duns="111222333", order_id="second"
        )
        orders = await sandbox.state.procurement.authorised_orders(sandbox.demo.database_id)
        root = etree.fromstring(orders[1]["order_xml"].split("?>", 1)[1].encode())
        assert root.findtext("OrderReferences/BuyersOrderNumber") == "PO-00002"
        assert root.find("Buyer/BuyerReferences/DUNS") is None
        with pytest.raises(ValueError, match="second"):
            await sandbox.state.procurement.add_authorised_order(
                sandbox.demo.database_id, supplier_duns="111222333", order_id="second"
            )
        with pytest.raises(LookupError):
            await sandbox.state.procurement.add_authorised_order(404, supplier_duns="111222333")


class TestAccess:
    @pytest.mark.parametrize("call", ["deliver", "pending", "sent"])
    async def test_token_and_keys_are_checked(self, sandbox: Sandbox, call: str) -> None:
        """Each call is 401 without a valid token and 403 with a wrong key, doing nothing."""
        token = await sandbox.token()
        order_id = sandbox.demo.authorised_order_id

        async def send(token: str, **keys: str) -> int:
            headers = sandbox.headers(token, **keys)
            if call == "deliver":
                return (await deliver(sandbox, ORDER, token=token, **keys)).status
            if call == "pending":
                response = await sandbox.client.get(f"{EPROC}/AuthorisedOrders", headers=headers)
                return response.status
            path = f"{EPROC}/AuthorisedOrders/{order_id}/Sent"
            return (await sandbox.client.post(path, headers=headers)).status

        assert await send("not a token") == 401
        assert await send(token, psk="8b0e7a57-1f55-4c55-9b55-0e7a571f554c") == 403
        assert await send(token, client_key="not-a-guid") == 403
        assert await sandbox.state.procurement.documents() == []
        (order,) = await sandbox.state.procurement.authorised_orders()
        assert order["state"] == "pending"

    async def test_every_call_is_counted_and_documents_and_orders_once(
        self, sandbox: Sandbox
    ) -> None:
        """Each call is counted, refused ones too; documents and sent orders once each."""
        token = await sandbox.token()
        await deliver(sandbox, ORDER, token=token)
        await deliver(sandbox, ORDER, token=token)
        await deliver(sandbox, ORDER, token="not a token")
        await sandbox.client.get(f"{EPROC}/AuthorisedOrders", headers=sandbox.headers(token))
        await mark_sent(sandbox, sandbox.demo.authorised_order_id, token)
        await mark_sent(sandbox, sandbox.demo.authorised_order_id, token)
        stats = await sandbox.control("GET", "/stats")
        assert {
            name: stats["requests"][name]
            for name in ("PostDocument", "AuthorisedOrders", "MarkOrderSent")
        } == {
            "PostDocument": 3,
            "AuthorisedOrders": 1,
            "MarkOrderSent": 2,
        }
        assert (stats["documents_received"], stats["orders_sent"]) == (1, 1)
