"""The eBIS-XML order checksum, computed as FMS 6 did: in 64-bit integers.

**Source.** The calculation is not in seed 002, which says only "The checksum is
validated. It must therefore be correctly provided. The calculation is included in the
official documentation. NOTE: we have found it necessary to use an INT64 to support this as
very large numbers can be generated." The official documentation is BASDA's eBIS-XML 3.09
(UK Gov) Order documentation, which is BASDA's to distribute and is not shipped here (the
3.10 schemas BASDA now publishes no longer have an order Checksum). This module is the one
place the gateway writes the formula down:

    Year, Month, Day  from OrderDate
    LineCount         the number of OrderLine elements
    LinesTotal        Σ LineNumber * Quantity/Amount, over every OrderLine
    TotalValue        OrderTotal/GoodsValue in whole pounds
    F1 = Year + 13 * Day - 7 * LinesTotal
    F2 = Month + 17 * LineCount + 5 * TotalValue
    Checksum = the last five digits of |F1 * F2|

FMS accepts a checksum within ±1 of its own ("Calculated, must match the value +-1
tolerance from the XML File, if not fail import").

**Inputs as FMS read them.** GoodsValue is read by the document's declared decimal
separator and held in pence, rounded half up (the Precision rule), before its whole pounds
are taken: ``12,995`` with separator ``,`` is 13.00, so TotalValue is 13, not 12. Quantities
enter as whole numbers, as the 64-bit integers hold them: FMS imports only lines whose
quantity is written as an integer, and a line it ignores (its Action is not Original) whose
quantity has a fraction (``2.5``) gives no checksum FMS could have computed, so the order's
checksum cannot be checked (a checksum problem, under the policy); ``2.0`` counts as 2.

**64 bits.** Every term is checked to stay within signed 64-bit integers; an order whose
figures do not is refused rather than given a checksum FMS could not have computed.

**Worked examples** (:data:`WORKED_EXAMPLES`, each checked by the unit tests):

1. 2026-11-20, lines 1 * 3 and 2 * 2, goods 12.50: LinesTotal 7, TotalValue 12;
   F1 = 2026 + 260 - 49 = 2237; F2 = 11 + 34 + 60 = 105; 2237 * 105 = 234885 -> 34885.
2. 2026-11-20, the same lines, goods written ``12,995`` (separator ``,``): 13.00 in pence,
   TotalValue 13; F2 = 11 + 34 + 65 = 110; 2237 * 110 = 246070 -> 46070.
3. 2024-02-29, one line 1 * 500, goods 999.99: LinesTotal 500, TotalValue 999;
   F1 = 2024 + 377 - 3500 = -1099; F2 = 2 + 17 + 4995 = 5014; |-1099 * 5014| = 5510386
   -> 10386.
4. 2026-01-01, lines 1 * 1 and 2 * 208, goods 834.50: LinesTotal 417, TotalValue 834;
   F1 = 2026 + 13 - 2919 = -880; F2 = 1 + 34 + 4170 = 4205; |-880 * 4205| = 3700400
   -> 00400, written 400.

**Policy.** A checksum FMS would refuse quarantines every content order coming in and
every authorised order going out, so operators choose, globally and per portal, what a
mismatch does: :class:`ChecksumPolicy`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from gateway.eproc.amounts import pence

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
MODULUS: Final = 100_000


class ChecksumOverflow(ValueError):
    """The order's numbers do not fit the 64-bit integers the checksum is computed in."""


def _int64(value: int) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise ChecksumOverflow("the order's numbers exceed 64-bit integers")
    return value


def whole_pounds(goods_value: Decimal) -> int:
    """TotalValue: the goods value in pence (rounded half up), then its whole pounds."""
    return int(pence(goods_value))  # int() drops the pence


def order_checksum(
    year: int, month: int, day: int, lines: Iterable[tuple[int, int]], total_value: int
) -> int:
    """The checksum of an order dated year-month-day with ``lines`` of (LineNumber, Quantity)
    and TotalValue ``total_value`` (see :func:`whole_pounds`)."""
    line_count = 0
    lines_total = 0
    for number, quantity in lines:
        line_count += 1
        lines_total = _int64(lines_total + _int64(number * quantity))
    f1 = _int64(year + 13 * day - _int64(7 * lines_total))
    f2 = _int64(month + 17 * line_count + _int64(5 * total_value))
    return abs(_int64(f1 * f2)) % MODULUS


def within_tolerance(sent: int, computed: int) -> bool:
    """FMS's "+-1 tolerance", on the numbers as written: 0 and 99999 are two apart, not
    neighbours. A checksum is five digits at most: a longer number whose last five match is
    not the order's checksum."""
    return 0 <= sent < MODULUS and abs(sent - computed) <= 1


@dataclass(frozen=True, slots=True)
class WorkedExample:
    """One of the module's worked examples: an order's figures and its checksum."""

    order_date: tuple[int, int, int]
    #: (LineNumber, Quantity) of each OrderLine.
    lines: tuple[tuple[int, int], ...]
    #: GoodsValue as the document writes it, and the separator it declares.
    goods_value: str
    separator: str
    checksum: int


WORKED_EXAMPLES: Final = (
    WorkedExample((2026, 11, 20), ((1, 3), (2, 2)), "12.50", ".", 34885),
    WorkedExample((2026, 11, 20), ((1, 3), (2, 2)), "12,995", ",", 46070),
    WorkedExample((2024, 2, 29), ((1, 500),), "999.99", ".", 10386),
    WorkedExample((2026, 1, 1), ((1, 1), (2, 208)), "834.50", ".", 400),
)
