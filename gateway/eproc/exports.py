"""FMS 6's export rules: an authorised order leaves as FMS exported one (seed 002's
"Export - Authorised Order" mapping), or is quarantined naming what is wrong.

The constants FMS wrote are checked field by field (rule ``export_constant``); the
supplier and the school are named by DUNS or GLN as their "GLN | DUNs" attribute says
(``supplier_id``, ``buyer_id``); and an order made from a content order differs from it only
as FMS let a user edit one (``order_edits``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Final

from lxml import etree

from gateway.eproc.amounts import ORDER_NUMBERS, pence, read_numbers
from gateway.eproc.rules import (
    EBIS_ORDER,
    ORDER_PROFILE,
    by_policy,
    checksum_problems,
    official_problems,
    profile_problems,
)
from gateway.eproc.verdicts import (
    LIVE,
    Expectations,
    Problem,
    Verdict,
    code_list,
    decimal,
    test_mode,
    text,
)
from gateway.tenancy.model import ChecksumPolicy
from gateway.xmlsafe import SchemaRegistry

#: FMS names a party by its DUNS (nine digits) or its GLN (thirteen), as its "GLN | DUNs"
#: companion attribute says; the gateway knows which by the length of the number it holds.
GLN_LENGTH: Final = 13
#: The currency code list as FMS wrote it; seed 002 spells it "UKGov -CurrencyCode".
CURRENCY_CODE_LISTS: Final = ("UKGov-CurrencyCode", "UKGov -CurrencyCode")
#: BASDA's CommodityClass: up to four pairs of digits separated by single spaces.
_COMMODITY_CLASS: Final = re.compile(r"\d{2}( \d{2}){0,3}")
#: "<LedgerCode>-<Fund>", e.g. 1001-01.
_LEDGER_FUND: Final = re.compile(r"[^\s-]+-[^\s-]+")
_DATE: Final = re.compile(r"(\d{4}-\d{2}-\d{2})(Z|[+-]\d{2}:\d{2})?")


def _is_date(value: str) -> bool:
    match = _DATE.fullmatch(value)
    if match is None:
        return False
    try:
        date.fromisoformat(match.group(1))
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Constant:
    """A field FMS always wrote, what it may hold, and seed 002's words for it."""

    #: The field, from Order or OrderLine; ``…/@Codelist`` is an attribute.
    field: str
    accepts: Callable[[str], bool]
    seed: str

    def value(self, element: etree._Element) -> str | None:
        path, _, attribute = self.field.partition("/@")
        found = element.find(path) if path else element
        if not attribute:
            return None if found is None else (found.text or "").strip()
        if found is None:
            return None
        value = code_list(found) if attribute == "Codelist" else found.get(attribute)
        return None if value is None else value.strip()

    def problem(self, element: etree._Element, where: str = "") -> Problem | None:
        value = self.value(element)
        if value and self.accepts(value):
            return None
        found = f"is {value!r}" if value else "is missing"
        return Problem("export_constant", f"{where}{self.field} {found}; FMS exported: {self.seed}")


def _equals(expected: str) -> Callable[[str], bool]:
    return lambda value: value == expected


def _present(value: str) -> bool:
    return bool(value)


#: The header constants of an authorised order.
HEAD_CONSTANTS: Final = (
    Constant(
        "OrderHead/Schema/Version",
        lambda value: value.startswith("3.09"),
        'Constant = Schema version currently supported by FMS e.g. "3.09-UKGov.20030911"',
    ),
    Constant("OrderHead/Parameters/DecimalSeparator", _equals("."), 'Constant = "."'),
    Constant("OrderHead/Parameters/Precision", _equals("13.2"), 'Constant = "13.2"'),
    Constant(
        "OrderHead/OriginatingSoftware/SoftwareManufacturer", _equals("SIMS"), 'Constant = "SIMS"'
    ),
    Constant("OrderHead/OriginatingSoftware/SoftwareProduct", _equals("FMS6"), 'Constant = "FMS6"'),
    Constant(
        "OrderHead/OriginatingSoftware/SoftwareVersion", _present, "Constant = current FMS version"
    ),
    Constant("OrderHead/OrderType/@Codelist", _equals("BASDA"), 'Constant = "BASDA"'),
    Constant(
        "OrderHead/Function/@Codelist", _equals("UKGov-DocStatus"), 'Constant = "UKGov-DocStatus"'
    ),
    Constant(
        "OrderHead/OrderCurrency/Currency/@Codelist",
        lambda value: value in CURRENCY_CODE_LISTS,
        'Constant = "UKGov -CurrencyCode"',
    ),
)
#: Written only when the order has an InvoiceCurrency.
INVOICE_CURRENCY: Final = Constant(
    "OrderHead/InvoiceCurrency/Currency/@Codelist",
    lambda value: value in CURRENCY_CODE_LISTS,
    'Constant = "UKGov -CurrencyCode"',
)
#: The constants of each OrderLine.
LINE_CONSTANTS: Final = (
    Constant(
        "Product/CommodityClass",
        lambda value: _COMMODITY_CLASS.fullmatch(value) is not None,
        'Order Line Details | Commodity class, if available otherwise constant = "00 00 00 00"',
    ),
    Constant(
        "Quantity/@UOMCode",
        _present,
        'Order Line Details | UOM Code, if available otherwise constant = "EA"',
    ),
    Constant(
        "Narrative",
        lambda value: _LEDGER_FUND.fullmatch(value) is not None,
        "Order Line Details | ledger code + Order Line Details | fund. Format to be "
        '"<LedgerCode>-<Fund>" e.g. 1001-01',
    ),
    Constant(
        "Delivery/PreferredDate",
        _is_date,
        "a date for every delivery term (ASAP = System date, …, Date to be confirmed = "
        "system date + 4 weeks)",
    ),
)


def export_constants(order: etree._Element) -> Iterator[Problem]:
    """Each constant of FMS's export the order lacks or gets wrong, naming the field."""
    constants = list(HEAD_CONSTANTS)
    if order.find("OrderHead/InvoiceCurrency") is not None:
        constants.append(INVOICE_CURRENCY)
    for constant in constants:
        if (problem := constant.problem(order)) is not None:
            yield problem
    for line in order.iterfind("OrderLine"):
        where = f"line {text(line, 'LineNumber') or '?'}: OrderLine/"
        for constant in LINE_CONSTANTS:
            if (problem := constant.problem(line, where)) is not None:
                yield problem


def _party(
    order: etree._Element, party: str, references: str, number: str | None
) -> Iterator[Problem]:
    """A party named as FMS named it: by DUNS when its "GLN | DUNs" attribute is DUNs, by
    GLN when it is GLN. The supplier's number itself is the portal's to judge (a portal
    refuses an order for another supplier); the buyer's must be the school's."""
    if number is None:
        return
    tag = "GLN" if len(number) == GLN_LENGTH else "DUNS"
    path = f"{party.capitalize()}/{references}/{tag}"
    found = text(order, path)
    rule = f"{party}_id"
    if not found:
        yield Problem(rule, f"{path} is missing; the {party} is identified by its {tag}")
    elif party == "buyer" and found != number:
        yield Problem(rule, f"{path} is {found}; the school's {tag} is {number}")


@dataclass(frozen=True, slots=True)
class _Line:
    part_number: str
    description: str
    price: Decimal | None


def _lines(order: etree._Element, *, original_only: bool) -> dict[str, _Line]:
    return {
        text(line, "LineNumber") or "?": _Line(
            text(line, "Product/SuppliersProductCode") or "",
            " ".join((text(line, "Product/Description") or "").split()),
            None if (price := decimal(text(line, "Price/UnitPrice"))) is None else pence(price),
        )
        for line in order.iterfind("OrderLine")
        if not original_only or text(line, "Action") == "Original"
    }


def order_edits(order: etree._Element, content_order: etree._Element) -> Iterator[Problem]:
    """How the order differs from the content order it was made from, where FMS would not
    have let it: "The user can not edit the part number, the description, or the price.
    Additional lines can not be added. The user can edit the line quantity to be purchased.
    Lines can be deleted." FMS imported only the content order's Original lines."""
    reading = read_numbers(content_order, "OrderHead", ORDER_NUMBERS)
    if not reading.readable:
        yield Problem("order_edits", f"the content order cannot be read: {reading.reason()}")
        return
    imported = _lines(reading.document, original_only=True)
    for number, line in _lines(order, original_only=False).items():
        was = imported.get(number)
        if was is None:
            yield Problem(
                "order_edits",
                f"line {number} is not in the content order: FMS lets a user delete lines and "
                "change quantities, never add a line",
            )
            continue
        for what, before, after in (
            ("part number", was.part_number, line.part_number),
            ("description", was.description, line.description),
            ("price", was.price, line.price),
        ):
            if before != after:
                yield Problem(
                    "order_edits",
                    f"line {number}: its {what} changed from {before} to {after}; FMS lets a "
                    "user change only a line's quantity",
                )


def check_authorised_order(
    order: etree._Element,
    expect: Expectations,
    schemas: SchemaRegistry,
    *,
    checksum_policy: ChecksumPolicy,
    content_order: etree._Element | None,
) -> Verdict:
    """An order authorised in FNG, before it is sent: a purchase order as FMS exported one.

    ``content_order``: the content order it was made from, as the portal sent it, if any.
    """
    if order.tag != "Order":
        return Verdict((Problem("document_type", f"an order was expected, not {order.tag}"),))
    problems = profile_problems(order, schemas, ORDER_PROFILE) + official_problems(
        order, schemas, EBIS_ORDER
    )
    if problems:
        return Verdict(tuple(problems))
    warnings: list[Problem] = []
    head = order.find("OrderHead")
    order_type = head.find("OrderType") if head is not None else None
    if order_type is None or order_type.get("Code") != "PUO":
        problems.append(Problem("order_type", "an authorised order must be of type PUO"))
    if test_mode(head) not in LIVE:
        problems.append(Problem("test_mode", "an authorised order's test flag is 0"))
    function = head.find("Function") if head is not None else None
    if function is None or function.get("Code") not in ("original", "copy"):
        problems.append(Problem("function", "an authorised order's function is original or copy"))
    problems.extend(export_constants(order))
    lines = order.findall("OrderLine")
    if not lines or any(text(line, "Action") != "Original" for line in lines):
        problems.append(Problem("no_lines", "an authorised order's lines are all Original"))
    if checksum_policy is not ChecksumPolicy.OFF:
        by_policy(list(checksum_problems(order, lines)), checksum_policy, problems, warnings)
    problems.extend(_party(order, "supplier", "SupplierReferences", expect.supplier_duns))
    problems.extend(_party(order, "buyer", "BuyerReferences", expect.school_duns))
    if content_order is not None:
        problems.extend(order_edits(order, content_order))
    return Verdict(tuple(problems), tuple(warnings), "order")
