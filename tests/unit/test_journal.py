"""The journal rules the gateway applies without FNG, and what makes two submissions the same."""

from __future__ import annotations

import json

from gateway.ejournal.journal import read_journal
from gateway.xmlsafe import Limits, SchemaRegistry, parse, shipped_schemas_dir
from tests.support import BankEntry, Txn, journal_xml, sample_journal

LIMITS = Limits(max_bytes=10**7, max_depth=64, max_elements=10**6, max_attributes=10**7)
SCHEMAS = SchemaRegistry(shipped_schemas_dir(), ["ejournal/ControlAccounts.xsd"])


def read(document: str):  # type: ignore[no-untyped-def]
    """The journal when nothing is wrong with it (else None), and what is wrong."""
    reading = read_journal(parse(document.encode(), LIMITS), SCHEMAS)
    return reading.accepted, reading.errors


def codes(document: str) -> list[str]:
    journal, errors = read(document)
    assert journal is None
    return [error.code for error in errors]


class TestLocalRules:
    def test_seed_sample_passes(self) -> None:
        journal, errors = read(sample_journal("0071"))
        assert errors == [] and journal is not None
        assert (journal.system_identifier, journal.submission_id, journal.lines) == (
            "TPPCS",
            "0071",
            2,
        )

    def test_line_count_must_match(self) -> None:
        journal, errors = read(sample_journal(line_count=3))
        assert journal is None
        assert [(e.code, e.expected, e.sent) for e in errors] == [("LINE_COUNT", "2", "3")]

    def test_ids_must_be_unique_per_section(self) -> None:
        document = journal_xml(
            [BankEntry("BK1", orders=[Txn("1"), Txn("1")], settlements=[Txn("1")])]
        )
        _, errors = read(document)
        assert [(e.code, e.bank, e.section, e.transaction_id) for e in errors] == [
            ("DUPLICATE_ID", "BK1", "Orders", "1")
        ]

    def test_same_id_in_different_sections_is_fine(self) -> None:
        assert read(sample_journal())[1] == []

    def test_row_version_below_the_count(self) -> None:
        document = journal_xml(
            [BankEntry("BK1", orders=[Txn("1"), Txn("2")], row_versions={"Orders": "1"})]
        )
        _, errors = read(document)
        assert [(e.code, e.section, e.expected, e.sent) for e in errors] == [
            ("ROW_VERSION", "Orders", "at least 2", "1")
        ]

    def test_a_row_version_that_is_not_a_number_is_refused(self) -> None:
        document = journal_xml([BankEntry("BK1", orders=[Txn("1")], row_versions={"Orders": "x"})])
        assert codes(document) == ["ROW_VERSION"]

    def test_a_bank_twice_is_a_duplicate(self) -> None:
        document = journal_xml(
            [BankEntry("BK1", orders=[Txn("1")]), BankEntry("BK1", orders=[Txn("2")])]
        )
        assert "DUPLICATE_BANK" in codes(document)

    def test_amounts_and_dates_out_of_range_are_schema_errors(self) -> None:
        document = sample_journal().replace(
            'grossAmount="9.000000" grossCharges', 'grossAmount="-1" grossCharges'
        )
        document = document.replace("2015-04-30T13:59:32.8791584+01:00", "1899-12-31T23:00:00", 1)
        assert set(codes(document)) == {"SCHEMA"}
        assert len(codes(document)) == 2

    def test_every_error_is_listed(self) -> None:
        document = journal_xml(
            [BankEntry("BK1", orders=[Txn("1"), Txn("1")], row_versions={"Orders": "1"})],
            line_count=5,
        )
        assert sorted(codes(document)) == ["DUPLICATE_ID", "LINE_COUNT", "ROW_VERSION"]

    def test_namespace_leaked_from_the_envelope_is_tolerated(self) -> None:
        document = sample_journal().replace(
            "<ControlAccounts>", '<ControlAccounts xmlns="urn:fng-gateway:ejournal">'
        )
        journal, errors = read(document)
        assert errors == [] and journal is not None


class TestSameSubmission:
    def test_volatile_header_attributes_do_not_count(self) -> None:
        """A client that rebuilds the document to retry (new time, reformatted) still matches."""
        first, _ = read(sample_journal("1", response_time="2015-04-30T13:59:49"))
        second, _ = read(
            sample_journal("1", response_time="2015-05-01T09:00:00").replace("\n", "\n   ")
        )
        assert first is not None and second is not None
        assert first.payload_hash() == second.payload_hash()

    def test_content_counts(self) -> None:
        first, _ = read(sample_journal("1"))
        changed, _ = read(
            sample_journal("1").replace('grossAmount="9.000000"', 'grossAmount="9.500000"', 1)
        )
        other_id, _ = read(sample_journal("2"))
        assert first is not None and changed is not None and other_id is not None
        assert len({first.payload_hash(), changed.payload_hash(), other_id.payload_hash()}) == 3

    def test_expectations_name_each_section_with_lines(self) -> None:
        journal, _ = read(
            journal_xml(
                [
                    BankEntry("BK1", orders=[Txn("1")], settlements=[], base={"Orders": 4}),
                    BankEntry("BK2"),
                ]
            )
        )
        assert journal is not None
        assert json.loads(journal.expectations()) == {"BK1": {"Orders": 5}}
