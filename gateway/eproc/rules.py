"""FMS 6's import rules for documents from supplier portals (seed 002's import mappings).

Each broken rule is a :class:`Problem` naming the rule and saying why; a document with any
problem is quarantined, never acknowledged to the portal, and never reaches FNG. A checksum
mismatch is a problem, a warning or nothing, as the :class:`ChecksumPolicy` says.

Documents are checked as FMS read them (:mod:`gateway.eproc.amounts`): numbers by the
declared decimal separator, money in pence. The export rules for authorised orders are in
:mod:`gateway.eproc.exports`. The README's eProcurement section lists every rule with seed
002's words for it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Final

from lxml import etree

from gateway.eproc.amounts import INVOICE_NUMBERS, ORDER_NUMBERS, Reading, read_numbers
from gateway.eproc.checksum import (
    INT64_MAX,
    ChecksumOverflow,
    order_checksum,
    whole_pounds,
    within_tolerance,
)
from gateway.eproc.verdicts import (
    LIVE,
    Expectations,
    Problem,
    Verdict,
    action,
    code_list,
    decimal,
    test_mode,
    text,
)
from gateway.tenancy.model import ChecksumPolicy
from gateway.xmlsafe import SchemaRegistry

__all__ = [
    "EBIS_INVOICE",
    "EBIS_ORDER",
    "INVOICE_PROFILE",
    "ORDER_PROFILE",
    "Expectations",
    "Problem",
    "Verdict",
    "check_content_order",
    "check_invoice",
]

ORDER_PROFILE: Final = "eproc/profile/Order.xsd"
INVOICE_PROFILE: Final = "eproc/profile/Invoice.xsd"
EBIS_ORDER: Final = "ebis/Order"
EBIS_INVOICE: Final = "ebis/Invoice"

#: What FMS read of a content order: seed 002's "Import - Content Order" mapping, "Any
#: schema tag not listed below is ignored by FMS" (with both parties' references, whose DUNS
#: or GLN is the web services handshake).
CONTENT_ORDER_READS: Final = (
    "OrderHead/Parameters/Language",
    "OrderHead/Parameters/DecimalSeparator",
    "OrderHead/Parameters/Precision",
    "OrderHead/TestFlag",
    "OrderHead/OrderType",
    "OrderHead/OrderCurrency/Currency",
    "OrderHead/Checksum",
    "OrderReferences/ContractOrderReference",
    "OrderDate",
    "Supplier/SupplierReferences",
    "Supplier/Contact/Name",
    "Supplier/Narrative",
    "Buyer/BuyerReferences",
    "Buyer/Contact/Name",
    "Narrative",
    "OrderTotal/GoodsValue",
)
#: What FMS read of each line whose Action is Original ("If = "Original" add line to
#: order otherwise ignore line").
CONTENT_ORDER_LINE_READS: Final = (
    "Action",
    "LineNumber",
    "OrderLineReferences/ProjectCode",
    "Originator/Contact/Name",
    "Product/SuppliersProductCode",
    "Product/Description",
    "Product/CommodityClass",
    "Quantity/UOMCode",
    "Quantity/Amount",
    "Price/UnitPrice",
    "LineTax/TaxRate",
)
#: A whole number as written: "FMS will only accept an integer for line quantity".
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")

#: The handshake codes of FMS's import mapping: each "must be present if file is to import".
HANDSHAKE_CODES: Final = (
    "Supplier/SupplierReferences/BuyersCodeForSupplier",
    "Buyer/BuyerReferences/SuppliersCodeForBuyer",
)


def profile_problems(root: etree._Element, schemas: SchemaRegistry, profile: str) -> list[Problem]:
    return [
        Problem("schema", f"the document breaks the eBIS-XML profile: {issue}")
        for issue in schemas.issues(profile, root, limit=5)
    ]


def official_problems(
    root: etree._Element, schemas: SchemaRegistry, official: str
) -> list[Problem]:
    if official not in schemas:
        return []
    return [
        Problem("ebis_schema", f"the document breaks the eBIS-XML schema: {issue}")
        for issue in schemas.issues(official, root, limit=5)
    ]


def fms_reads(order: etree._Element) -> etree._Element:
    """A copy of a content order holding only what FMS read of it: the fields of its import
    mapping, in the lines whose Action is Original. The rest "will be ignored by FMS, but
    will not cause the import to fail", so no rule looks at it."""
    order = copy.deepcopy(order)
    keep: set[etree._Element] = {order}

    def read(element: etree._Element) -> None:
        keep.update(element.iter())
        keep.update(element.iterancestors())

    for path in CONTENT_ORDER_READS:
        for element in order.iterfind(path):
            read(element)
    for line in order.iterfind("OrderLine"):
        if action(line) == "Original":
            keep.add(line)
            for path in CONTENT_ORDER_LINE_READS:
                for element in line.iterfind(path):
                    read(element)
    for element in list(order.iterdescendants()):
        if element not in keep:
            parent = element.getparent()
            if parent is not None:
                parent.remove(element)
    return order


def _as_read(
    root: etree._Element, schemas: SchemaRegistry, profile: str
) -> Reading | list[Problem]:
    """The document's numbers as FMS read them, once it fits the profile."""
    problems = profile_problems(root, schemas, profile)
    if problems:
        return problems
    head = "OrderHead" if root.tag == "Order" else "InvoiceHead"
    reading = read_numbers(root, head, ORDER_NUMBERS if root.tag == "Order" else INVOICE_NUMBERS)
    if not reading.readable:
        return [Problem("decimal_separator", reading.reason())]
    return reading


#: Where an invoice names the school: its Buyer, or (BASDA's Invoice makes Buyer optional)
#: the party it is addressed to.
INVOICE_BUYER: Final = ("Buyer/BuyerReferences/DUNS", "InvoiceTo/InvoiceToReferences/DUNS")


def _duns(
    root: etree._Element,
    expect: Expectations,
    buyer_paths: tuple[str, ...] = ("Buyer/BuyerReferences/DUNS",),
) -> Iterator[Problem]:
    """The web services handshake: both DUNS numbers present and the ones FMS holds (the
    school's at the first of ``buyer_paths`` the document has)."""
    supplier = text(root, "Supplier/SupplierReferences/DUNS")
    if supplier != expect.supplier_duns:
        yield Problem(
            "supplier_duns",
            f"the supplier's DUNS is {supplier or 'missing'}; the portal's supplier is "
            f"{expect.supplier_duns}",
        )
    buyer = next((found for path in buyer_paths if (found := text(root, path))), None)
    if expect.school_duns is None:
        yield Problem("buyer_duns", "the school has no DUNS number to match the buyer's against")
    elif buyer != expect.school_duns:
        yield Problem(
            "buyer_duns",
            f"the buyer's DUNS is {buyer or 'missing'}; the school's is {expect.school_duns}",
        )


def _fractional(lines: list[etree._Element], *, required: bool = True) -> Iterator[Problem]:
    """FMS "will only accept an integer for line quantity": each line's Quantity/Amount as
    the document wrote it (``3.`` and ``3,0`` are not integers, whatever the separator).
    ``required``: a line with no quantity is refused too."""
    found = [
        text(line, "LineNumber") or "?"
        for line in lines
        if (amount := text(line, "Quantity/Amount")) is not None or required
        if not _INTEGER.fullmatch(amount or "")
    ]
    if found:
        yield Problem(
            "quantity",
            f"line(s) {', '.join(found)} have quantities that are not written as whole numbers",
        )


def _handshake_codes(root: etree._Element) -> Iterator[Problem]:
    missing = [path.rsplit("/", 1)[1] for path in HANDSHAKE_CODES if not text(root, path)]
    if missing:
        yield Problem(
            "handshake_codes",
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing; FMS's "
            "import mapping says each 'must be present if file is to import'",
        )


def checksum_problems(root: etree._Element, lines: list[etree._Element]) -> Iterator[Problem]:
    """The checksum against the order's figures (as FMS read them), within ±1."""
    sent = text(root, "OrderHead/Checksum")
    order_date = text(root, "OrderDate")
    goods = decimal(text(root, "OrderTotal/GoodsValue"))
    if sent is None or not sent.lstrip("-").isdigit():
        yield Problem("checksum", "the order has no checksum")
        return
    if order_date is None or goods is None:
        yield Problem("checksum", "the checksum needs the order date and the goods value")
        return
    quantities = [decimal(text(line, "Quantity/Amount")) or Decimal(0) for line in lines]
    fractions = [
        f"{text(line, 'LineNumber') or '?'} ({quantity})"
        for line, quantity in zip(lines, quantities, strict=True)
        if not quantity.is_finite() or quantity != quantity.to_integral_value()
    ]
    if fractions:
        yield Problem(
            "checksum",
            f"the quantity of line(s) {', '.join(fractions)} is not a whole number, and the "
            "checksum is computed in whole numbers",
        )
        return
    try:
        day = date.fromisoformat(order_date[:10])
        if any(abs(quantity) > INT64_MAX for quantity in quantities):
            raise ChecksumOverflow("the order's numbers exceed 64-bit integers")
        numbers = [
            (int(text(line, "LineNumber") or 0), int(quantity))
            for line, quantity in zip(lines, quantities, strict=True)
        ]
        computed = order_checksum(day.year, day.month, day.day, numbers, whole_pounds(goods))
    except ChecksumOverflow as exc:
        yield Problem("checksum", str(exc))
        return
    except ValueError:
        yield Problem("checksum", "the order date or a line number is not readable")
        return
    if not within_tolerance(int(sent), computed):
        yield Problem("checksum", f"the checksum is {sent}; the order's figures give {computed}")


def by_policy(
    found: list[Problem], policy: ChecksumPolicy, problems: list[Problem], warnings: list[Problem]
) -> None:
    if policy is ChecksumPolicy.ENFORCE:
        problems.extend(found)
    elif policy is ChecksumPolicy.WARN:
        warnings.extend(found)


def check_content_order(
    root: etree._Element,
    expect: Expectations,
    schemas: SchemaRegistry,
    *,
    require_handshake_codes: bool,
    checksum_policy: ChecksumPolicy,
) -> Verdict:
    """A content order (type CTO) from a portal, as FMS imported it.

    ``require_handshake_codes``: BuyersCodeForSupplier and SuppliersCodeForBuyer must be
    present (False for a portal that relies on the DUNS handshake alone).
    """
    if root.tag != "Order":
        return Verdict((Problem("document_type", f"an order was expected, not {root.tag}"),))
    read = fms_reads(root)
    reading = _as_read(read, schemas, ORDER_PROFILE)
    if isinstance(reading, list):
        return Verdict(tuple(reading))
    order = reading.document
    # FNG is given the whole order, its numbers read as FMS read them where they can be
    # read, and the checksum is over every line, as the sender computed it.
    whole = read_numbers(root, "OrderHead", ORDER_NUMBERS, lenient=True)
    problems: list[Problem] = []
    warnings: list[Problem] = []
    head = order.find("OrderHead")
    order_type = head.find("OrderType") if head is not None else None
    code = order_type.get("Code") if order_type is not None else None
    if code != "CTO":
        problems.append(
            Problem(
                "order_type",
                f"the order type is {code or 'missing'}; only content orders (CTO) import",
            )
        )
    mode = test_mode(head)
    if mode not in LIVE:
        problems.append(
            Problem(
                "test_mode", f"the test flag is {mode or 'missing'}; only live documents (0) import"
            )
        )
    language = text(order, "OrderHead/Parameters/Language") or ""
    if language[:2].lower() != expect.language[:2].lower():
        problems.append(
            Problem(
                "language",
                f"the language is {language or 'missing'}; the school's is {expect.language}",
            )
        )
    currency = order.find("OrderHead/OrderCurrency/Currency")
    currency_code = (currency.get("Code") or "").strip() if currency is not None else ""
    if currency_code.upper() != expect.currency.upper():
        problems.append(
            Problem(
                "currency",
                f"the currency is {currency_code or 'missing'}; the school's is {expect.currency}",
            )
        )
    lines = order.findall("OrderLine")  # the Original ones
    fractional = list(_fractional(read.findall("OrderLine")))  # as the portal wrote them
    problems.extend(fractional)
    if not fractional and checksum_policy is not ChecksumPolicy.OFF:
        every_line = whole.document.findall("OrderLine")
        found = list(checksum_problems(whole.document, every_line))
        by_policy(found, checksum_policy, problems, warnings)
    if not lines:
        problems.append(Problem("no_lines", "the order has no lines whose Action is Original"))
    if require_handshake_codes:
        problems.extend(_handshake_codes(order))
    problems.extend(_duns(order, expect))
    return Verdict(tuple(problems), tuple(warnings), "order", whole.body())


def check_invoice(
    root: etree._Element,
    expect: Expectations,
    schemas: SchemaRegistry,
    *,
    sent: etree._Element | None = None,
) -> Verdict:
    """An invoice or credit note from a portal, as FMS imported it. Its InvoiceType Code
    "Determines whether the message is treated as an Invoice ("INV") or as a Credit Note
    ("CRN")", whatever the portal's index calls it; FNG is told that type.

    ``root`` is read without its namespace (:func:`~gateway.eproc.verdicts.ebis_document`);
    ``sent``, the document as the portal sent it, when that had one."""
    if root.tag != "Invoice":
        return Verdict(
            (Problem("document_type", f"an invoice or credit note was expected, not {root.tag}"),)
        )
    # "the file is validated against the schema and must therefore be schema compliant":
    # the official schema, if configured, judges the file as the portal sent it.
    reading = official_problems(root if sent is None else sent, schemas, EBIS_INVOICE) or _as_read(
        root, schemas, INVOICE_PROFILE
    )
    if isinstance(reading, list):
        return Verdict(tuple(reading))
    invoice = reading.document
    problems: list[Problem] = []
    head = invoice.find("InvoiceHead")
    mode = test_mode(head)
    if mode is not None and mode not in LIVE:
        problems.append(
            Problem(
                "invoice_test_mode",
                f"the test flag is {mode}; only live documents (0 or none) import",
            )
        )
    kind = head.find("InvoiceType") if head is not None else None
    code = ((kind.get("Code") if kind is not None else None) or "").strip().upper()
    if code not in ("INV", "CRN"):
        problems.append(
            Problem(
                "invoice_type", f"the invoice type is {code or 'missing'}; INV or CRN is required"
            )
        )
    listed = code_list(kind) or ""
    if listed.upper() != "BASDA":
        problems.append(
            Problem("code_list", f"the code list is {listed or 'missing'}; BASDA is required")
        )
    problems.extend(_fractional(root.findall("InvoiceLine"), required=False))
    problems.extend(_duns(invoice, expect, INVOICE_BUYER))
    doc_type = "creditnote" if code == "CRN" else "invoice"
    return Verdict(tuple(problems), (), doc_type, reading.body())
