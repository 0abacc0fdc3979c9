"""eBIS-XML 3.09 style documents, as supplier portals and FMS 6 exchange them.

Orders (content orders from a portal, authorised orders from FMS) and invoices (which
carry credit notes too), without a namespace, in the shape the gateway's profile schemas
read (``schemas/eproc/profile/``). Each builder takes plain values, so a test or the demo
can write a document that breaks one of FMS's import rules on purpose.

The order checksum is FMS's, computed here from the document itself::

    Year, Month, Day  from OrderDate
    LineCount         the number of OrderLine elements (whatever their Action)
    LinesTotal        sum over OrderLine of LineNumber * Quantity/Amount
    TotalValue        the integer part (truncated) of OrderTotal/GoodsValue
    F1 = Year + 13*Day - 7*LinesTotal
    F2 = Month + 17*LineCount + 5*TotalValue
    Checksum = |F1 * F2| mod 100000, written without leading zeros

Worked by hand:

* 2026-11-20, one line (1 * 3), GoodsValue 7.50: LinesTotal 3, TotalValue 7;
  F1 = 2026 + 260 - 21 = 2265; F2 = 11 + 17 + 35 = 63; 2265 * 63 = 142695 -> 42695.
* 2026-01-01, lines 1 * 1 and 2 * 208, GoodsValue 834.50: LinesTotal 417, TotalValue 834;
  F1 = 2026 + 13 - 2919 = -880; F2 = 1 + 34 + 4170 = 4205; |-880 * 4205| = 3700400
  -> 00400, written 400.

A quantity that is not an integer (which FMS refuses) still enters LinesTotal by its exact
product with the line number; the builders only write such a quantity where that product
is an integer, so every reading of the checksum agrees.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from lxml import etree

from gateway.xmlsafe import Limits

SCHEMA_VERSION: Final = "3.09"
CENT: Final = Decimal("0.01")
STANDARD_RATE: Final = Decimal("20.00")
DUNS: Final = re.compile(r"[0-9]{9}|[0-9]{13}")

#: What the sandbox reads of eBIS-XML: documents given to its API, a portal's call and the
#: order inside a SendOrder. Generous, but still bounded.
LIMITS: Final = Limits(
    max_bytes=16 * 1024 * 1024, max_depth=64, max_elements=1_000_000, max_attributes=4_000_000
)


def require_duns(value: str, what: str) -> None:
    """Refuse a party number that is neither a DUNS number nor a GLN."""
    if not DUNS.fullmatch(value):
        raise ValueError(f"{what} is a DUNS number of 9 digits (or a GLN of 13)")


def money(value: Decimal) -> str:
    """An amount with two decimals, rounded half up as FMS rounds pence."""
    return f"{value.quantize(CENT, rounding=ROUND_HALF_UP):f}"


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One line of an order. ``quantity`` is written as given ("3", or "1.5"). The last
    three are what FMS adds to an authorised order's line: its commodity class, its
    "<LedgerCode>-<Fund>" narrative and the delivery's preferred date."""

    number: int
    product_code: str
    description: str
    quantity: str
    unit_price: Decimal
    tax_code: str = "S"
    tax_rate: Decimal = STANDARD_RATE
    action: str = "Original"
    uom: str = "EA"
    commodity_class: str | None = None
    narrative: str | None = None
    preferred_date: date | None = None

    @property
    def net(self) -> Decimal:
        return (Decimal(self.quantity) * self.unit_price).quantize(CENT, rounding=ROUND_HALF_UP)

    @property
    def tax(self) -> Decimal:
        return (self.net * self.tax_rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One line of an invoice or credit note; ``order_line`` links it to the order's line."""

    number: int
    order_line: int | None
    product_code: str
    description: str
    quantity: str
    unit_price: Decimal
    tax_code: str = "S"
    tax_rate: Decimal = STANDARD_RATE

    @property
    def net(self) -> Decimal:
        return (Decimal(self.quantity) * self.unit_price).quantize(CENT, rounding=ROUND_HALF_UP)

    @property
    def tax(self) -> Decimal:
        return (self.net * self.tax_rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def _sub(
    parent: etree._Element, tag: str, text: str | None = None, **attrib: str
) -> etree._Element:
    element = etree.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def order_checksum(
    order_date: date, lines: Sequence[tuple[int, Decimal]], goods_value: Decimal
) -> int:
    """FMS's order checksum from its inputs: (LineNumber, Quantity/Amount) per OrderLine."""
    lines_total = sum((number * amount for number, amount in lines), Decimal(0))
    if lines_total != lines_total.to_integral_value():
        raise ValueError("the products LineNumber * Quantity must add up to an integer")
    f1 = order_date.year + 13 * order_date.day - 7 * int(lines_total)
    # TotalValue: the goods value held in pence (the Precision rule), then its whole pounds.
    total_value = int(goods_value.quantize(CENT, rounding=ROUND_HALF_UP))
    f2 = order_date.month + 17 * len(lines) + 5 * total_value
    return abs(f1 * f2) % 100_000


def checksum_of(order: etree._Element) -> int:
    """The checksum an ``Order`` document should carry, read from the document itself."""
    order_date = date.fromisoformat((order.findtext("OrderDate") or "").strip())
    lines = [
        (
            int((line.findtext("LineNumber") or "").strip()),
            Decimal((line.findtext("Quantity/Amount") or "").strip()),
        )
        for line in order.iterfind("OrderLine")
    ]
    goods_value = Decimal((order.findtext("OrderTotal/GoodsValue") or "").strip())
    return order_checksum(order_date, lines, goods_value)


def order(
    *,
    number: str,
    order_date: date,
    supplier_duns: str | None,
    buyer_duns: str | None,
    lines: Sequence[OrderLine],
    supplier_gln: str | None = None,
    buyer_gln: str | None = None,
    order_type: str = "CTO",
    function: str = "original",
    test_mode: str = "0",
    language: str = "en-GB",
    currency: str = "GBP",
    supplier_code: str = "SUP01",
    supplier_name: str = "Demo Supplies Ltd",
    account: str = "ACC-4567",
    buyer_name: str = "Demo Primary School",
    user: str | None = "web user",
    originating_software: tuple[str, str, str] | None = None,
    checksum_offset: int = 0,
) -> etree._Element:
    """An ``Order``: a content order (CTO) by default; its checksum is computed, plus
    ``checksum_offset`` (to write one FMS refuses, or one it tolerates). A party FMS knows
    by its GLN has ``*_gln`` rather than ``*_duns``."""
    root = etree.Element("Order")
    head = _sub(root, "OrderHead")
    _sub(_sub(head, "Schema"), "Version", SCHEMA_VERSION)
    parameters = _sub(head, "Parameters")
    _sub(parameters, "Language", language)
    _sub(parameters, "DecimalSeparator", ".")
    _sub(parameters, "Precision", "13.2")
    if originating_software is not None:
        software = _sub(head, "OriginatingSoftware")
        for tag, text in zip(
            ("SoftwareManufacturer", "SoftwareProduct", "SoftwareVersion"),
            originating_software,
            strict=True,
        ):
            _sub(software, tag, text)
    _sub(head, "TestFlag", Mode=test_mode)
    _sub(head, "OrderType", Code=order_type, CodeList="BASDA")
    _sub(head, "Function", Code=function, CodeList="UKGov-DocStatus", Preserve="true")
    _sub(_sub(head, "OrderCurrency"), "Currency", Code=currency, CodeList="UKGov-CurrencyCode")
    if order_type == "PUO":  # FMS's export carries the invoice currency too
        _sub(
            _sub(head, "InvoiceCurrency"), "Currency", Code=currency, CodeList="UKGov-CurrencyCode"
        )
    checksum = _sub(head, "Checksum")
    _sub(_sub(root, "OrderReferences"), "BuyersOrderNumber", number, Preserve="true")
    _sub(root, "OrderDate", order_date.isoformat())

    supplier = _sub(root, "Supplier")
    references = _sub(supplier, "SupplierReferences")
    _sub(references, "BuyersCodeForSupplier", supplier_code)
    if supplier_gln is not None:
        _sub(references, "GLN", supplier_gln)
    if supplier_duns is not None:
        _sub(references, "DUNS", supplier_duns)
    _sub(supplier, "Party", supplier_name)

    buyer = _sub(root, "Buyer")
    references = _sub(buyer, "BuyerReferences")
    _sub(references, "SuppliersCodeForBuyer", account)
    if buyer_gln is not None:
        _sub(references, "GLN", buyer_gln)
    if buyer_duns is not None:
        _sub(references, "DUNS", buyer_duns)
    _sub(buyer, "Party", buyer_name)
    if user is not None:
        _sub(_sub(buyer, "Contact"), "Name", user)

    for line in lines:
        element = _sub(root, "OrderLine")
        _sub(element, "Action", line.action)
        _sub(element, "LineNumber", str(line.number))
        product = _sub(element, "Product")
        _sub(product, "SuppliersProductCode", line.product_code)
        _sub(product, "Description", line.description)
        if line.commodity_class is not None:
            _sub(product, "CommodityClass", line.commodity_class)
        _sub(_sub(element, "Quantity", UOMCode=line.uom), "Amount", line.quantity)
        _sub(_sub(element, "Price"), "UnitPrice", money(line.unit_price))
        _sub(_sub(element, "LineTax"), "TaxRate", money(line.tax_rate), Code=line.tax_code)
        _sub(element, "NetLineTotal", money(line.net))
        if line.preferred_date is not None:
            _sub(_sub(element, "Delivery"), "PreferredDate", line.preferred_date.isoformat())
        if line.narrative is not None:
            _sub(element, "Narrative", line.narrative)

    goods = sum((line.net for line in lines), Decimal(0))
    gross = goods + sum((line.tax for line in lines), Decimal(0))
    total = _sub(root, "OrderTotal")
    _sub(total, "GoodsValue", money(goods))
    _sub(total, "GrossValue", money(gross))
    checksum.text = str(checksum_of(root) + checksum_offset)
    return root


def invoice(
    *,
    number: str,
    invoice_date: date,
    order_number: str,
    supplier_duns: str | None,
    buyer_duns: str | None,
    lines: Sequence[InvoiceLine],
    invoice_type: str = "INV",
    code_list: str = "BASDA",
    test_mode: str | None = "0",
    credited_invoice: str | None = None,
) -> etree._Element:
    """An ``Invoice`` (type INV), or a credit note (type CRN, naming the invoice it credits)."""
    root = etree.Element("Invoice")
    head = _sub(root, "InvoiceHead")
    _sub(_sub(head, "Schema"), "Version", SCHEMA_VERSION)
    if test_mode is not None:
        _sub(head, "TestFlag", Mode=test_mode)
    _sub(head, "InvoiceType", Code=invoice_type, Codelist=code_list)
    references = _sub(root, "InvoiceReferences")
    _sub(references, "BuyersOrderNumber", order_number)
    _sub(references, "SuppliersInvoiceNumber", number)
    _sub(root, "InvoiceDate", invoice_date.isoformat())
    if supplier_duns is not None:
        _sub(_sub(_sub(root, "Supplier"), "SupplierReferences"), "DUNS", supplier_duns)
    if buyer_duns is not None:
        _sub(_sub(_sub(root, "Buyer"), "BuyerReferences"), "DUNS", buyer_duns)
    for line in lines:
        element = _sub(root, "InvoiceLine")
        _sub(element, "LineNumber", str(line.number))
        if line.order_line is not None:
            _sub(_sub(element, "InvoiceLineReferences"), "OrderLineNumber", str(line.order_line))
        product = _sub(element, "Product")
        _sub(product, "SuppliersProductCode", line.product_code)
        _sub(product, "Description", line.description)
        _sub(_sub(element, "Quantity"), "Amount", line.quantity)
        _sub(_sub(element, "Price"), "UnitPrice", money(line.unit_price))
        _sub(_sub(element, "LineTax"), "TaxRate", money(line.tax_rate), Code=line.tax_code)
        _sub(element, "NetLineTotal", money(line.net))
    rates: dict[tuple[str, Decimal], Decimal] = {}
    for line in lines:
        key = (line.tax_code, line.tax_rate)
        rates[key] = rates.get(key, Decimal(0)) + line.tax
    for (code, rate), tax in rates.items():
        subtotal = _sub(root, "TaxSubTotal")
        _sub(subtotal, "TaxRate", money(rate), Code=code)
        _sub(subtotal, "TaxAtRate", money(tax))
    gross = sum((line.net + line.tax for line in lines), Decimal(0))
    _sub(_sub(root, "InvoiceTotal"), "GrossPaymentTotal", money(gross))
    if credited_invoice is not None:
        credited = _sub(_sub(root, "Extensions"), "CN2InvoiceReferences")
        _sub(credited, "InvoiceNumber", credited_invoice)
    return root


def quote(*, number: str, quote_date: date, supplier_duns: str, buyer_duns: str) -> etree._Element:
    """A ``Quote``: portals list quotes in their index, but FMS never collects them."""
    root = etree.Element("Quote")
    _sub(_sub(_sub(root, "QuoteHead"), "Schema"), "Version", SCHEMA_VERSION)
    _sub(_sub(root, "QuoteReferences"), "SuppliersQuoteNumber", number)
    _sub(root, "QuoteDate", quote_date.isoformat())
    _sub(_sub(_sub(root, "Supplier"), "SupplierReferences"), "DUNS", supplier_duns)
    _sub(_sub(_sub(root, "Buyer"), "BuyerReferences"), "DUNS", buyer_duns)
    return root


def to_text(root: etree._Element) -> str:
    """The document as a portal hands it over: a string with a UTF-8 declaration."""
    body = etree.tostring(root, encoding="unicode", pretty_print=True)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body
