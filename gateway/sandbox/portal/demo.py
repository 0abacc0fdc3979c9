"""The demo's eProcurement: one supplier portal holding a document for every case FMS's
import rules decide, and one order authorised in FNG waiting to go to that supplier.

Every document is for the demo school's DUNS. The valid ones are what a portal normally
queues; each invalid one breaks exactly one of FMS's import rules (seed 002), named by
its ``expected`` value, so the gateway's tests can check it is quarantined for that rule:

=====================  ===========  ======================================================
``expected``           type         what is wrong
=====================  ===========  ======================================================
order_type             order        OrderType Code PUO, not CTO
test_mode              order        TestFlag Mode 1
currency               order        currency EUR, not GBP
language               order        language fr-FR (FMS compares the first two letters)
checksum               order        checksum two more than computed (±1 is tolerated)
quantity               order        a line quantity of 1.5 (FMS takes integers only)
buyer_duns             order        no buyer DUNS
supplier_duns          order        another supplier's DUNS
invoice_type           invoice      InvoiceType Code DBN, neither INV nor CRN
code_list              invoice      InvoiceType Codelist EDIFACT, not BASDA
invoice_test_mode      invoice      TestFlag Mode 1
not_xml                order        not well-formed XML
=====================  ===========  ======================================================
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from gateway.sandbox import ebis
from gateway.sandbox.ebis import InvoiceLine, OrderLine
from gateway.sandbox.fng.databases import new_guid
from gateway.sandbox.portal.portals import NewDocument, portal_path
from gateway.sandbox.state import SandboxState

DEMO_PORTAL: Final = "demo-supplier"
DEMO_PORTAL_PATH: Final = portal_path(DEMO_PORTAL)
DEMO_PORTAL_USERNAME: Final = "demo-primary"
DEMO_SCHOOL_DUNS: Final = "214365870"
DEMO_SUPPLIER_DUNS: Final = "987654321"
#: A supplier the school also trades with, but not through the demo portal.
OTHER_SUPPLIER_DUNS: Final = "555123987"

ORDER_DATE: Final = date(2026, 11, 20)
INVOICE_DATE: Final = date(2026, 11, 23)

#: The lines of the demo's orders: exercise books, markers, glue sticks.
LINES: Final = (
    OrderLine(1, "P-100", "Exercise books, A4, pack of 10", "3", Decimal("2.50")),
    OrderLine(2, "P-220", "Whiteboard markers, assorted, box of 12", "2", Decimal("6.75")),
    OrderLine(3, "P-315", "Glue sticks, 40 g, pack of 30", "1", Decimal("11.99")),
)


@dataclass(frozen=True, slots=True)
class DemoDocument:
    """A document the demo portal queues, and what the gateway should make of it."""

    uuid: str
    doc_type: str
    #: ``valid``, ``quote``, or the name of the one import rule it breaks.
    expected: str
    xml: str


@functools.cache
def demo_documents(
    school_duns: str = DEMO_SCHOOL_DUNS, supplier_duns: str = DEMO_SUPPLIER_DUNS
) -> tuple[DemoDocument, ...]:
    """The demo portal's documents, in the order it queues them (built once per DUNS pair)."""
    counter = iter(range(1001, 2000))

    def order(**changes: Any) -> str:
        values: dict[str, Any] = {
            "number": f"WEB-{next(counter)}",
            "order_date": ORDER_DATE,
            "supplier_duns": supplier_duns,
            "buyer_duns": school_duns,
            "lines": LINES[:2],
        }
        values.update(changes)
        return ebis.to_text(ebis.order(**values))

    invoice_lines = tuple(
        InvoiceLine(
            line.number,
            line.number,
            line.product_code,
            line.description,
            line.quantity,
            line.unit_price,
        )
        for line in LINES[:2]
    )
    invoice_numbers = iter(range(2001, 3000))

    def invoice(**changes: Any) -> str:
        values: dict[str, Any] = {
            "number": f"INV-{next(invoice_numbers)}",
            "invoice_date": INVOICE_DATE,
            "order_number": "WEB-1001",
            "supplier_duns": supplier_duns,
            "buyer_duns": school_duns,
            "lines": invoice_lines,
        }
        values.update(changes)
        return ebis.to_text(ebis.invoice(**values))

    changed = OrderLine(
        4,
        "P-400",
        "Scissors, pack of 15 (changed by the supplier)",
        "1",
        Decimal("9.60"),
        action="Changed",
    )
    halves = (LINES[0], OrderLine(2, "P-220", LINES[1].description, "1.5", Decimal("6.75")))
    cases: tuple[tuple[str, str, str, Callable[[], str]], ...] = (
        ("demo-order-1", "order", "valid", lambda: order()),
        ("demo-order-2", "order", "valid", lambda: order(lines=(*LINES, changed))),
        ("demo-order-3", "order", "valid", lambda: order(checksum_offset=1)),
        ("demo-invoice-1", "invoice", "valid", lambda: invoice()),
        (
            "demo-creditnote-1",
            "creditnote",
            "valid",
            lambda: invoice(
                number="CRN-3001",
                invoice_type="CRN",
                lines=invoice_lines[1:],
                credited_invoice="INV-2001",
            ),
        ),
        (
            "demo-quote-1",
            "quote",
            "quote",
            lambda: ebis.to_text(
                ebis.quote(
                    number="Q-5001",
                    quote_date=ORDER_DATE,
                    supplier_duns=supplier_duns,
                    buyer_duns=school_duns,
                )
            ),
        ),
        ("demo-bad-order-type", "order", "order_type", lambda: order(order_type="PUO")),
        ("demo-bad-test-mode", "order", "test_mode", lambda: order(test_mode="1")),
        ("demo-bad-currency", "order", "currency", lambda: order(currency="EUR")),
        ("demo-bad-language", "order", "language", lambda: order(language="fr-FR")),
        ("demo-bad-checksum", "order", "checksum", lambda: order(checksum_offset=2)),
        ("demo-bad-quantity", "order", "quantity", lambda: order(lines=halves)),
        ("demo-bad-buyer-duns", "order", "buyer_duns", lambda: order(buyer_duns=None)),
        (
            "demo-bad-supplier-duns",
            "order",
            "supplier_duns",
            lambda: order(supplier_duns=OTHER_SUPPLIER_DUNS),
        ),
        ("demo-bad-invoice-type", "invoice", "invoice_type", lambda: invoice(invoice_type="DBN")),
        ("demo-bad-code-list", "invoice", "code_list", lambda: invoice(code_list="EDIFACT")),
        (
            "demo-bad-invoice-test-mode",
            "invoice",
            "invoice_test_mode",
            lambda: invoice(test_mode="1"),
        ),
        (
            "demo-bad-not-xml",
            "order",
            "not_xml",
            lambda: (
                '<?xml version="1.0" encoding="UTF-8"?>\n<Order><OrderHead><Schema>'
                "<Version>3.09</Version></Schema></OrderHead><OrderDate>2026-11-20</Order>"
            ),
        ),
    )
    return tuple(
        DemoDocument(uuid, kind, expected, build()) for uuid, kind, expected, build in cases
    )


#: (uuid, type, expected) of every document on the demo portal.
DEMO_PORTAL_DOCUMENTS: Final = tuple(
    (document.uuid, document.doc_type, document.expected) for document in demo_documents()
)


async def seed_procurement(
    state: SandboxState, database_id: int, *, password: str | None = None
) -> dict[str, Any]:
    """Open the demo portal with its documents (created a minute apart, ending now), and
    authorise one order in FNG for its supplier. Returns what the demo keeps."""
    await state.portals.add(
        DEMO_PORTAL,
        username=DEMO_PORTAL_USERNAME,
        password=password or f"demo-{new_guid()}",
        supplier_duns=DEMO_SUPPLIER_DUNS,
    )
    documents = demo_documents()
    now = datetime.now(UTC)
    await state.portals.add_documents(
        DEMO_PORTAL,
        [
            NewDocument(
                document.doc_type,
                document.xml,
                uuid=document.uuid,
                created=now - timedelta(minutes=len(documents) - 1 - position),
            )
            for position, document in enumerate(documents)
        ],
    )
    order_id = await state.procurement.add_authorised_order(
        database_id, supplier_duns=DEMO_SUPPLIER_DUNS, buyer_duns=DEMO_SCHOOL_DUNS
    )
    return {
        "school_duns": DEMO_SCHOOL_DUNS,
        "supplier_duns": DEMO_SUPPLIER_DUNS,
        "portal_name": DEMO_PORTAL,
        "portal_username": DEMO_PORTAL_USERNAME,
        "authorised_order_id": order_id,
    }
