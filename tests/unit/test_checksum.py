"""The eBIS-XML order checksum, as FMS computed it: the module's worked examples,
hand-worked ones, and properties."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.eproc import checksum as module
from gateway.eproc.amounts import number
from gateway.eproc.checksum import (
    INT64_MAX,
    INT64_MIN,
    WORKED_EXAMPLES,
    ChecksumOverflow,
    WorkedExample,
    order_checksum,
    whole_pounds,
    within_tolerance,
)
from gateway.tenancy.model import ChecksumPolicy


def by_hand(example: WorkedExample) -> int:
    """The formula written out again, from the example's figures as FMS read them."""
    year, month, day = example.order_date
    goods = number(example.goods_value, example.separator)
    assert goods is not None
    total_value = int(goods.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP"))
    lines_total = sum(n * q for n, q in example.lines)
    f1 = year + 13 * day - 7 * lines_total
    f2 = month + 17 * len(example.lines) + 5 * total_value
    return abs(f1 * f2) % 100_000


class TestWorkedExamples:
    @pytest.mark.parametrize("example", WORKED_EXAMPLES, ids=lambda e: e.goods_value)
    def test_each_gives_its_checksum(self, example: WorkedExample) -> None:
        """The module computes each worked example's checksum from the figures as written."""
        goods = number(example.goods_value, example.separator)
        assert goods is not None
        computed = order_checksum(*example.order_date, example.lines, whole_pounds(goods))
        assert computed == example.checksum == by_hand(example)

    @pytest.mark.parametrize("example", WORKED_EXAMPLES, ids=lambda e: e.goods_value)
    def test_each_is_shown_in_the_module(self, example: WorkedExample) -> None:
        """The documentation works each one through to the checksum the code gives."""
        year, month, day = example.order_date
        assert f"{year:04d}-{month:02d}-{day:02d}" in (module.__doc__ or "")
        assert example.goods_value in (module.__doc__ or "")
        assert f"{example.checksum}." in (module.__doc__ or "")

    def test_goods_value_is_taken_in_pence_before_whole_pounds(self) -> None:
        """12.995 is held as 13.00 (half up), so 13 pounds; 12.994 as 12.99, so 12."""
        assert whole_pounds(Decimal("12.995")) == 13
        assert whole_pounds(Decimal("12.994")) == 12
        assert whole_pounds(Decimal("12.5")) == 12


class TestPolicy:
    def test_the_three_policies_by_their_setting_values(self) -> None:
        assert [ChecksumPolicy(value) for value in ("enforce", "warn", "off")] == list(
            ChecksumPolicy
        )


class TestHandWorked:
    def test_a_small_order(self) -> None:
        """20 Nov 2026, lines (1 x 3) and (2 x 2), goods 12.50:
        F1 = 2026 + 13*20 - 7*7 = 2237; F2 = 11 + 17*2 + 5*12 = 105; 2237 * 105 = 234885."""
        assert order_checksum(2026, 11, 20, [(1, 3), (2, 2)], 12) == 34885

    def test_a_negative_first_factor(self) -> None:
        """29 Feb 2024, one line of 500, goods 999.99:
        F1 = 2024 + 377 - 3500 = -1099; F2 = 2 + 17 + 4995 = 5014; |F1 * F2| = 5510386."""
        assert order_checksum(2024, 2, 29, [(1, 500)], 999) == 10386

    def test_a_large_order_needs_64_bits(self) -> None:
        """Figures past 32 bits, as FMS warned: 5,000 lines of 1,000, goods 2,000,000."""
        lines = [(n, 1_000) for n in range(1, 5_001)]
        lines_total = 1_000 * 5_000 * 5_001 // 2
        f1 = 2026 + 13 * 1 - 7 * lines_total
        f2 = 4 + 17 * 5_000 + 5 * 2_000_000
        assert abs(f1 * f2) > 2**31
        assert order_checksum(2026, 4, 1, lines, 2_000_000) == abs(f1 * f2) % 100_000

    def test_beyond_64_bits_is_refused(self) -> None:
        with pytest.raises(ChecksumOverflow):
            order_checksum(2026, 11, 20, [(1, 10**18)], 10)


class TestTolerance:
    @pytest.mark.parametrize(
        ("sent", "ok"),
        [(34885, True), (34884, True), (34886, True), (34883, False), (34887, False)],
    )
    def test_off_by_one_accepted_off_by_two_refused(self, sent: int, ok: bool) -> None:
        assert within_tolerance(sent, 34885) is ok

    def test_the_tolerance_does_not_wrap_around_five_digits(self) -> None:
        """ "+-1" of the value as written: 99999 and 0 are 99,999 apart, not neighbours."""
        assert not within_tolerance(99_999, 0) and not within_tolerance(0, 99_999)
        assert within_tolerance(1, 0) and within_tolerance(99_998, 99_999)

    @pytest.mark.parametrize("sent", [1_034_885, 234_885, -34_885, 100_000])
    def test_a_number_longer_than_five_digits_is_not_the_checksum(self, sent: int) -> None:
        """The checksum is the last five digits of the product: the whole product, or any
        number ending in them, is not it."""
        assert not within_tolerance(sent, 34885)


lines_strategy = st.lists(
    st.tuples(st.integers(1, 10_000), st.integers(0, 100_000)), min_size=0, max_size=50
)


class TestProperties:
    @given(
        st.integers(1900, 2100),
        st.integers(1, 12),
        st.integers(1, 31),
        lines_strategy,
        st.integers(0, 10**9),
    )
    def test_matches_exact_arithmetic_in_range(
        self, year: int, month: int, day: int, lines: list[tuple[int, int]], value: int
    ) -> None:
        """Wherever every term fits 64 bits, the result is the exact formula's last five digits."""
        lines_total = sum(n * q for n, q in lines)
        f1 = year + 13 * day - 7 * lines_total
        f2 = month + 17 * len(lines) + 5 * value
        if INT64_MIN <= f1 * f2 <= INT64_MAX:
            checksum = order_checksum(year, month, day, lines, value)
            assert checksum == abs(f1 * f2) % 100_000
            assert 0 <= checksum <= 99_999
        else:
            with pytest.raises(ChecksumOverflow):
                order_checksum(year, month, day, lines, value)

    @given(lines_strategy, st.randoms())
    def test_line_order_does_not_matter(self, lines: list[tuple[int, int]], random: object) -> None:
        shuffled = list(lines)
        random.shuffle(shuffled)  # type: ignore[attr-defined]
        assert order_checksum(2026, 11, 20, lines, 12) == order_checksum(2026, 11, 20, shuffled, 12)

    @given(st.integers(0, 99_999), st.integers(-3, 3))
    def test_tolerance_is_exactly_one(self, computed: int, offset: int) -> None:
        sent = (computed + offset) % 100_000
        assert within_tolerance(sent, computed) is (abs(offset) <= 1 and sent == computed + offset)
