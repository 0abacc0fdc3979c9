"""Numbers read as FMS read them: by the declared decimal separator, money in pence."""

from __future__ import annotations

from decimal import Decimal

import pytest
from lxml import etree

from gateway.eproc.amounts import ORDER_NUMBERS, number, pence, read_numbers


class TestNumber:
    @pytest.mark.parametrize(
        ("text", "separator", "value"),
        [
            ("7.50", ".", Decimal("7.50")),
            ("7,50", ",", Decimal("7.50")),
            (" 3 ", ",", Decimal(3)),
            ("-0,5", ",", Decimal("-0.5")),
        ],
    )
    def test_read_with_the_declared_separator(
        self, text: str, separator: str, value: Decimal
    ) -> None:
        assert number(text, separator) == value

    @pytest.mark.parametrize(
        ("text", "separator"),
        [("7.50", ","), ("7,50", "."), ("1.234,56", ","), ("", "."), ("NaN", ".")],
    )
    def test_not_a_number_with_that_separator(self, text: str, separator: str) -> None:
        assert number(text, separator) is None


class TestPence:
    @pytest.mark.parametrize(
        ("value", "held"),
        [("7", "7.00"), ("7.5", "7.50"), ("7.005", "7.01"), ("7.004", "7.00"), ("-7.005", "-7.01")],
    )
    def test_two_decimals_rounded_half_up(self, value: str, held: str) -> None:
        """ "If less than 2 decimals default pence as zero, if greater than 2 round to 2
        decimal places"."""
        assert str(pence(Decimal(value))) == held


def _order(separator: str, price: str, amount: str = "3") -> etree._Element:
    return etree.fromstring(
        f"<Order><OrderHead><Parameters><DecimalSeparator>{separator}</DecimalSeparator>"
        f"</Parameters></OrderHead><OrderLine><Quantity><Amount>{amount}</Amount></Quantity>"
        f"<Price><UnitPrice>{price}</UnitPrice></Price></OrderLine></Order>".encode()
    )


class TestReadNumbers:
    def test_a_comma_document_is_rewritten_as_fms_held_it(self) -> None:
        order = _order(",", "2,505")
        reading = read_numbers(order, "OrderHead", ORDER_NUMBERS)
        assert reading.readable and reading.changed
        assert reading.document.findtext("OrderLine/Price/UnitPrice") == "2.51"
        assert reading.document.findtext("OrderHead/Parameters/DecimalSeparator") == "."
        assert order.findtext("OrderLine/Price/UnitPrice") == "2,505"  # the original stays
        body = reading.body()
        assert body is not None and b"<UnitPrice>2.51</UnitPrice>" in body

    def test_a_document_as_fms_holds_it_is_left_alone(self) -> None:
        reading = read_numbers(_order(".", "2.50"), "OrderHead", ORDER_NUMBERS)
        assert reading.readable and not reading.changed and reading.body() is None

    def test_a_value_with_the_other_separator_is_named(self) -> None:
        reading = read_numbers(_order(",", "2.50"), "OrderHead", ORDER_NUMBERS)
        assert not reading.readable
        assert "UnitPrice '2.50'" in reading.reason() and "','" in reading.reason()

    def test_a_separator_fms_cannot_read_with(self) -> None:
        reading = read_numbers(_order(";", "2;50"), "OrderHead", ORDER_NUMBERS)
        assert reading.separator is None and not reading.readable
        assert "';'" in reading.reason()

    def test_no_declared_separator_means_the_dot(self) -> None:
        order = etree.fromstring(
            b"<Order><OrderTotal><GoodsValue>7.5</GoodsValue></OrderTotal></Order>"
        )
        reading = read_numbers(order, "OrderHead", ORDER_NUMBERS)
        assert (
            reading.separator == "."
            and reading.document.findtext("OrderTotal/GoodsValue") == "7.50"
        )
