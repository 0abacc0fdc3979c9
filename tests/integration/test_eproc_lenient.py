"""Documents and indexes read as leniently as the standard allows, and no further.

A document declaring the decimal separator "," reaches FNG with every number written with
"." under the "." it then declares, not only the numbers FMS read; a portal's index whose
entries carry attributes the gateway does not read (FetchIndexFromDate is documented to give
"the name, type and create date") is still collected. Each test runs the real gateway
against the sandbox's portal and FNG on loopback, with documents written for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web
from lxml import etree

from gateway import ns
from gateway.sandbox import ebis
from gateway.sandbox.portal.portals import NewDocument
from tests.conftest import Gateway, Sandbox
from tests.integration.test_eproc import documents_in_fng, ledger, run_once
from tests.integration.test_eproc_portals import portal_row
from tests.integration.test_eproc_rules import (
    content_order,
    in_fng,
    invoice,
    poll,
    queue,
    with_separator,
)

#: A number written with ",", as a whole text.
COMMA_NUMBER = re.compile(r"\s*[+-]?[0-9]*,[0-9]+\s*")
#: The numbers an Invoice writes with its decimal separator (the profile's own).
INVOICE_NUMBERS = ("Amount", "TaxRate", "UnitPrice", "NetLineTotal", "TaxAtRate")


def _sub(parent: etree._Element, tag: str, text: str) -> etree._Element:
    element = etree.SubElement(parent, tag)
    element.text = text
    return element


def comma_numbers(body: etree._Element) -> dict[str, str]:
    """Every element FNG was given whose whole text is a number written with ","."""
    return {
        str(element.tag): element.text or ""
        for element in body.iter(etree.Element)
        if len(element) == 0 and COMMA_NUMBER.fullmatch(element.text or "")
    }


def fng_body(document: dict[str, Any]) -> etree._Element:
    return etree.fromstring(document["body"].encode())


class TestEveryNumberUnderTheDeclaredSeparator:
    async def test_a_comma_order_reaches_fng_with_its_other_money_in_dots(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """Line tax, tax total and freight charges, written with the declared ",", are
        rewritten with "." like the numbers FMS read; texts that are not wholly a number,
        and codes, are left as they were written."""
        order = with_separator(content_order(sandbox, "WEB-L1"))
        for line, tax in zip(order.iterfind("OrderLine"), ("1,50", "2,70"), strict=True):
            line_tax = line.find("LineTax")
            assert line_tax is not None
            _sub(line_tax, "TaxValue", tax)
            _sub(line, "Narrative", "Deliver 2,5 kg to the office")
        total = order.find("OrderTotal")
        assert total is not None
        _sub(total, "TaxTotal", "4,20")
        _sub(total, "FreightCharges", " 4,95 ")
        _sub(total, "Discount", "-0,50")
        _sub(total, "NumberOfLines", "2")
        _sub(total, "Adjustment", "1,2,3")
        code = order.find("OrderLine/Product/SuppliersProductCode")
        assert code is not None
        code.text = "12,5"
        uuid = await queue(sandbox, "order", order)
        await poll(gateway)
        assert (await ledger(gateway))[uuid] == ("acknowledged", None)

        body = fng_body(await in_fng(sandbox, uuid))
        assert body.findtext("OrderHead/Parameters/DecimalSeparator") == "."
        assert [t.text for t in body.iterfind("OrderLine/LineTax/TaxValue")] == ["1.50", "2.70"]
        assert body.findtext("OrderTotal/TaxTotal") == "4.20"
        assert body.findtext("OrderTotal/FreightCharges") == " 4.95 "
        assert body.findtext("OrderTotal/Discount") == "-0.50"
        assert body.findtext("OrderHead/Parameters/Precision") == "13.2"
        # FMS's numbers keep their own reading (pence, rounded half up).
        assert [p.text for p in body.iterfind("OrderLine/Price/UnitPrice")] == ["2.50", "6.75"]
        assert body.findtext("OrderTotal/GoodsValue") == "21.00"
        # Texts are as written: not wholly a number, a code, a date, a whole number.
        assert body.findtext("OrderTotal/NumberOfLines") == "2"
        assert body.findtext("OrderTotal/Adjustment") == "1,2,3"
        assert [n.text for n in body.iterfind("OrderLine/Narrative")] == [
            "Deliver 2,5 kg to the office"
        ] * 2
        assert [d.text for d in body.iterfind("OrderLine/Product/Description")] == [
            "Exercise books, A4, pack of 10",
            "Whiteboard markers, box of 12",
        ]
        assert body.findtext("OrderLine/Product/SuppliersProductCode") == "12,5"
        assert body.findtext("OrderDate") == "2026-11-20"
        assert comma_numbers(body) == {"SuppliersProductCode": "12,5"}

    async def test_a_comma_invoice_reaches_fng_with_its_totals_in_dots(
        self, gateway: Gateway, sandbox: Sandbox
    ) -> None:
        """An invoice's LineValueTotal, TaxTotal and NetPaymentTotal, and its lines' tax
        value, under the "." FNG is told of."""
        document = invoice(sandbox, "2026,17")
        head = document.find("InvoiceHead")
        assert head is not None
        parameters = etree.Element("Parameters")
        _sub(parameters, "Language", "en-GB")
        _sub(parameters, "DecimalSeparator", ",")
        _sub(parameters, "Precision", "13,2")
        head.insert(1, parameters)
        for element in document.iter(*INVOICE_NUMBERS):
            element.text = (element.text or "").replace(".", ",")
        line_tax = document.find("InvoiceLine/LineTax")
        assert line_tax is not None
        _sub(line_tax, "TaxValue", "1,50")
        total = document.find("InvoiceTotal")
        gross = document.find("InvoiceTotal/GrossPaymentTotal")
        assert total is not None and gross is not None
        gross.text = "9,00"
        for position, (tag, text) in enumerate(
            (
                ("NumberOfLines", "1"),
                ("LineValueTotal", "7,50"),
                ("TaxTotal", "1,50"),
                ("NetPaymentTotal", "7,50"),
            )
        ):
            element = etree.Element(tag)
            element.text = text
            total.insert(position, element)
        uuid = await queue(sandbox, "invoice", document)
        await poll(gateway)
        assert (await ledger(gateway))[uuid] == ("acknowledged", None)

        received = await in_fng(sandbox, uuid)
        assert received["type"] == "invoice"
        body = fng_body(received)
        assert body.findtext("InvoiceHead/Parameters/DecimalSeparator") == "."
        assert body.findtext("InvoiceHead/Parameters/Precision") == "13.2"
        assert body.findtext("InvoiceLine/LineTax/TaxValue") == "1.50"
        assert [
            body.findtext(f"InvoiceTotal/{tag}")
            for tag in (
                "NumberOfLines",
                "LineValueTotal",
                "TaxTotal",
                "NetPaymentTotal",
                "GrossPaymentTotal",
            )
        ] == ["1", "7.50", "1.50", "7.50", "9.00"]
        assert body.findtext("InvoiceLine/Price/UnitPrice") == "2.50"
        assert body.findtext("TaxSubTotal/TaxAtRate") == "1.50"
        assert body.findtext("InvoiceLine/Product/Description") == (
            "Exercise books, A4, pack of 10"
        )
        assert body.findtext("InvoiceReferences/SuppliersInvoiceNumber") == "2026,17"
        assert body.findtext("InvoiceDate") == "2026-11-20"
        assert comma_numbers(body) == {"SuppliersInvoiceNumber": "2026,17"}


# -- a portal whose index carries more than the gateway reads ----------------------------

RELAYED = "named-index"
SUPPLIER = "123123123"
_INDEX_RESULTS = (f"{{{ns.OTS}}}FetchIndexResult", f"{{{ns.OTS}}}FetchIndexFromDateResult")


async def relayed_portal(
    aiohttp_server: Any, sandbox: Sandbox, gateway: Gateway, index: Callable[[str], str]
) -> None:
    """A sandbox portal the gateway reaches through a relay (run here, on loopback) that
    passes every call on and hands back every answer, but for the index: ``index`` is given
    the doclist the sandbox portal wrote and gives back what the gateway is answered. The
    sandbox's own portal writes an entry's uuid, type and date only."""

    async def relay(request: web.Request) -> web.Response:
        headers = {
            key: value
            for key, value in request.headers.items()
            if key.lower() in ("content-type", "soapaction")
        }
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                f"{sandbox.url}{request.path_qs}",
                data=await request.read(),
                headers=headers,
            ) as answer,
        ):
            body, status = await answer.read(), answer.status
            content_type = answer.headers.get("Content-Type", "text/xml")
        if "FetchIndex" in request.headers.get("SOAPAction", "") and status == 200:
            envelope = etree.fromstring(body)
            for result in envelope.iter(*_INDEX_RESULTS):
                result.text = index(result.text or "")
            body = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
        return web.Response(body=body, status=status, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", relay)
    server = await aiohttp_server(app)
    await sandbox.state.portals.add(RELAYED, username="u", password="p", supplier_duns=SUPPLIER)
    await gateway.tenancy.add_portal(
        gateway.demo.database_id,
        name=RELAYED,
        url=f"{str(server.make_url('')).rstrip('/')}/portals/{RELAYED}/EProcurementService.asmx",
        username="u",
        password="p",
        supplier_duns=[SUPPLIER],
        poll_seconds=10,
        allow_http=True,
    )


def named(doclist: str) -> str:
    """Each entry given its name, as FetchIndexFromDate gives "the name, type and create
    date", and one an attribute of a later version of the index besides."""
    doclist = re.sub(r'<document uuid="([^"]*)"', r'<document name="\1.xml" uuid="\1"', doclist)
    return doclist.replace("<document ", '<document size="2048" ', 1)


class TestIndexAttributesTheGatewayDoesNotRead:
    async def test_entries_with_a_name_are_collected(
        self, gateway: Gateway, sandbox: Sandbox, aiohttp_server: Any
    ) -> None:
        """Every entry carries a name (and one a size): each is judged on its id, type and
        date alone, and every document of the portal is collected."""
        await relayed_portal(aiohttp_server, sandbox, gateway, named)
        await sandbox.state.portals.add_documents(
            RELAYED,
            [
                NewDocument(
                    "order",
                    ebis.to_text(content_order(sandbox, "WEB-N1", supplier_duns=SUPPLIER)),
                    uuid="named-order",
                ),
                NewDocument(
                    "invoice",
                    ebis.to_text(invoice(sandbox, "INV-N1", supplier_duns=SUPPLIER)),
                    uuid="named-invoice",
                ),
            ],
        )
        await run_once(gateway)
        entries = await ledger(gateway)
        assert entries["named-order"] == ("acknowledged", None)
        assert entries["named-invoice"] == ("acknowledged", None)
        assert {"named-order", "named-invoice"} <= set(await documents_in_fng(sandbox))
        row = await portal_row(gateway, RELAYED)
        assert (row.failures, row.last_error) == (0, None)

    async def test_an_unusable_entry_beside_them_is_set_aside_alone(
        self, gateway: Gateway, sandbox: Sandbox, aiohttp_server: Any
    ) -> None:
        """An entry with a name whose id holds spaces is quarantined on its own; the named
        entry beside it is collected."""
        await relayed_portal(aiohttp_server, sandbox, gateway, named)
        order = ebis.to_text(content_order(sandbox, "WEB-N2", supplier_duns=SUPPLIER))
        await sandbox.state.portals.add_documents(
            RELAYED,
            [
                NewDocument("order", order, uuid="named with spaces", standard=False),
                NewDocument(
                    "order",
                    ebis.to_text(content_order(sandbox, "WEB-N3", supplier_duns=SUPPLIER)),
                    uuid="named-good",
                ),
            ],
        )
        await run_once(gateway)
        entries = await ledger(gateway)
        assert entries["named with spaces"] == ("quarantined", "index_entry")
        assert entries["named-good"] == ("acknowledged", None)
        assert (await portal_row(gateway, RELAYED)).failures == 0

    async def test_an_answer_that_is_no_index_still_fails_the_poll(
        self, gateway: Gateway, sandbox: Sandbox, aiohttp_server: Any
    ) -> None:
        await relayed_portal(aiohttp_server, sandbox, gateway, lambda _doclist: "<documents/>")
        await sandbox.state.portals.add_document(
            RELAYED,
            doc_type="order",
            xml=ebis.to_text(content_order(sandbox, "WEB-N4", supplier_duns=SUPPLIER)),
            uuid="never-listed",
        )
        await run_once(gateway)
        assert "never-listed" not in await ledger(gateway)
        row = await portal_row(gateway, RELAYED)
        assert row.failures == 1 and row.last_error.startswith("PORTAL_GARBAGE")
