"""Hardened parsing: what it refuses before anything else sees the document."""

from __future__ import annotations

import pytest
from lxml import etree

from gateway.errors import PayloadTooLarge, XmlRejected
from gateway.xmlsafe import Limits, SchemaRegistry, parse, parse_text, shipped_schemas_dir
from tests.support import sample_journal

LIMITS = Limits(max_bytes=100_000, max_depth=32, max_elements=1_000, max_attributes=2_000)


class TestRefusals:
    def test_an_entity_expansion_bomb_is_refused(self) -> None:
        """A billion-laughs document is refused for its DTD, before any expansion."""
        bomb = (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            + b"".join(
                f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
                for i in range(1, 10)
            )
            + b"]><lolz>&lol9;</lolz>"
        )
        with pytest.raises(XmlRejected, match="document type declarations"):
            parse(bomb, LIMITS)

    def test_an_external_entity_is_refused(self) -> None:
        """An entity naming a local file is refused."""
        with pytest.raises(XmlRejected, match="document type declarations"):
            parse(b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>', LIMITS)

    def test_an_external_dtd_is_refused(self) -> None:
        """A DOCTYPE naming a DTD on the network is refused."""
        with pytest.raises(XmlRejected, match="document type declarations"):
            parse(b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><r/>', LIMITS)

    def test_deep_nesting_beyond_the_limit(self) -> None:
        """Nesting one level past max_depth is refused."""
        deep = b"<a>" * 33 + b"</a>" * 33
        with pytest.raises(XmlRejected, match="deeper than 32"):
            parse(deep, LIMITS)
        parse(b"<a>" * 32 + b"</a>" * 32, LIMITS)

    def test_very_deep_nesting_is_refused(self) -> None:
        """A document 100,000 levels deep is refused without exhausting anything."""
        deep = b"<a>" * 100_000 + b"</a>" * 100_000
        limits = Limits(max_bytes=10**7, max_depth=64, max_elements=10**6, max_attributes=10)
        with pytest.raises(XmlRejected):
            parse(deep, limits)

    def test_a_document_too_large_is_refused(self) -> None:
        with pytest.raises(PayloadTooLarge):
            parse(b"<a>" + b"x" * 100_001 + b"</a>", LIMITS)

    def test_too_many_elements_are_refused(self) -> None:
        with pytest.raises(XmlRejected, match="more than 1000 elements"):
            parse(b"<r>" + b"<a/>" * 1_001 + b"</r>", LIMITS)

    def test_too_many_attributes_are_refused(self) -> None:
        attributes = " ".join(f'a{i}="1"' for i in range(2_001))
        with pytest.raises(XmlRejected, match="attributes"):
            parse(f"<r {attributes}/>".encode(), LIMITS)

    def test_a_document_not_well_formed_is_refused(self) -> None:
        with pytest.raises(XmlRejected, match="not well-formed"):
            parse(b"<a><b></a>", LIMITS)

    def test_invalid_utf8_is_refused(self) -> None:
        with pytest.raises(XmlRejected):
            parse(b'<?xml version="1.0" encoding="utf-8"?><r>\xff\xfe</r>', LIMITS)

    def test_utf16_declared_over_ascii_bytes_is_refused(self) -> None:
        with pytest.raises(XmlRejected, match="UTF-16"):
            parse(b'<?xml version="1.0" encoding="utf-16"?><r/>', LIMITS)

    def test_an_unknown_encoding_is_refused(self) -> None:
        with pytest.raises(XmlRejected, match="not accepted"):
            parse(b'<?xml version="1.0" encoding="ebcdic-cp-us"?><r/>', LIMITS)

    def test_xinclude_is_not_processed(self) -> None:
        """An XInclude stays an inert element: nothing is fetched or read."""
        root = parse(
            b'<r xmlns:xi="http://www.w3.org/2001/XInclude">'
            b'<xi:include href="file:///etc/passwd" parse="text"/></r>',
            LIMITS,
        )
        assert b"root:" not in etree.tostring(root)


class TestAccepted:
    def test_utf16_with_a_bom_is_read(self) -> None:
        root = parse('<?xml version="1.0" encoding="utf-16"?><r>é</r>'.encode("utf-16"), LIMITS)
        assert root.text == "é"

    def test_a_utf8_bom_is_skipped(self) -> None:
        assert parse(b"\xef\xbb\xbf<r>x</r>", LIMITS).text == "x"

    def test_latin1_is_read(self) -> None:
        assert parse(b'<?xml version="1.0" encoding="iso-8859-1"?><r>\xe9</r>', LIMITS).text == "é"

    def test_escaped_text_with_declaration(self) -> None:
        """A document sent as a string keeps working even with an encoding declaration."""
        root = parse_text('<?xml version="1.0" encoding="iso-8859-1"?><r>é</r>', LIMITS)
        assert root.text == "é"


class TestSchemas:
    registry = SchemaRegistry(
        shipped_schemas_dir(),
        ["ejournal/ControlAccounts.xsd", "ejournal/Banks.xsd", "ejournal/Results.xsd"],
    )

    def test_seed_sample_validates(self) -> None:
        root = parse(sample_journal().encode(), LIMITS)
        assert self.registry.issues("ejournal/ControlAccounts.xsd", root) == []

    def test_newer_form_validates(self) -> None:
        """Reversal sections, surcharges, BACS attributes, GUID ids and an empty sourceVersion."""
        document = b"""<ControlAccounts>
          <Header requestedBy="u" responseDateTime="2024-01-02T03:04:05" systemIdentifier="TPPCS"
                  description="" submissionID="8d3c2b1a-0000-4000-8000-000000000001" source="S"
                  sourceVersion="" transactionLineCount="4"/>
          <Banks><Bank reference="BK1" controlTotal="10.50">
            <Orders lastRowVersion="3">
              <Txn id="4e7a1c2e-1111-4111-8111-111111111111" productReference="LUNCH"
                   description="d" date="2024-01-02T03:04:05" grossAmount="2.00" vat="0"
                   vatReference="VAT0" externalReference="X1" grossSurcharge="0.20"
                   surchargeReference="CHARGE30" surchargeVat="0.04"
                   surchargeVatReference="CHARGEVAT0"/>
            </Orders>
            <SettlementReversals lastRowVersion="1">
              <Txn id="r1" description="d" date="2024-01-02T03:04:05" grossAmount="1.00"
                   grossCharges="0" chargesReference="CHARGE30" chargesVat="0"
                   chargesVatReference="CHARGEVAT0" bacsReference="B1" bacsDescription="BACS"
                   fileDescription="F" externalReference="E" grossSurcharge="0"/>
            </SettlementReversals>
            <OrderReversals lastRowVersion="1">
              <Txn id="o1" productReference="LUNCH" description="d" date="2024-01-02T03:04:05"
                   grossAmount="2.00" vat="0" vatReference="VAT0"/>
            </OrderReversals>
            <Settlements lastRowVersion="2">
              <Txn id="s1" description="d" date="2024-01-02T03:04:05" grossAmount="1.00"
                   grossCharges="0" chargesReference="CHARGE30" chargesVat="0"
                   chargesVatReference="CHARGEVAT0"/>
            </Settlements>
          </Bank></Banks></ControlAccounts>"""
        assert self.registry.issues("ejournal/ControlAccounts.xsd", parse(document, LIMITS)) == []

    def test_out_of_range_values_are_reported(self) -> None:
        document = sample_journal().replace(
            'grossAmount="9.000000" vat=', 'grossAmount="0.001" vat='
        )
        document = document.replace("2015-04-30T13:59:49", "2080-01-01T00:00:00")
        issues = self.registry.issues(
            "ejournal/ControlAccounts.xsd", parse(document.encode(), LIMITS)
        )
        text = " ".join(issue.message for issue in issues)
        assert "grossAmount" in text and "responseDateTime" in text
