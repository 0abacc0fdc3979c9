"""The eBIS-XML order checksum, computed as FMS 6 did: in 64-bit integers.

With the order's date (Year, Month, Day), its lines (LineCount of them, each with a
LineNumber and a whole Quantity) and its goods value (TotalValue, taken as whole pounds,
the integer part of OrderTotal/GoodsValue):

    LinesTotal = Σ (LineNumber * Quantity)
    F1 = Year + 13 * Day - 7 * LinesTotal
    F2 = Month + 17 * LineCount + 5 * TotalValue
    Checksum = the last five digits of |F1 * F2|

FMS needed 64-bit integers for it ("very large numbers can be generated"); every term here
is checked to stay within them, and an order whose numbers do not is refused rather than
given a checksum FMS could not have computed. FMS accepts a checksum within ±1 of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
MODULUS: Final = 100_000


class ChecksumOverflow(ValueError):
    """The order's numbers do not fit the 64-bit integers the checksum is computed in."""


def _int64(value: int) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise ChecksumOverflow("the order's numbers exceed 64-bit integers")
    return value


def order_checksum(
    year: int, month: int, day: int, lines: Iterable[tuple[int, int]], total_value: int
) -> int:
    """The checksum of an order dated year-month-day with ``lines`` of (LineNumber, Quantity)."""
    line_count = 0
    lines_total = 0
    for number, quantity in lines:
        line_count += 1
        lines_total = _int64(lines_total + _int64(number * quantity))
    f1 = _int64(year + 13 * day - _int64(7 * lines_total))
    f2 = _int64(month + 17 * line_count + _int64(5 * total_value))
    return abs(_int64(f1 * f2)) % MODULUS


def within_tolerance(sent: int, computed: int) -> bool:
    """FMS's ±1, on the five digits (so 99999 and 0 are neighbours)."""
    return (sent - computed) % MODULUS in (0, 1, MODULUS - 1)
