"""What FMS's rules say about a document, and the small readers the rules share."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from lxml import etree

from gateway.xmlsafe import unqualified

#: How a live (not test) document writes its test flag.
LIVE: Final = ("0", "false")


@dataclass(frozen=True, slots=True)
class Problem:
    rule: str
    reason: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Expectations:
    """What a school's documents must say: its system parameters and both parties' numbers
    (each a DUNS of nine digits or a GLN of thirteen)."""

    language: str
    currency: str
    school_duns: str | None
    supplier_duns: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """What FMS's rules make of a document."""

    #: Broken rules: any one quarantines the document.
    problems: tuple[Problem, ...]
    #: Broken rules a policy lets through (a checksum mismatch under ``warn``): the document
    #: goes on, and each is logged and counted.
    warnings: tuple[Problem, ...] = ()
    #: The type FNG is told: ``order``, or an invoice's own ``invoice`` or ``creditnote``.
    doc_type: str = ""
    #: The document as FMS read it, when that differs from the bytes the portal gave.
    body: bytes | None = None


def text(element: etree._Element, path: str) -> str | None:
    """The stripped text at ``path``, "" for an empty element, None for none."""
    found = element.find(path)
    if found is None:
        return None
    return (found.text or "").strip()


def first(*values: str | None) -> str | None:
    return next((value for value in values if value is not None), None)


def decimal(value: str | None) -> Decimal | None:
    """A number written with ``.`` (as every number is once read by :mod:`.amounts`)."""
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def ebis_document(root: etree._Element) -> etree._Element:
    """The document as the rules read it. BASDA's schemas put an eBIS-XML Order or Invoice
    in a namespace of their own (``urn:schemas-basda-org:2000:purchaseOrder:xdr:3.01``,
    ``…:salesInvoice:…``); the gateway's profiles and rules name its elements without one.
    A copy, with the root's namespace taken off, when it has one; else the document."""
    namespace = etree.QName(root).namespace
    if namespace is None:
        return root
    return unqualified(copy.deepcopy(root), namespace)


def action(line: etree._Element) -> str | None:
    """A line's Action: an attribute in eBIS-XML (``<OrderLine Action="Original">``), read
    as a child element too."""
    value = first(line.get("Action"), text(line, "Action"))
    return None if value is None else value.strip()


def code_list(element: etree._Element | None) -> str | None:
    """A Codelist attribute, however the document capitalises it (BASDA: Codelist)."""
    if element is None:
        return None
    return first(element.get("Codelist"), element.get("CodeList"))


def test_mode(head: etree._Element | None) -> str | None:
    """The test flag, however the document spells it (attribute or element, with or without
    the Test level). A flag written more than one way is as live as its least live form: the
    first form that is not live, else the first form."""
    if head is None:
        return None
    flag = head.find("TestFlag")
    if flag is None:
        return None
    test = flag.find("Test")
    forms = (
        flag.get("Mode"),
        test.get("Mode") if test is not None else None,
        text(flag, "Test/Mode"),
        text(flag, "Mode"),
        (flag.text or "").strip() or None,
    )
    # A boolean's spaces are not its value.
    modes = [mode.strip() for mode in forms if mode is not None]
    return next((mode for mode in modes if mode not in LIVE), modes[0] if modes else None)
