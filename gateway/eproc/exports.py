"""FMS 6's export rules: an authorised order leaves as FMS exported one (seed 002's
"Export - Authorised Order" mapping), or is quarantined naming what is wrong."""

from __future__ import annotations

from lxml import etree

from gateway.eproc.checksum import ChecksumPolicy
from gateway.eproc.rules import (
    EBIS_ORDER,
    ORDER_PROFILE,
    by_policy,
    checksum_problems,
    official_problems,
    profile_problems,
)
from gateway.eproc.verdicts import LIVE, Expectations, Problem, Verdict, code_list, test_mode, text
from gateway.xmlsafe import SchemaRegistry


def check_authorised_order(
    order: etree._Element,
    expect: Expectations,
    schemas: SchemaRegistry,
    *,
    checksum_policy: ChecksumPolicy,
) -> Verdict:
    """An order authorised in FNG, before it is sent: a purchase order as FMS exported one."""
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
    elif (code_list(order_type) or "") != "BASDA":
        problems.append(Problem("code_list", "an authorised order's type code list is BASDA"))
    if test_mode(head) not in LIVE:
        problems.append(Problem("test_mode", "an authorised order's test flag is 0"))
    function = head.find("Function") if head is not None else None
    if function is not None and function.get("Code") not in ("original", "copy"):
        problems.append(Problem("function", "an authorised order's function is original or copy"))
    if text(order, "OrderHead/Parameters/DecimalSeparator") not in (None, "."):
        problems.append(
            Problem("decimal_separator", "an authorised order's decimal separator is .")
        )
    lines = order.findall("OrderLine")
    if not lines or any(text(line, "Action") != "Original" for line in lines):
        problems.append(Problem("no_lines", "an authorised order's lines are all Original"))
    if checksum_policy is not ChecksumPolicy.OFF:
        by_policy(list(checksum_problems(order, lines)), checksum_policy, problems, warnings)
    if text(order, "Supplier/SupplierReferences/DUNS") is None:
        problems.append(Problem("supplier_duns", "the order names no supplier DUNS"))
    if expect.school_duns is not None and text(order, "Buyer/BuyerReferences/DUNS") not in (
        None,
        expect.school_duns,
    ):
        problems.append(Problem("buyer_duns", "the order's buyer DUNS is not the school's"))
    return Verdict(tuple(problems), tuple(warnings), "order")
