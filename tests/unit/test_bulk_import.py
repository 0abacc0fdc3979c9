"""Reading a schools CSV file: every problem found, with the line it is on."""

from __future__ import annotations

import io

import pytest

from gateway.cli import bulk as cli_bulk
from gateway.tenancy.bulk import COLUMNS, BulkImportError, parse_school_rows

HEADER = ",".join(COLUMNS)
FNG = "0f8fad5b-d9cb-469f-a165-70867728950e"
PARTNER = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def line(**values: str) -> str:
    """A good row, with some values replaced."""
    row = {
        "name": "Hill Primary",
        "la_number": "123",
        "establishment_number": "4567",
        "duns": "",
        "language": "",
        "currency": "",
        "database": "Public funds",
        "vendor": "Payments Ltd",
        "fng_key": FNG,
        "partner_key": PARTNER,
        **values,
    }
    return ",".join(row[column] for column in COLUMNS)


def problems(text: str) -> list[tuple[int, str]]:
    with pytest.raises(BulkImportError) as refused:
        parse_school_rows(text)
    return refused.value.problems


class TestGoodFiles:
    def test_defaults_and_normalised_keys(self) -> None:
        """Empty optional values take their defaults; GUIDs are normalised."""
        (row,) = parse_school_rows(
            f"{HEADER}\n{line(partner_key='', fng_key='{' + FNG.upper() + '}')}\n"
        )
        assert (row.line, row.la_number, row.establishment_number) == (2, "123", "4567")
        assert (row.duns, row.language, row.currency) == (None, "en", "GBP")
        assert (row.fng_key, row.partner_key) == (FNG, None)

    def test_columns_in_any_order_a_byte_order_mark_and_blank_lines(self) -> None:
        """Excel's byte-order mark, its CRLF line ends and its empty rows are all fine."""
        columns = list(reversed(COLUMNS))
        values = dict(zip(COLUMNS, line(duns="123456789").split(","), strict=True))
        text = (
            "\ufeff"
            + ",".join(columns).upper()
            + "\r\n\r\n"
            + ",".join(values[column] for column in columns)
            + "\r\n,,,,,,,,,\r\n"
        )
        (row,) = parse_school_rows(text)
        assert (row.line, row.duns, row.vendor) == (3, "123456789", "Payments Ltd")

    def test_a_quoted_value_over_two_lines_keeps_later_line_numbers_right(self) -> None:
        text = (
            f"{HEADER}\n"
            f"{line(name=chr(34) + 'Hill' + chr(10) + 'Primary' + chr(34))}\n"
            f"{line(la_number='12', establishment_number='0001')}\n"
        )
        assert problems(text) == [
            (2, "the name is blank or holds a control character: give one line"),
            (4, "the LA number '12' is not 3 digits"),
        ]

    def test_the_command_line_help_names_the_same_columns(self) -> None:
        assert cli_bulk.COLUMNS == COLUMNS


class TestBadFiles:
    def test_an_empty_file_needs_a_header(self) -> None:
        assert problems("") == [(1, "the file is empty: it needs a header row")]

    def test_a_header_without_rows_is_refused(self) -> None:
        assert problems(HEADER + "\n\n") == [(1, "the file has a header but no rows")]

    def test_a_header_lacking_columns_or_naming_others_is_refused(self) -> None:
        found = problems("name,la_number,establishment_number,city\n" + "x,123,4567,y\n")
        assert [line for line, _ in found] == [1, 1]
        assert found[0][1].startswith("the header lacks duns, language, currency, database,")
        assert found[1][1].startswith("the header has unknown columns: 'city'")

    def test_a_row_with_too_few_values_is_refused(self) -> None:
        assert problems(f"{HEADER}\nHill,123,4567\n") == [
            (2, "3 values where the header has 10 columns")
        ]

    @pytest.mark.parametrize(
        ("values", "message"),
        [
            ({"name": ""}, "name is empty"),
            ({"name": "x" * 201}, "the name is longer than 200 characters"),
            (
                {"name": "Hill\x1bSchool"},
                "the name is blank or holds a control character: give one line",
            ),
            ({"la_number": "1234"}, "the LA number '1234' is not 3 digits"),
            ({"la_number": "١٢٣"}, "the LA number '١٢٣' is not 3 digits"),
            ({"establishment_number": "456"}, "the establishment number '456' is not 4 digits"),
            ({"duns": "12345"}, "the DUNS number '12345' is not 9 digits (or a 13-digit GLN)"),
            ({"language": "english"}, "the language 'english' is not a code such as en or en-GB"),
            ({"currency": "gbp"}, "the currency 'gbp' is not a three-letter code such as GBP"),
            ({"database": ""}, "database is empty"),
            ({"database": "d" * 101}, "the database name is longer than 100 characters"),
            ({"vendor": ""}, "vendor is empty"),
            ({"fng_key": ""}, "fng_key is empty"),
            ({"fng_key": "not-a-guid"}, "fng_key is not a GUID"),
            ({"partner_key": "1234"}, "partner_key is not a GUID"),
        ],
    )
    def test_a_wrong_value_is_told_with_its_line(
        self, values: dict[str, str], message: str
    ) -> None:
        text = f"{HEADER}\n{line(establishment_number='0001')}\n{line(**values)}\n"
        assert problems(text) == [(3, message)]

    def test_every_wrong_value_of_a_row_is_reported(self) -> None:
        text = f"{HEADER}\n{line(la_number='1', duns='x', fng_key='y')}\n"
        assert [line for line, _ in problems(text)] == [2, 2, 2]


class TestRowsAgainstEachOther:
    def test_the_same_school_database_twice_is_refused(self) -> None:
        text = f"{HEADER}\n{line()}\n{line(fng_key=PARTNER, partner_key=FNG)}\n"
        assert problems(text) == [
            (3, "school 123/4567's database 'Public funds' is also on line 2")
        ]

    def test_a_key_on_two_lines_is_refused(self) -> None:
        other = "16fd2706-8baf-433b-82eb-8c7fada847da"
        text = (
            f"{HEADER}\n{line()}\n"
            f"{line(establishment_number='0001', fng_key=other)}\n"
            f"{line(establishment_number='0002', partner_key=other)}\n"
        )
        assert problems(text) == [
            (3, "the partner key is also on line 2"),
            (4, "the FNG key is also on line 2"),
        ]

    def test_one_school_described_two_ways_is_refused(self) -> None:
        other = "16fd2706-8baf-433b-82eb-8c7fada847da"
        text = (
            f"{HEADER}\n{line()}\n"
            + line(name="Hill", currency="EUR", database="Trips", fng_key=other, partner_key="")
            + "\n"
        )
        assert problems(text) == [(3, "school 123/4567 has a different name, currency on line 2")]

    def test_two_databases_of_one_school_are_two_rows(self) -> None:
        other = "16fd2706-8baf-433b-82eb-8c7fada847da"
        rows = parse_school_rows(
            f"{HEADER}\n{line()}\n{line(database='Trips', fng_key=other, partner_key='')}\n"
        )
        assert [(row.school, row.database) for row in rows] == [
            (("123", "4567"), "Public funds"),
            (("123", "4567"), "Trips"),
        ]


class TestProgressBar:
    def test_draws_on_one_line_and_ends_it(self) -> None:
        stream = io.StringIO()
        bar = cli_bulk.ProgressBar(stream, width=10)
        for done in range(1, 5):
            bar("validating", done, 4)
        for done in range(1, 5):
            bar("writing", done, 4)
        bar.close()
        drawn = stream.getvalue()
        assert drawn.startswith("\r[##        ] 1/4 validating")
        assert "\r[##        ] 1/4 writing   \r" in drawn  # over the longer line
        assert drawn.endswith("\r[##########] 4/4 writing\n")
        assert drawn.count("\n") == 1
