"""Numbers in eBIS-XML documents, read as FMS 6 read them on import (seed 002).

``Parameters/DecimalSeparator`` (``.`` or ``,``) is "used to interpret values during
import"; ``Parameters/Precision``: "If less than 2 decimals default pence as zero, if
greater than 2 round to 2 decimal places". So money is held in pence, rounded half up, and
every other number is read by the declared separator.

:func:`read_numbers` gives the document as FMS read it: each number rewritten with ``.`` and
money with exactly two decimals. That copy is what the import rules check and, where it
differs from the portal's bytes, what FNG is given. Since that copy declares ``.``, every
other element whose whole text is a number written with the declared ``,`` (a tax total, a
freight charge) is rewritten with ``.`` too, as written otherwise; texts that are not wholly
such a number, and the elements the standard gives as text (codes, references,
descriptions), are left as they are.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import Enum
from typing import Final

from lxml import etree

PENCE: Final = Decimal("0.01")
SEPARATORS: Final = (".", ",")
#: Values quoted in a problem's reason, at most.
_QUOTED: Final = 5


class Kind(Enum):
    MONEY = "money"  # held in pence
    NUMBER = "number"  # a quantity or a rate, kept as written


#: The numbers FMS reads from an Order (content or authorised), by element name.
ORDER_NUMBERS: Final[Mapping[str, Kind]] = {
    "Amount": Kind.NUMBER,
    "TaxRate": Kind.NUMBER,
    "UnitPrice": Kind.MONEY,
    "NetLineTotal": Kind.MONEY,
    "LineTotal": Kind.MONEY,
    "GoodsValue": Kind.MONEY,
    "GrossValue": Kind.MONEY,
}

#: The numbers FMS reads from an Invoice (invoice or credit note), by element name.
INVOICE_NUMBERS: Final[Mapping[str, Kind]] = {
    "Amount": Kind.NUMBER,
    "TaxRate": Kind.NUMBER,
    "Percentage": Kind.NUMBER,
    "UnitPrice": Kind.MONEY,
    "NetLineTotal": Kind.MONEY,
    "TaxAtRate": Kind.MONEY,
    "GrossPaymentTotal": Kind.MONEY,
}


#: Elements the standard gives as text (codes, references, names, descriptions, addresses):
#: never read as numbers, whatever they hold ("12,5" may be a part number).
TEXTS: Final = frozenset(
    {
        "Action",
        "AddresLine",
        "AddressLine",
        "Addressline",
        "BuyersCodeForSupplier",
        "BuyersOrderNumber",
        "BuyersProductCode",
        "CommodityClass",
        "ContractOrderReference",
        "DUNS",
        "Description",
        "Email",
        "ExtendedDescription",
        "Fax",
        "GLN",
        "GloballyUniqueID",
        "InvoiceGloballyUniqueID",
        "InvoiceNumber",
        "Language",
        "Name",
        "Narrative",
        "Party",
        "PostCode",
        "ProjectCode",
        "SoftwareManufacturer",
        "SoftwareProduct",
        "SoftwareVersion",
        "SuppliersCodeForBuyer",
        "SuppliersInvoiceNumber",
        "SuppliersProductCode",
        "SwitchBoard",
        "Switchboard",
        "TaxNumber",
        "TermConditions",
        "UOMCode",
        "Version",
    }
)
#: A whole text that is a number written with ``,`` ("7,20", "-1,5", ",5", "7,").
_COMMA_NUMBER: Final = re.compile(r"[+-]?(?:[0-9]+,[0-9]*|,[0-9]+)")


def pence(value: Decimal) -> Decimal:
    """Money as FMS holds it: two decimals, rounded half up (7.005 -> 7.01, 7.5 -> 7.50)."""
    return value.quantize(PENCE, rounding=ROUND_HALF_UP)


def number(text: str, separator: str) -> Decimal | None:
    """``text`` read with ``separator``, or None when it is not a number written with it."""
    value = text.strip()
    other = "," if separator == "." else "."
    if not value or other in value:
        return None
    try:
        result = Decimal(value.replace(separator, "."))
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def _other_number(element: etree._Element, text: str) -> bool:
    """Whether ``element`` (not one of the numbers FMS read) holds, as its whole text, a number
    written with ``,``: a leaf, not one the standard gives as text."""
    return (
        len(element) == 0
        and etree.QName(element).localname not in TEXTS
        and _COMMA_NUMBER.fullmatch(text.strip()) is not None
    )


def _written(value: Decimal, kind: Kind) -> str:
    return f"{pence(value) if kind is Kind.MONEY else value:f}"


@dataclass(frozen=True, slots=True)
class Reading:
    """A document's numbers as FMS read them."""

    #: The separator the document declares ("." when it declares none), or None when it
    #: declares one FMS cannot read with.
    separator: str | None
    #: A copy of the document with every number written as FMS held it.
    document: etree._Element
    #: Whether any number (or the declared separator) was rewritten.
    changed: bool
    #: "UnitPrice 7.50" for each value the declared separator cannot read.
    unreadable: tuple[str, ...]

    def body(self) -> bytes | None:
        """The rewritten document as UTF-8, or None when it is the portal's as it was."""
        if not self.changed:
            return None
        return etree.tostring(self.document, xml_declaration=True, encoding="UTF-8")

    def reason(self) -> str:
        """Why the numbers cannot be read, for a problem."""
        if self.separator is None:
            declared = self.document.findtext("*/Parameters/DecimalSeparator") or ""
            return f"the decimal separator is {declared.strip()!r}; FMS reads '.' or ','"
        quoted = ", ".join(self.unreadable[:_QUOTED])
        more = len(self.unreadable) - _QUOTED
        return (
            f"{quoted}{f' and {more} more' if more > 0 else ''} cannot be read with the "
            f"declared decimal separator {self.separator!r}"
        )

    @property
    def readable(self) -> bool:
        return self.separator is not None and not self.unreadable


def read_numbers(
    root: etree._Element, head: str, numbers: Mapping[str, Kind], *, lenient: bool = False
) -> Reading:
    """Read the numbers of a document whose header element is ``head`` (``OrderHead`` or
    ``InvoiceHead``) by the separator it declares there; ``root`` is left as it is.
    ``lenient``: a value the separator cannot read is left as written rather than reported
    (for the parts of a document FMS ignored)."""
    document = copy.deepcopy(root)
    declared = document.find(f"{head}/Parameters/DecimalSeparator")
    separator = "." if declared is None else (declared.text or "").strip()
    if separator not in SEPARATORS:
        return Reading(None, document, False, ())
    changed = False
    unreadable: list[str] = []
    for element in document.iter(etree.Element):
        text = element.text or ""
        if element.tag not in numbers:
            if separator == "," and _other_number(element, text):
                # Under the "." this copy declares, as written but for the separator.
                element.text = text.replace(separator, ".")
                changed = True
            continue
        value = number(text, separator)
        if value is None:
            if not lenient:
                unreadable.append(f"{element.tag} {text.strip()!r}")
            continue
        written = _written(value, numbers[str(element.tag)])
        if written != text:
            element.text = written
            changed = True
    if changed and declared is not None and separator != ".":
        declared.text = "."
    return Reading(separator, document, changed, tuple(unreadable))
