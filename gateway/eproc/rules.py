"""FMS 6's import rules for documents from supplier portals, and its export rules for orders.

Each broken rule is a :class:`Problem` naming the rule and saying why; a document with any
problem is quarantined, never acknowledged to the portal, and never reaches FNG.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Final

from lxml import etree

from gateway.eproc.checksum import ChecksumOverflow, order_checksum, within_tolerance
from gateway.xmlsafe import SchemaRegistry

ORDER_PROFILE: Final = "eproc/profile/Order.xsd"
INVOICE_PROFILE: Final = "eproc/profile/Invoice.xsd"
EBIS_ORDER: Final = "ebis/Order"
EBIS_INVOICE: Final = "ebis/Invoice"


@dataclass(frozen=True, slots=True)
class Problem:
    rule: str
    reason: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Expectations:
    """What a school's documents must say: its system parameters and both DUNS numbers."""

    language: str
    currency: str
    school_duns: str | None
    supplier_duns: str


def _text(element: etree._Element, path: str) -> str | None:
    found = element.find(path)
    if found is None:
        return None
    return (found.text or "").strip()


def _first(*values: str | None) -> str | None:
    return next((value for value in values if value is not None), None)


def _decimal(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _test_mode(head: etree._Element | None) -> str | None:
    """The test flag, however the document spells it (attribute or element, with or without
    the Test level)."""
    if head is None:
        return None
    flag = head.find("TestFlag")
    if flag is None:
        return None
    test = flag.find("Test")
    return _first(
        flag.get("Mode"),
        test.get("Mode") if test is not None else None,
        _text(flag, "Test/Mode"),
        _text(flag, "Mode"),
        (flag.text or "").strip() or None,
    )


def _schemas(
    root: etree._Element, schemas: SchemaRegistry, profile: str, official: str
) -> Iterator[Problem]:
    for issue in schemas.issues(profile, root, limit=5):
        yield Problem("schema", f"the document breaks the eBIS-XML profile: {issue}")
    if official in schemas:
        for issue in schemas.issues(official, root, limit=5):
            yield Problem("ebis_schema", f"the document breaks the eBIS-XML schema: {issue}")


def _duns(root: etree._Element, expect: Expectations, *, buyer_required: bool) -> Iterator[Problem]:
    supplier = _text(root, "Supplier/SupplierReferences/DUNS")
    if supplier != expect.supplier_duns:
        yield Problem(
            "supplier_duns",
            f"the supplier's DUNS is {supplier or 'missing'}; the portal's supplier is "
            f"{expect.supplier_duns}",
        )
    buyer = _text(root, "Buyer/BuyerReferences/DUNS")
    if buyer is None and not buyer_required:
        return
    if expect.school_duns is None:
        yield Problem("buyer_duns", "the school has no DUNS number to match the buyer's against")
    elif buyer != expect.school_duns:
        yield Problem(
            "buyer_duns",
            f"the buyer's DUNS is {buyer or 'missing'}; the school's is {expect.school_duns}",
        )


def _checksum(root: etree._Element, lines: list[etree._Element]) -> Iterator[Problem]:
    sent = _text(root, "OrderHead/Checksum")
    order_date = _text(root, "OrderDate")
    goods = _decimal(_text(root, "OrderTotal/GoodsValue"))
    if sent is None or not sent.lstrip("-").isdigit():
        yield Problem("checksum", "the order has no checksum")
        return
    if order_date is None or goods is None:
        yield Problem("checksum", "the checksum needs the order date and the goods value")
        return
    try:
        day = date.fromisoformat(order_date[:10])
        numbers = [
            (
                int(_text(line, "LineNumber") or 0),
                int(_decimal(_text(line, "Quantity/Amount")) or 0),
            )
            for line in lines
        ]
        computed = order_checksum(day.year, day.month, day.day, numbers, int(goods))
    except ChecksumOverflow as exc:
        yield Problem("checksum", str(exc))
        return
    except ValueError:
        yield Problem("checksum", "the order date or a line number is not readable")
        return
    if not within_tolerance(int(sent), computed):
        yield Problem("checksum", f"the checksum is {sent}; the order's figures give {computed}")


def check_content_order(
    root: etree._Element, expect: Expectations, schemas: SchemaRegistry
) -> list[Problem]:
    """A content order (type CTO) from a portal, as FMS imported it."""
    if root.tag != "Order":
        return [Problem("document_type", f"an order was expected, not {root.tag}")]
    problems = list(_schemas(root, schemas, ORDER_PROFILE, EBIS_ORDER))
    if problems:
        return problems
    head = root.find("OrderHead")
    order_type = head.find("OrderType") if head is not None else None
    code = order_type.get("Code") if order_type is not None else None
    if code != "CTO":
        problems.append(
            Problem(
                "order_type",
                f"the order type is {code or 'missing'}; only content orders (CTO) import",
            )
        )
    mode = _test_mode(head)
    if mode not in ("0", "false"):
        problems.append(
            Problem(
                "test_mode", f"the test flag is {mode or 'missing'}; only live documents (0) import"
            )
        )
    language = _text(root, "OrderHead/Parameters/Language") or ""
    if language[:2].lower() != expect.language[:2].lower():
        problems.append(
            Problem(
                "language",
                f"the language is {language or 'missing'}; the school's is {expect.language}",
            )
        )
    currency = root.find("OrderHead/OrderCurrency/Currency")
    currency_code = (currency.get("Code") or "").strip() if currency is not None else ""
    if currency_code.upper() != expect.currency.upper():
        problems.append(
            Problem(
                "currency",
                f"the currency is {currency_code or 'missing'}; the school's is {expect.currency}",
            )
        )
    lines = root.findall("OrderLine")
    fractional = [
        _text(line, "LineNumber") or "?"
        for line in lines
        if (amount := _decimal(_text(line, "Quantity/Amount"))) is None
        or amount != amount.to_integral_value()
    ]
    if fractional:
        problems.append(
            Problem(
                "quantity",
                f"line(s) {', '.join(fractional)} have quantities that are not whole numbers",
            )
        )
    else:
        problems.extend(_checksum(root, lines))
    if not any(_text(line, "Action") == "Original" for line in lines):
        problems.append(Problem("no_lines", "the order has no lines whose Action is Original"))
    problems.extend(_duns(root, expect, buyer_required=True))
    return problems


def check_invoice(
    root: etree._Element, doc_type: str, expect: Expectations, schemas: SchemaRegistry
) -> list[Problem]:
    """An invoice or credit note from a portal, as FMS imported it."""
    if root.tag != "Invoice":
        return [Problem("document_type", f"an invoice or credit note was expected, not {root.tag}")]
    problems = list(_schemas(root, schemas, INVOICE_PROFILE, EBIS_INVOICE))
    if problems:
        return problems
    head = root.find("InvoiceHead")
    mode = _test_mode(head)
    if mode is not None and mode not in ("0", "false"):
        problems.append(
            Problem(
                "invoice_test_mode",
                f"the test flag is {mode}; only live documents (0 or none) import",
            )
        )
    kind = head.find("InvoiceType") if head is not None else None
    code = ((kind.get("Code") if kind is not None else None) or "").upper()
    if code not in ("INV", "CRN"):
        problems.append(
            Problem(
                "invoice_type", f"the invoice type is {code or 'missing'}; INV or CRN is required"
            )
        )
    elif (code == "CRN") != (doc_type == "creditnote"):
        problems.append(
            Problem(
                "document_type", f"the portal lists it as {doc_type} but its invoice type is {code}"
            )
        )
    code_list = (
        _first(kind.get("Codelist"), kind.get("CodeList")) if kind is not None else None
    ) or ""
    if code_list.upper() != "BASDA":
        problems.append(
            Problem("code_list", f"the code list is {code_list or 'missing'}; BASDA is required")
        )
    problems.extend(_duns(root, expect, buyer_required=False))
    return problems


def check_authorised_order(
    root: etree._Element, school_duns: str | None, schemas: SchemaRegistry
) -> list[Problem]:
    """An order authorised in FNG, before it is sent: a purchase order with the constants of
    FMS's export."""
    if root.tag != "Order":
        return [Problem("document_type", f"an order was expected, not {root.tag}")]
    problems = list(_schemas(root, schemas, ORDER_PROFILE, EBIS_ORDER))
    if problems:
        return problems
    head = root.find("OrderHead")
    order_type = head.find("OrderType") if head is not None else None
    if order_type is None or order_type.get("Code") != "PUO":
        problems.append(Problem("order_type", "an authorised order must be of type PUO"))
    elif (order_type.get("CodeList") or "") != "BASDA":
        problems.append(Problem("code_list", "an authorised order's type code list is BASDA"))
    if _test_mode(head) not in ("0", "false"):
        problems.append(Problem("test_mode", "an authorised order's test flag is 0"))
    function = head.find("Function") if head is not None else None
    if function is not None and function.get("Code") not in ("original", "copy"):
        problems.append(Problem("function", "an authorised order's function is original or copy"))
    separator = _text(root, "OrderHead/Parameters/DecimalSeparator")
    if separator not in (None, "."):
        problems.append(
            Problem("decimal_separator", "an authorised order's decimal separator is .")
        )
    lines = root.findall("OrderLine")
    if not lines or any(_text(line, "Action") != "Original" for line in lines):
        problems.append(Problem("no_lines", "an authorised order's lines are all Original"))
    problems.extend(_checksum(root, lines))
    if _text(root, "Supplier/SupplierReferences/DUNS") is None:
        problems.append(Problem("supplier_duns", "the order names no supplier DUNS"))
    if school_duns is not None and _text(root, "Buyer/BuyerReferences/DUNS") not in (
        None,
        school_duns,
    ):
        problems.append(Problem("buyer_duns", "the order's buyer DUNS is not the school's"))
    return problems
