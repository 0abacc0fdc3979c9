"""Supplier portals: the EProcurementService of the FMS eProcurement web service standard,
called through zeep with the standard's WSDL, and by hand in SOAP 1.2."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import zeep
from lxml import etree

from gateway.sandbox import ebis
from gateway.sandbox.portal.portals import NewDocument
from gateway.xmlsafe import SchemaRegistry
from tests.sandbox.conftest import Sandbox
from tests.sandbox.portals import (
    OTS,
    SOAP12,
    Portal,
    index_ids,
    read_index,
    soap11_envelope,
    soap12_envelope,
    zeep_client,
)

SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


@pytest.fixture(scope="session")
def wsdl_client() -> zeep.Client:
    """The standard's WSDL, loaded once from the file, as the gateway loads it."""
    return zeep_client()


@pytest.fixture
def portal(sandbox: Sandbox, wsdl_client: zeep.Client) -> Portal:
    """The demo supplier's portal."""
    demo = sandbox.demo
    return Portal(
        wsdl_client, sandbox.url(demo.portal_path), demo.portal_username, demo.portal_password
    )


async def _other_portal(sandbox: Sandbox, wsdl_client: zeep.Client, name: str) -> Portal:
    await sandbox.state.portals.add(
        name, username="school-2", password="second secret", supplier_duns="111222333"
    )
    address = sandbox.url(f"/portals/{name}/EProcurementService.asmx")
    return Portal(wsdl_client, address, "school-2", "second secret")


async def _fault(call: Any) -> str:
    with pytest.raises(zeep.exceptions.Fault) as caught:
        await call
    return str(caught.value.message)


async def _calls(sandbox: Sandbox, name: str = "demo-supplier") -> dict[str, int]:
    return dict((await sandbox.state.portals.describe(name))["counters"]["calls"])


class TestWsdl:
    async def test_wsdl_names_the_portal(self, sandbox: Sandbox) -> None:
        """GET ?wsdl answers the standard's WSDL with the portal's own address twice."""
        response = await sandbox.client.get(f"{sandbox.demo.portal_path}?wsdl")
        assert response.status == 200
        root = etree.fromstring(await response.read())
        locations = [
            element.get("location")
            for element in root.iter()
            if etree.QName(element).localname == "address"
        ]
        assert locations == [sandbox.url(sandbox.demo.portal_path)] * 2
        assert root.get("targetNamespace") == OTS

    async def test_zeep_reads_the_served_wsdl(self, sandbox: Sandbox) -> None:
        """zeep builds its client from the served WSDL and calls the address it names."""
        demo = sandbox.demo
        client = await asyncio.to_thread(zeep_client, sandbox.url(f"{demo.portal_path}?WSDL"))
        service = client.bind("EProcurementService", "EProcurementServiceSoap12")
        header = client.get_element(f"{{{OTS}}}AuthHeader")(
            Username=demo.portal_username, Password=demo.portal_password
        )
        text = await asyncio.to_thread(service.FetchIndex, _soapheaders=[header])
        assert index_ids(text)[0] == "demo-order-1"

    async def test_an_unknown_portal_is_404(self, sandbox: Sandbox) -> None:
        """A portal that was never opened is 404, for its WSDL and its calls alike."""
        path = "/portals/nobody/EProcurementService.asmx"
        assert (await sandbox.client.get(f"{path}?wsdl")).status == 404
        assert (await sandbox.client.post(path, data=b"<x/>")).status == 404


class TestFetching:
    async def test_fetch_index_lists_every_unprocessed_document_oldest_first(
        self, sandbox: Sandbox, portal: Portal, schemas: SchemaRegistry
    ) -> None:
        """FetchIndex lists every unprocessed document, oldest first, as a valid doclist."""
        text = await portal.call("FetchIndex")
        root = read_index(text)
        assert schemas.issues("eproc/FetchIndex.xsd", root) == []
        listed = [(item.get("uuid"), item.get("type")) for item in root.iterfind("document")]
        assert listed == [(uuid, kind) for uuid, kind, _ in sandbox.demo.portal_documents]
        dates = [datetime.fromisoformat(item.get("date", "")) for item in root]
        assert dates == sorted(dates)

    async def test_index_is_declared_utf16(self, portal: Portal) -> None:
        """The index string is declared UTF-16, as .NET's StringWriter declares it."""
        text = await portal.call("FetchIndex")
        assert text.startswith('<?xml version="1.0" encoding="utf-16"?><doclist>')

    async def test_fetch_doc_returns_the_document_and_leaves_it_unprocessed(
        self, sandbox: Sandbox, portal: Portal
    ) -> None:
        """FetchDoc returns the document exactly as queued and leaves it unprocessed."""
        stored = (await sandbox.state.portals.describe("demo-supplier"))["documents"][0]
        assert await portal.call("FetchDoc", stored["uuid"]) == stored["xml"]
        assert stored["uuid"] in index_ids(await portal.call("FetchIndex"))

    async def test_processed_documents_leave_the_index(self, portal: Portal) -> None:
        """A processed document leaves FetchIndex, stays in FetchIndexFromDate, and comes
        back when marked unprocessed."""
        assert await portal.call("UpdateDocumentStatus", "demo-order-1", True) is True
        assert "demo-order-1" not in index_ids(await portal.call("FetchIndex"))
        since = datetime.now(UTC) - timedelta(days=1)
        assert "demo-order-1" in index_ids(await portal.call("FetchIndexFromDate", since))
        assert await portal.call("UpdateDocumentStatus", "demo-order-1", False) is True
        assert "demo-order-1" in index_ids(await portal.call("FetchIndex"))

    async def test_from_date_is_strictly_after(self, sandbox: Sandbox, portal: Portal) -> None:
        """FetchIndexFromDate lists the documents created after the date, not at it."""
        base = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
        for minute in (0, 1, 2):
            await sandbox.state.portals.add_document(
                "demo-supplier",
                doc_type="invoice",
                xml="<Invoice/>",
                uuid=f"late-{minute}",
                created=base + timedelta(minutes=minute),
            )
        listed = index_ids(await portal.call("FetchIndexFromDate", base + timedelta(minutes=1)))
        assert listed == ["late-2"]
        naive = datetime(2030, 1, 1, 11, 59, 30)
        assert index_ids(await portal.call("FetchIndexFromDate", naive)) == [
            "late-0",
            "late-1",
            "late-2",
        ]

    async def test_acknowledgements_are_counted(self, sandbox: Sandbox, portal: Portal) -> None:
        """Each UpdateDocumentStatus(id, true) that lands is counted; false ones are not."""
        await portal.call("UpdateDocumentStatus", "demo-order-1", True)
        await portal.call("UpdateDocumentStatus", "demo-order-1", True)
        await portal.call("UpdateDocumentStatus", "demo-order-2", False)
        counters = (await sandbox.state.portals.describe("demo-supplier"))["counters"]
        assert counters["documents_acknowledged"] == 2
        assert counters["calls"]["UpdateDocumentStatus"] == 3

    async def test_reset_all_marks_every_document_unprocessed(
        self, sandbox: Sandbox, portal: Portal
    ) -> None:
        """ResetAll marks every document unprocessed, answers true, and is counted."""
        await portal.call("UpdateDocumentStatus", "demo-order-1", True)
        assert await portal.call("ResetAll") is True
        found = await sandbox.state.portals.describe("demo-supplier")
        assert not any(document["processed"] for document in found["documents"])
        assert found["counters"]["calls"]["ResetAll"] == 1


class TestExceptions:
    async def test_a_wrong_password_is_an_authentication_exception(
        self, sandbox: Sandbox, portal: Portal
    ) -> None:
        """A wrong password is an AuthenticationException, and the call is still counted."""
        message = await _fault(portal.call("FetchIndex", password="wrong"))
        assert message.startswith("AuthenticationException:")
        assert (await _calls(sandbox))["FetchIndex"] == 1

    async def test_another_users_name_is_an_authentication_exception(self, portal: Portal) -> None:
        """Another user's name with the right password is an AuthenticationException."""
        message = await _fault(portal.call("FetchDoc", "demo-order-1", username="someone"))
        assert message.startswith("AuthenticationException:")

    async def test_a_call_without_auth_header_is_an_authentication_exception(
        self, portal: Portal
    ) -> None:
        """A call without the AuthHeader is an AuthenticationException."""
        message = await _fault(portal.call("ChangePassword", authenticate=False))
        assert message.startswith("AuthenticationException:")

    @pytest.mark.parametrize("method", ["FetchDoc", "UpdateDocumentStatus"])
    async def test_an_unknown_document_does_not_exist(self, portal: Portal, method: str) -> None:
        """An unknown DocID is a DocumentNotExistException."""
        args: tuple[Any, ...] = ("no-such-document",)
        if method == "UpdateDocumentStatus":
            args += (True,)
        message = await _fault(portal.call(method, *args))
        assert message.startswith("DocumentNotExistException:")

    async def test_another_users_document_does_not_exist(
        self, sandbox: Sandbox, portal: Portal, wsdl_client: zeep.Client
    ) -> None:
        """A document of another portal's user does not exist for this one."""
        other = await _other_portal(sandbox, wsdl_client, "other-supplier")
        await sandbox.state.portals.add_document(
            "other-supplier", doc_type="order", xml="<Order/>", uuid="theirs"
        )
        assert await other.call("FetchDoc", "theirs") == "<Order/>"
        message = await _fault(portal.call("FetchDoc", "theirs"))
        assert message.startswith("DocumentNotExistException:")

    async def test_a_soap12_caller_gets_a_soap12_fault(self, sandbox: Sandbox) -> None:
        """A SOAP 1.2 caller gets a SOAP 1.2 fault: Sender, with the Type:Message reason."""
        body = soap12_envelope("FetchIndex", username="demo-primary", password="wrong")
        response = await sandbox.client.post(
            sandbox.demo.portal_path,
            data=body,
            headers={"Content-Type": "application/soap+xml; charset=utf-8"},
        )
        assert response.status == 400
        assert response.content_type == "application/soap+xml"
        root = etree.fromstring(await response.read())
        ns = {"s": SOAP12_ENV}
        assert root.findtext("s:Body/s:Fault/s:Code/s:Value", namespaces=ns) == "soap:Sender"
        reason = root.findtext("s:Body/s:Fault/s:Reason/s:Text", namespaces=ns) or ""
        assert reason.startswith("AuthenticationException:")


class TestPasswords:
    async def test_change_password(self, sandbox: Sandbox, portal: Portal) -> None:
        """ChangePassword returns a new password; from then on only it is accepted."""
        new = await portal.call("ChangePassword")
        assert new != portal.password
        assert "&" in new and "<" in new  # only a client that escapes XML gets in
        message = await _fault(portal.call("FetchIndex"))
        assert message.startswith("AuthenticationException:")
        assert index_ids(await portal.call("FetchIndex", password=new))
        assert (await sandbox.state.portals.describe("demo-supplier"))["password"] == new
        assert (await _calls(sandbox))["ChangePassword"] == 1


class TestSendOrder:
    async def test_order_is_stored(self, sandbox: Sandbox, portal: Portal) -> None:
        """SendOrder stores the authorised order as sent and answers true."""
        (pending,) = await sandbox.state.procurement.authorised_orders()
        assert await portal.call("SendOrder", pending["order_xml"]) is True
        found = await sandbox.state.portals.describe("demo-supplier")
        (received,) = found["orders"]
        assert received["xml"] == pending["order_xml"]
        assert received["buyers_order_number"] == "PO-00001"
        assert found["counters"]["orders_received"] == 1

    @pytest.mark.parametrize(
        ("document", "reason"),
        [
            ("<Order><OrderHead>", "well-formed"),
            ("<Invoice/>", "not an eBIS-XML Order"),
            ("not xml at all", "well-formed"),
        ],
    )
    async def test_refused(
        self, sandbox: Sandbox, portal: Portal, document: str, reason: str
    ) -> None:
        """A string that is not a well-formed Order is an InvalidXmlException."""
        message = await _fault(portal.call("SendOrder", document))
        assert message.startswith("InvalidXmlException:")
        assert reason in message
        assert (await sandbox.state.portals.describe("demo-supplier"))["orders"] == []

    async def test_a_portal_of_several_suppliers_takes_each_one_s_orders(
        self, sandbox: Sandbox, wsdl_client: zeep.Client
    ) -> None:
        """A price-comparison portal takes orders for any supplier it serves, no other."""
        await sandbox.state.portals.add(
            "compare", username="school", password="pw", supplier_duns=["111111111", "222222222"]
        )
        portal = Portal(
            wsdl_client, sandbox.url("/portals/compare/EProcurementService.asmx"), "school", "pw"
        )
        assert (await sandbox.state.portals.describe("compare"))["suppliers"] == [
            "111111111",
            "222222222",
        ]
        database_id = sandbox.demo.database_id
        for duns in ("111111111", "222222222", "333333333"):
            await sandbox.state.procurement.add_authorised_order(database_id, supplier_duns=duns)
        *served, other = await sandbox.state.procurement.authorised_orders()
        for order in served[-2:]:
            assert await portal.call("SendOrder", order["order_xml"]) is True
        message = await _fault(portal.call("SendOrder", other["order_xml"]))
        assert "not this portal's 111111111 or 222222222" in message

    async def test_content_order_refused(self, sandbox: Sandbox, portal: Portal) -> None:
        """An order whose type is not PUO (a content order) is an InvalidXmlException."""
        text = (await sandbox.state.portals.describe("demo-supplier"))["documents"][0]["xml"]
        message = await _fault(portal.call("SendOrder", text))
        assert (
            message == "InvalidXmlException:an authorised order has OrderType Code PUO, not 'CTO'"
        )


class TestSoapDetails:
    async def test_soap12_by_hand(self, sandbox: Sandbox, portal: Portal) -> None:
        """A hand-written SOAP 1.2 FetchDoc, action in the content type, is answered in 1.2."""
        body = soap12_envelope(
            "FetchDoc",
            "<DocID>demo-invoice-1</DocID>",
            username=portal.username,
            password=portal.password,
        )
        content_type = f'application/soap+xml; charset=utf-8; action="{OTS}/FetchDoc"'
        response = await sandbox.client.post(
            sandbox.demo.portal_path, data=body, headers={"Content-Type": content_type}
        )
        assert response.status == 200
        root = etree.fromstring(await response.read())
        assert root.tag == f"{{{SOAP12_ENV}}}Envelope"
        result = root.findtext(f".//{{{OTS}}}FetchDocResult") or ""
        assert etree.fromstring(result.split("?>", 1)[1].encode()).tag == "Invoice"

    async def test_soap12_through_zeep(self, portal: Portal) -> None:
        """zeep's SOAP 1.2 binding works as its SOAP 1.1 one does."""
        assert await portal.call("UpdateDocumentStatus", "demo-quote-1", True, binding=SOAP12)
        assert "demo-quote-1" not in index_ids(await portal.call("FetchIndex", binding=SOAP12))

    async def test_soap12_action_must_match(self, sandbox: Sandbox, portal: Portal) -> None:
        """A SOAP 1.2 action naming another operation is a fault."""
        body = soap12_envelope("FetchIndex", username=portal.username, password=portal.password)
        content_type = f'application/soap+xml; action="{OTS}/ResetAll"'
        response = await sandbox.client.post(
            sandbox.demo.portal_path, data=body, headers={"Content-Type": content_type}
        )
        assert response.status == 400
        assert b"ResetAll" in await response.read()
        assert (await _calls(sandbox))["ResetAll"] == 0

    @pytest.mark.parametrize(
        ("action", "status"),
        [(None, 500), ('"http://example.org/FetchIndex"', 500), (f'"{OTS}/FetchIndex"', 200)],
    )
    async def test_soap11_dispatches_on_soap_action(
        self, sandbox: Sandbox, portal: Portal, action: str | None, status: int
    ) -> None:
        """SOAP 1.1 needs the SOAPAction ns/operation (quoted or not), as ASMX does."""
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        if action is not None:
            headers["SOAPAction"] = action
        body = soap11_envelope("FetchIndex", username=portal.username, password=portal.password)
        response = await sandbox.client.post(sandbox.demo.portal_path, data=body, headers=headers)
        assert response.status == status
        root = etree.fromstring(await response.read())
        assert root.tag == f"{{{SOAP11_ENV}}}Envelope"

    async def test_an_unqualified_auth_header_is_not_read(
        self, sandbox: Sandbox, portal: Portal
    ) -> None:
        """AuthHeader children outside the service's namespace are not read, as ASMX's
        serializer does not read them."""
        body = (
            soap11_envelope("FetchIndex", username=portal.username, password=portal.password)
            .replace(b"<Username>", b'<Username xmlns="">')
            .replace(b"<Password>", b'<Password xmlns="">')
        )
        headers = {"Content-Type": "text/xml", "SOAPAction": f"{OTS}/FetchIndex"}
        response = await sandbox.client.post(sandbox.demo.portal_path, data=body, headers=headers)
        assert response.status == 500
        assert b"AuthenticationException:" in await response.read()


class TestPortalFaults:
    async def test_a_rule_on_one_portal_leaves_another_alone(
        self, sandbox: Sandbox, portal: Portal, wsdl_client: zeep.Client
    ) -> None:
        """A fault rule with one portal's path fails that portal and leaves another alone."""
        slow = await _other_portal(sandbox, wsdl_client, "slow-supplier")
        await sandbox.control(
            "PUT",
            "/faults",
            {"rules": [{"target": "portal", "kind": "error", "path": "/portals/slow-supplier/"}]},
        )
        with pytest.raises(zeep.exceptions.TransportError) as caught:
            await slow.call("FetchIndex")
        assert caught.value.status_code == 503
        assert index_ids(await portal.call("FetchIndex"))
        assert (await _calls(sandbox, "slow-supplier"))["FetchIndex"] == 0

    async def test_portal_rules_leave_fng_alone(self, sandbox: Sandbox) -> None:
        """A rule for every portal does not touch FNG."""
        await sandbox.control("PUT", "/faults", {"rules": [{"target": "portal", "kind": "error"}]})
        assert (await sandbox.get_banks()).status == 200

    async def test_a_latency_rule_delays_the_portals_answer(
        self, sandbox: Sandbox, portal: Portal
    ) -> None:
        """A latency rule delays a portal's answer, which then comes normally."""
        rule = {"target": "portal", "kind": "latency", "latency_ms": 300}
        await sandbox.control("PUT", "/faults", {"rules": [rule]})
        started = time.monotonic()
        assert index_ids(await portal.call("FetchIndex"))
        assert time.monotonic() - started >= 0.3

    async def test_drop_before(self, sandbox: Sandbox, portal: Portal) -> None:
        """drop_before closes the connection: nothing is marked and nothing counted."""
        await sandbox.control(
            "PUT", "/faults", {"rules": [{"target": "portal", "kind": "drop_before"}]}
        )
        with pytest.raises(requests.exceptions.ConnectionError):
            await portal.call("UpdateDocumentStatus", "demo-order-1", True)
        found = await sandbox.state.portals.describe("demo-supplier")
        assert not any(document["processed"] for document in found["documents"])
        assert found["counters"]["calls"]["UpdateDocumentStatus"] == 0

    async def test_drop_after(self, sandbox: Sandbox, portal: Portal) -> None:
        """drop_after marks the document processed, then the client sees a disconnect."""
        await sandbox.control(
            "PUT", "/faults", {"rules": [{"target": "portal", "kind": "drop_after", "count": 1}]}
        )
        with pytest.raises(requests.exceptions.ConnectionError):
            await portal.call("UpdateDocumentStatus", "demo-order-1", True)
        assert "demo-order-1" not in index_ids(await portal.call("FetchIndex"))

    async def test_garbage_does_the_work_then_answers_a_body_that_is_not_xml(
        self, sandbox: Sandbox, portal: Portal
    ) -> None:
        """garbage does the work, then answers 200 with a body that is not XML."""
        await sandbox.control(
            "PUT", "/faults", {"rules": [{"target": "portal", "kind": "garbage"}]}
        )
        with pytest.raises((zeep.exceptions.Error, etree.XMLSyntaxError)):
            await portal.call(
                "SendOrder", (await sandbox.state.procurement.authorised_orders())[0]["order_xml"]
            )
        await sandbox.control("DELETE", "/faults")
        assert len((await sandbox.state.portals.describe("demo-supplier"))["orders"]) == 1

    async def test_refuse_auth(self, sandbox: Sandbox, portal: Portal) -> None:
        """With refuse_auth on, every call is an AuthenticationException; off, all is well."""
        switches = await sandbox.control(
            "PUT", "/portals/demo-supplier/switches", {"refuse_auth": True}
        )
        assert switches == {"refuse_auth": True}
        for method, args in (("FetchIndex", ()), ("ResetAll", ()), ("FetchDoc", ("x",))):
            message = await _fault(portal.call(method, *args))
            assert message.startswith("AuthenticationException:")
        await sandbox.control("PUT", "/portals/demo-supplier/switches", {"refuse_auth": False})
        assert index_ids(await portal.call("FetchIndex"))


class TestPortalSetUp:
    async def test_open_a_portal_by_control_api(
        self, sandbox: Sandbox, wsdl_client: zeep.Client
    ) -> None:
        """A portal opened and stocked through the control API answers its user."""
        created = await sandbox.control(
            "POST",
            "/portals",
            {
                "name": "acme-books",
                "username": "school-9",
                "password": "p",
                "supplier_duns": "123456789",
            },
        )
        assert created["path"] == "/portals/acme-books/EProcurementService.asmx"
        xml = ebis.to_text(
            ebis.quote(
                number="Q-1",
                quote_date=datetime(2026, 1, 5).date(),
                supplier_duns="123456789",
                buyer_duns="987654321",
            )
        )
        added = await sandbox.control(
            "POST", "/portals/acme-books/documents", {"type": "quote", "xml": xml}
        )
        assert len(added["uuid"]) == 36 and " " not in added["uuid"]
        client = Portal(wsdl_client, sandbox.url(created["path"]), "school-9", "p")
        assert index_ids(await client.call("FetchIndex")) == [added["uuid"]]
        assert await client.call("FetchDoc", added["uuid"]) == xml
        assert (await sandbox.control("GET", "/portals"))["portals"] == [
            "acme-books",
            "demo-supplier",
        ]
        shown = await sandbox.control("GET", "/portals/acme-books")
        assert shown["counters"]["calls"]["FetchDoc"] == 1
        stats = await sandbox.control("GET", "/stats")
        assert stats["portals"]["acme-books"]["calls"]["FetchIndex"] == 1

    async def test_bad_portals_are_refused(self, sandbox: Sandbox) -> None:
        """A portal the standard could not hold, or one that exists already, is 400."""
        good = {"name": "ok", "username": "u", "password": "p", "supplier_duns": "123456789"}
        for change in (
            {"name": "Capitals"},
            {"name": "x" * 41},
            {"supplier_duns": "12345"},
            {"username": "u" * 51},
            {"password": ""},
            {"password": "p" * 257},
            {"name": "demo-supplier"},
            {"colour": "red"},
        ):
            response = await sandbox.client.post("/_sandbox/portals", json={**good, **change})
            assert response.status == 400, change
        response = await sandbox.client.post("/_sandbox/portals", json={"name": "ok"})
        assert response.status == 400
        assert (await sandbox.control("GET", "/portals"))["portals"] == ["demo-supplier"]

    async def test_bad_documents_are_refused(self, sandbox: Sandbox) -> None:
        """A document with an unknown type, a bad or repeated id, or unsendable text is 400."""
        for body in (
            {"type": "purchase", "xml": "<Order/>"},
            {"type": "order", "xml": "<Order/>", "uuid": "has a space"},
            {"type": "order", "xml": "<Order/>", "uuid": "x" * 101},
            {"type": "order", "xml": "<Order/>", "uuid": "demo-order-1"},
            {"type": "order", "xml": "bad \x01 character"},
            {"type": "order", "xml": "<Order/>", "created": "yesterday"},
        ):
            response = await sandbox.client.post(
                "/_sandbox/portals/demo-supplier/documents", json=body
            )
            assert response.status == 400, body
        found = await sandbox.state.portals.describe("demo-supplier")
        assert len(found["documents"]) == len(sandbox.demo.portal_documents)

    async def test_entries_that_break_the_standard_can_be_queued(
        self, sandbox: Sandbox, portal: Portal
    ) -> None:
        """For clients' tests, an entry with a long id, spaces or an unknown type is listed
        as given when it is queued as not standard."""
        odd = [("x" * 150, "order"), ("has a space", "order"), ("memo-1", "memo")]
        await sandbox.state.portals.add_documents(
            "demo-supplier",
            [NewDocument(kind, "<Order/>", uuid=uuid, standard=False) for uuid, kind in odd],
        )
        root = read_index(await portal.call("FetchIndex"))
        listed = [(item.get("uuid"), item.get("type")) for item in root.iterfind("document")]
        assert listed[-3:] == odd
        assert await portal.call("FetchDoc", "has a space") == "<Order/>"

    async def test_unknown_portal_in_control_api(self, sandbox: Sandbox) -> None:
        """The control API answers 404 for a portal that does not exist."""
        assert (await sandbox.client.get("/_sandbox/portals/nobody")).status == 404
        response = await sandbox.client.post(
            "/_sandbox/portals/nobody/documents", json={"type": "order", "xml": "<Order/>"}
        )
        assert response.status == 404
        response = await sandbox.client.put(
            "/_sandbox/portals/nobody/switches", json={"refuse_auth": True}
        )
        assert response.status == 404
