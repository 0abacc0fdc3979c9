"""FMS 6's export rules: an authorised order leaves as FMS exported one (seed 002's
"Export - Authorised Order" mapping), or is quarantined naming what is wrong.

The constants FMS wrote are checked field by field (rule ``export_constant``); the
supplier and the school (as buyer and as the party invoiced) are named by DUNS or GLN as
their "GLN | DUNs" attribute says (``supplier_id``, ``buyer_id``, ``invoice_to_id``); and an
order made from a content order differs from it only as FMS let a user edit one
(``order_edits``).
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
from gateway.xmlsafe import SchemaRegistry, qualified

#: FMS names a party by its DUNS (nine digits) or its GLN (thirteen), as its "GLN | DUNs"
#: companion attribute says; the gateway knows which by the length of the number it holds.
GLN_LENGTH: Final = 13
#: The currency code list as FMS wrote it; seed 002 spells it "UKGov -CurrencyCode".
CURRENCY_CODE_LISTS: Final = ("UKGov-CurrencyCode", "UKGov -CurrencyCode")
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
    # Whatever class the line holds (a content order's own, UNSPSC or other, "returned in
    # a confirmed order XML file"), or the constant: present, in any form.
    Constant(
        "Product/CommodityClass",
        _present,
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


#: Fields FMS filled from its records on every order, by seed 002's export mapping.
EXPORT_FIELDS: Final = (
    ("OrderReferences/BuyersOrderNumber", "Purchase Order Processing | Number"),
    ("OrderDate", "Purchase Order Processing | Date"),
    (
        "OrderHead/OrderCurrency/Currency/@Code",
        "Establishment Details | tab 3 System Parameters | Transaction Currency",
    ),
    (
        "OrderHead/InvoiceCurrency/Currency/@Code",
        "Establishment Details | tab 3 System Parameters | Transaction Currency",
    ),
)
#: "This will not be supplied."
NOT_SUPPLIED: Final = "OrderLine/Delivery/DeliverTo/Address/PostCode"
#: Money FMS wrote ("13.2": two decimals at most, with "."), and whole quantities.
_MONEY: Final = re.compile(r"-?[0-9]{1,13}(\.[0-9]{1,2})?")
_WHOLE: Final = re.compile(r"-?[0-9]+")
_MONEY_FIELDS: Final = ("UnitPrice", "NetLineTotal", "LineTotal", "GoodsValue", "GrossValue")


def export_fields(order: etree._Element) -> Iterator[Problem]:
    """What FMS always filled in, present; no tag without a value ("A tag will not be
    included in the XML file with no value"); and nothing FMS never supplied."""
    for field, seed in EXPORT_FIELDS:
        path, _, attribute = field.partition("/@")
        found = order.find(path)
        value = None if found is None else (found.get(attribute) if attribute else found.text)
        if not (value or "").strip():
            yield Problem("export_field", f"{field} is missing; FMS exported: {seed}")
    for element in order.iter():
        if (
            isinstance(element.tag, str)
            and len(element) == 0
            and not element.attrib
            and not (element.text or "").strip()
        ):
            yield Problem(
                "export_field",
                f"{order.getroottree().getelementpath(element)} has no value; FMS wrote no "
                "tag without one",
            )
            break
    if order.find(NOT_SUPPLIED) is not None:
        yield Problem("export_field", f"{NOT_SUPPLIED}: FMS said 'This will not be supplied'")


def export_numbers(order: etree._Element) -> Iterator[Problem]:
    """Numbers as FMS wrote them (DecimalSeparator "." and Precision "13.2"): money with
    "." and two decimals at most, quantities whole; and the totals FMS calculated: each
    line's NetLineTotal its quantity times its unit price ("Purchase Order Processing |
    Line total"), GoodsValue "Calculated as total net goods value", GrossValue "Calculated
    as total gross goods value" (the net value and its tax: never below it)."""
    for element in order.iter(*_MONEY_FIELDS):
        if not _MONEY.fullmatch((element.text or "").strip()):
            yield Problem(
                "export_number",
                f"{element.tag} is {(element.text or '').strip()!r}; FMS wrote money with '.' "
                "and two decimals at most",
            )
            return
    net_total = Decimal(0)
    for line in order.iterfind("OrderLine"):
        number = text(line, "LineNumber") or "?"
        quantity, price = (
            text(line, "Quantity/Amount") or "",
            decimal(text(line, "Price/UnitPrice")),
        )
        net = decimal(text(line, "NetLineTotal"))
        if not _WHOLE.fullmatch(quantity):
            yield Problem("export_number", f"line {number}: the quantity {quantity!r} is not whole")
            return
        if price is None or net is None:
            yield Problem(
                "export_number", f"line {number}: its UnitPrice or NetLineTotal is missing"
            )
            return
        if net != pence(int(quantity) * price):
            yield Problem(
                "export_totals",
                f"line {number}: NetLineTotal is {net}; {quantity} at {price} is "
                f"{pence(int(quantity) * price)}",
            )
        net_total += net
    goods = decimal(text(order, "OrderTotal/GoodsValue"))
    gross = decimal(text(order, "OrderTotal/GrossValue"))
    if goods is None or gross is None:
        yield Problem("export_totals", "OrderTotal/GoodsValue or GrossValue is missing")
    elif goods != net_total:
        yield Problem(
            "export_totals", f"GoodsValue is {goods}; the lines' NetLineTotal add up to {net_total}"
        )
    elif gross < goods:
        yield Problem("export_totals", f"GrossValue {gross} is below GoodsValue {goods}")


#: The parties FMS named in an authorised order, and the rule that checks each.
PARTY_RULES: Final = {"Supplier": "supplier_id", "Buyer": "buyer_id", "InvoiceTo": "invoice_to_id"}


def _party(order: etree._Element, party: str, number: str | None) -> Iterator[Problem]:
    """A party named as FMS named it: by DUNS when its "GLN | DUNs" attribute is DUNs, by
    GLN when it is GLN, and by that alone. The supplier's number itself is the portal's to
    judge (a portal refuses an order for another supplier); the school's parties (the buyer,
    the party invoiced) must carry the school's number and no other."""
    if number is None:
        return
    tag, other = ("GLN", "DUNS") if len(number) == GLN_LENGTH else ("DUNS", "GLN")
    path = f"{party}/{party}References/{tag}"
    found = text(order, path)
    rule = PARTY_RULES[party]
    if not found:
        yield Problem(rule, f"{path} is missing; the {party} is identified by its {tag}")
        return
    if party == "Supplier":
        return
    if found != number:
        yield Problem(rule, f"{path} is {found}; the school's {tag} is {number}")
    elsewhere = f"{party}/{party}References/{other}"
    if another := text(order, elsewhere):
        yield Problem(rule, f"{elsewhere} is {another}; FMS names the school by its {tag} alone")


@dataclass(frozen=True, slots=True)
class _Line:
    part_number: str
    description: str
    price: Decimal | None
    #: Returned as the content order gave them: "Not used by FMS but returned in a confirmed
    #: order XML file" (and when it gave none, the constants FMS wrote instead).
    commodity_class: str
    uom: str


def _line(line: etree._Element) -> _Line:
    quantity = line.find("Quantity")
    uom = quantity.get("UOMCode") if quantity is not None else None
    return _Line(
        text(line, "Product/SuppliersProductCode") or "",
        " ".join((text(line, "Product/Description") or "").split()),
        None if (price := decimal(text(line, "Price/UnitPrice"))) is None else pence(price),
        text(line, "Product/CommodityClass") or "00 00 00 00",
        (uom or text(line, "Quantity/UOMCode") or "EA").strip(),
    )


def _lines(order: etree._Element, *, original_only: bool) -> tuple[dict[str, _Line], list[str]]:
    """The order's lines by line number, and the line numbers given to more than one."""
    lines: dict[str, _Line] = {}
    repeated: list[str] = []
    for line in order.iterfind("OrderLine"):
        if original_only and action(line) != "Original":
            continue
        number = text(line, "LineNumber") or "?"
        if number in lines:
            repeated.append(number)
        lines[number] = _line(line)
    return lines, repeated


def order_edits(order: etree._Element, content_order: etree._Element) -> Iterator[Problem]:
    """How the order differs from the content order it was made from, where FMS would not
    have let it: "The user can not edit the part number, the description, or the price.
    Additional lines can not be added. The user can edit the line quantity to be purchased.
    Lines can be deleted." FMS imported only the content order's Original lines, and
    returned their commodity class, UOM code and the supplier's narrative as they came."""
    reading = read_numbers(content_order, "OrderHead", ORDER_NUMBERS, lenient=True)
    if reading.separator is None:
        yield Problem("order_edits", f"the content order cannot be read: {reading.reason()}")
        return
    imported, _ = _lines(reading.document, original_only=True)
    lines, repeated = _lines(order, original_only=False)
    for number in repeated:
        yield Problem(
            "order_edits",
            f"line number {number} is given to more than one line; FMS never adds a line",
        )
    for number, line in lines.items():
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
            ("commodity class", was.commodity_class, line.commodity_class),
            ("UOM code", was.uom, line.uom),
        ):
            if before != after:
                yield Problem(
                    "order_edits",
                    f"line {number}: its {what} changed from {before} to {after}; FMS lets a "
                    "user change only a line's quantity",
                )
    narrative = text(content_order, "Supplier/Narrative")
    if narrative and text(order, "Supplier/Narrative") != narrative:
        yield Problem(
            "order_edits",
            "Supplier/Narrative is not the content order's: FMS returned it in the confirmed order",
        )


def official_form(order: etree._Element, schemas: SchemaRegistry) -> etree._Element:
    """The order as it goes to the portal. "The Authorised Order exported from FMS is schema
    valid": when the operator's official Order schema puts its documents in a namespace
    (BASDA's do), the order is sent in it; else as the gateway's profile has it."""
    namespace = schemas.target_namespace(EBIS_ORDER) if EBIS_ORDER in schemas else None
    return order if namespace is None else qualified(order, namespace)


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
        official_form(order, schemas), schemas, EBIS_ORDER
    )
    if problems:
        return Verdict(tuple(problems))
    warnings: list[Problem] = []
    head = order.find("OrderHead")
    order_type = head.find("OrderType") if head is not None else None
    if order_type is None or order_type.get("Code") != "PUO":
        problems.append(Problem("order_type", "an authorised order must be of type PUO"))
    if test_mode(head) != "0":
        problems.append(
            Problem("test_mode", 'an authorised order\'s test flag is "0" as a numeric')
        )
    function = head.find("Function") if head is not None else None
    if function is None or function.get("Code") not in ("original", "copy"):
        problems.append(Problem("function", "an authorised order's function is original or copy"))
    problems.extend(export_constants(order))
    problems.extend(export_fields(order))
    problems.extend(export_numbers(order))
    lines = order.findall("OrderLine")
    if not lines or any(action(line) != "Original" for line in lines):
        problems.append(Problem("no_lines", "an authorised order's lines are all Original"))
    if checksum_policy is not ChecksumPolicy.OFF:
        by_policy(list(checksum_problems(order, lines)), checksum_policy, problems, warnings)
    problems.extend(_party(order, "Supplier", expect.supplier_duns))
    problems.extend(_party(order, "Buyer", expect.school_duns))
    if order.find("InvoiceTo") is not None:
        problems.extend(_party(order, "InvoiceTo", expect.school_duns))
    if content_order is not None:
        problems.extend(order_edits(order, content_order))
    return Verdict(tuple(problems), tuple(warnings), "order")
