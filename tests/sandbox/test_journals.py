"""FNG's journal interface: GetBanks, PostJournals with FMS's rules, PostAuditMessage."""

from __future__ import annotations

import asyncio

import pytest
from lxml import etree

from gateway.xmlsafe import SchemaRegistry
from tests.sandbox.conftest import FNG, Sandbox, errors_of
from tests.sandbox.journals import (
    FMS_SAMPLE_JOURNAL,
    bank,
    control_accounts,
    order,
    sample,
    settlement,
)

EMPTY = {
    "lastOrderRowVersion": "",
    "lastSettlementRowVersion": "",
    "lastOrderReversalRowVersion": "",
    "lastSettlementReversalRowVersion": "",
}


async def _assert_nothing_posted(sandbox: Sandbox) -> None:
    assert await sandbox.control("GET", "/journals") == []
    assert await sandbox.row_versions() == {"BK1": EMPTY, "BK2": EMPTY, "BK3": EMPTY}


class TestGetBanks:
    async def test_the_demo_has_three_banks_with_nothing_posted(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """The demo's three banks, nothing posted yet, in a document valid against Banks.xsd."""
        response = await sandbox.get_banks()
        assert response.status == 200
        assert response.content_type == "application/xml"
        root = etree.fromstring(await response.read())
        assert schemas.issues("ejournal/Banks.xsd", root) == []
        header = root.find("Header")
        assert header is not None
        assert header.get("systemIdentifier") == "TPPCS"
        assert await sandbox.row_versions() == {"BK1": EMPTY, "BK2": EMPTY, "BK3": EMPTY}

    async def test_unknown_system(self, sandbox: Sandbox) -> None:
        """A payment system that is not set up in the database is 404 problem+json."""
        response = await sandbox.get_banks(system="NOPE")
        assert response.status == 404
        assert response.content_type == "application/problem+json"

    async def test_system_identifier_is_required(self, sandbox: Sandbox) -> None:
        """GetBanks without systemIdentifier is 400."""
        token = await sandbox.token()
        response = await sandbox.client.get(f"{FNG}/GetBanks", headers=sandbox.headers(token))
        assert response.status == 400


@pytest.mark.parametrize("state", ["memory", "file"], indirect=True)
class TestPosting:
    async def test_fms_sample_posts(self, sandbox: Sandbox, schemas: SchemaRegistry) -> None:
        """FMS's published sample journal posts unchanged against the empty demo."""
        result = await sandbox.post_journal(FMS_SAMPLE_JOURNAL)
        assert schemas.issues("ejournal/Results.xsd", result) == []
        assert result.tag == "JournalResult"
        assert {str(k): str(v) for k, v in result.attrib.items()} == {
            "isSuccess": "true",
            "systemIdentifier": "TPPCS",
            "submissionID": "0071",
            "transactionLineCount": "2",
        }

    async def test_row_versions_advance(self, sandbox: Sandbox) -> None:
        """After the sample, BK1's order and settlement row versions are 1; others stay empty."""
        await sandbox.post_journal(FMS_SAMPLE_JOURNAL)
        versions = await sandbox.row_versions()
        assert versions["BK1"] == {
            **EMPTY,
            "lastOrderRowVersion": "1",
            "lastSettlementRowVersion": "1",
        }
        assert versions["BK2"] == versions["BK3"] == EMPTY

    async def test_next_journal_continues(self, sandbox: Sandbox) -> None:
        """A second journal continues from the reported row versions and the bank's net."""
        await sandbox.post_journal(FMS_SAMPLE_JOURNAL)
        second = control_accounts(
            bank("BK1", "0.00", Orders=("3", [order("2", gross="5"), order("3", gross="2.50")])),
            submission_id="0072",
        )
        assert (await sandbox.post_journal(second)).get("isSuccess") == "true"
        third = control_accounts(
            bank("BK1", "7.5", Settlements=("2", [settlement("2", gross="7.50")])),
            submission_id="0073",
        )
        assert (await sandbox.post_journal(third)).get("isSuccess") == "true"
        versions = await sandbox.row_versions()
        assert versions["BK1"]["lastOrderRowVersion"] == "3"
        assert versions["BK1"]["lastSettlementRowVersion"] == "2"

    async def test_reversals_have_their_own_row_versions(self, sandbox: Sandbox) -> None:
        """Reversal sections count separately and move the net the other way."""
        steps = [
            bank("BK2", "0", Orders=("1", [order(gross="10")])),
            bank("BK2", "10", OrderReversals=("1", [order(gross="4")])),
            bank("BK2", "6.00", SettlementReversals=("1", [settlement(gross="1")])),
            bank("BK2", "7", Settlements=("1", [settlement(gross="7")])),
        ]
        for number, step in enumerate(steps):
            result = await sandbox.post_journal(control_accounts(step, submission_id=f"R{number}"))
            assert result.get("isSuccess") == "true", errors_of(result)
        assert (await sandbox.row_versions())["BK2"] == {
            "lastOrderRowVersion": "1",
            "lastSettlementRowVersion": "1",
            "lastOrderReversalRowVersion": "1",
            "lastSettlementReversalRowVersion": "1",
        }
        check = control_accounts(bank("BK2", "0.1"), submission_id="R9")
        (error,) = errors_of(await sandbox.post_journal(check))
        assert error["code"] == "CONTROL_TOTAL"
        assert (error["expected"], error["sent"]) == ("0.00", "0.10")

    async def test_newer_form_with_guids_and_surcharges(self, sandbox: Sandbox) -> None:
        """GUID ids, surcharges and settlement references of newer clients post."""
        journal = control_accounts(
            bank(
                "BK3",
                "0",
                Orders=(
                    "1",
                    [
                        order(
                            "3f2c1a9e-5b4d-4c7e-9a21-0d6b8e1f2a3c",
                            product="LUNCH",
                            gross="2.300000",
                            vat="0",
                            vat_ref="VAT0",
                            grossSurcharge="0.10",
                            surchargeReference="SURCHARGE",
                            surchargeVat="0",
                            surchargeVatReference="SURCHARGEVAT0",
                        )
                    ],
                ),
                Settlements=("1", [settlement("s-1", gross="2.3", bacsReference="B1")]),
            ),
            submission_id="c0ffee00-0000-4000-8000-000000000001",
        )
        result = await sandbox.post_journal(journal)
        assert result.get("isSuccess") == "true", errors_of(result)

    async def test_posted_journal_is_listed(self, sandbox: Sandbox) -> None:
        """The control API lists the posted submission with its lines."""
        await sandbox.post_journal(FMS_SAMPLE_JOURNAL)
        (journal,) = await sandbox.control("GET", "/journals")
        assert journal["database_id"] == sandbox.demo.database_id
        assert journal["system_identifier"] == "TPPCS"
        assert journal["submission_id"] == "0071"
        assert journal["posted_at"]
        lines = [(ln["bank"], ln["section"], ln["id"], ln["code"]) for ln in journal["lines"]]
        assert lines == [("BK1", "Orders", "1", "WATBTL1"), ("BK1", "Settlements", "1", "CHARGE30")]
        assert journal["lines"][0]["gross_amount"] == "9.000000"
        assert journal["lines"][0]["vat_code"] == "VAT20"


class TestRules:
    async def _single_error(self, sandbox: Sandbox, body: bytes) -> dict[str, str]:
        result = await sandbox.post_journal(body)
        assert result.get("isSuccess") == "false"
        (error,) = errors_of(result)
        await _assert_nothing_posted(sandbox)
        return error

    async def test_a_wrong_control_total_is_reported(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """A control total other than the bank's net is CONTROL_TOTAL, expected vs sent."""
        result = await sandbox.post_journal(sample(control_total="5"))
        assert schemas.issues("ejournal/Results.xsd", result) == []
        assert result.get("systemIdentifier") == "TPPCS"
        assert result.get("submissionID") == "0071"
        (error,) = errors_of(result)
        assert error["code"] == "CONTROL_TOTAL"
        assert error["bank"] == "BK1"
        assert (error["expected"], error["sent"]) == ("0.00", "5.00")
        assert "0.00" in error["text"]
        await _assert_nothing_posted(sandbox)

    async def test_a_sections_row_version_must_follow_the_last_one(self, sandbox: Sandbox) -> None:
        """A section's lastRowVersion must be the last one plus its transactions."""
        error = await self._single_error(sandbox, sample(orders_version="2"))
        assert error["code"] == "ROW_VERSION"
        assert (error["bank"], error["section"]) == ("BK1", "Orders")
        assert (error["expected"], error["sent"]) == ("1", "2")

    async def test_line_count(self, sandbox: Sandbox) -> None:
        """transactionLineCount must count every transaction."""
        body = control_accounts(
            bank("BK1", Orders=("1", [order()]), Settlements=("1", [settlement()])),
            line_count=3,
        )
        error = await self._single_error(sandbox, body)
        assert error["code"] == "LINE_COUNT"
        assert (error["expected"], error["sent"]) == ("2", "3")

    async def test_an_unmapped_bank_is_reported(self, sandbox: Sandbox) -> None:
        """A bank not mapped for the payment system is UNMAPPED_BANK."""
        error = await self._single_error(sandbox, control_accounts(bank("BK9")))
        assert error["code"] == "UNMAPPED_BANK"
        assert error["bank"] == "BK9"
        assert error["sent"] == "BK9"
        assert "bank code mapped for TPPCS" in error["expected"]

    @pytest.mark.parametrize(
        ("code", "section", "txn", "sent"),
        [
            ("UNMAPPED_PRODUCT", "Orders", order(product="NOPE"), "NOPE"),
            ("UNMAPPED_VAT", "Orders", order(vat_ref="VAT99"), "VAT99"),
            ("UNMAPPED_CHARGE", "Settlements", settlement(charges_ref="CH9"), "CH9"),
            ("UNMAPPED_CHARGE_VAT", "Settlements", settlement(charges_vat_ref="CV9"), "CV9"),
            (
                "UNMAPPED_SURCHARGE",
                "Orders",
                order(grossSurcharge="0.20", surchargeReference="SC9"),
                "SC9",
            ),
            (
                "UNMAPPED_SURCHARGE_VAT",
                "Orders",
                order(surchargeVat="0.04", surchargeVatReference="SV9"),
                "SV9",
            ),
            ("UNMAPPED_SURCHARGE", "Orders", order(grossSurcharge="0.20"), ""),
        ],
    )
    async def test_every_code_must_be_mapped(
        self, sandbox: Sandbox, code: str, section: str, txn: str, sent: str
    ) -> None:
        """Each product, VAT, charge and surcharge code must be mapped for the payment system."""
        error = await self._single_error(
            sandbox, control_accounts(bank("BK1", **{section: ("1", [txn])}))
        )
        assert error["code"] == code
        assert (error["bank"], error["section"], error["transactionId"]) == ("BK1", section, "1")
        assert error["sent"] == sent
        assert "mapped for TPPCS" in error["expected"]

    async def test_unknown_system(self, sandbox: Sandbox) -> None:
        """A journal for a payment system not set up in the database is UNKNOWN_SYSTEM."""
        error = await self._single_error(sandbox, control_accounts(bank("BK1"), system="OTHER"))
        assert (error["code"], error["sent"]) == ("UNKNOWN_SYSTEM", "OTHER")

    async def test_a_submission_posted_before_is_a_duplicate(self, sandbox: Sandbox) -> None:
        """A submission id already posted is DUPLICATE_SUBMISSION, even if otherwise valid."""
        await sandbox.post_journal(FMS_SAMPLE_JOURNAL)
        again = control_accounts(bank("BK2", Orders=("1", [order()])), submission_id="0071")
        (error,) = errors_of(await sandbox.post_journal(again))
        assert error["code"] == "DUPLICATE_SUBMISSION"
        assert (await sandbox.row_versions())["BK2"] == EMPTY

    async def test_every_error_is_reported(self, sandbox: Sandbox) -> None:
        """All broken rules come back together, in document order."""
        body = control_accounts(
            bank(
                "BK1",
                "1",
                Orders=("5", [order(product="NOPE", vat_ref="VAT99")]),
                Settlements=("1", [settlement(charges_ref="CH9")]),
            ),
            bank("BK9"),
            line_count=7,
        )
        result = await sandbox.post_journal(body)
        assert [e["code"] for e in errors_of(result)] == [
            "LINE_COUNT",
            "CONTROL_TOTAL",
            "ROW_VERSION",
            "UNMAPPED_PRODUCT",
            "UNMAPPED_VAT",
            "UNMAPPED_CHARGE",
            "UNMAPPED_BANK",
        ]
        await _assert_nothing_posted(sandbox)

    async def test_a_journal_breaking_the_schema_posts_nothing(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """A document that breaks ControlAccounts.xsd gets SCHEMA errors and posts nothing."""
        body = FMS_SAMPLE_JOURNAL.replace(b'grossAmount="9.000000" vat=', b'grossAmount="0" vat=')
        result = await sandbox.post_journal(body)
        assert schemas.issues("ejournal/Results.xsd", result) == []
        assert result.get("isSuccess") == "false"
        assert result.get("submissionID") == "0071"
        errors = errors_of(result)
        assert errors
        assert {e["code"] for e in errors} == {"SCHEMA"}
        assert "grossAmount" in errors[0]["text"]
        await _assert_nothing_posted(sandbox)

    async def test_wrong_root_is_a_schema_error(self, sandbox: Sandbox) -> None:
        """Another document entirely is answered with a SCHEMA error."""
        result = await sandbox.post_journal(b"<Banks/>")
        assert [e["code"] for e in errors_of(result)] == ["SCHEMA"]

    async def test_a_body_that_is_not_xml_is_400(self, sandbox: Sandbox) -> None:
        """A body that is not XML is 400 problem+json."""
        response = await sandbox.post(b"<ControlAccounts><Header")
        assert response.status == 400
        assert response.content_type == "application/problem+json"

    async def test_doctype_is_refused(self, sandbox: Sandbox) -> None:
        """A DTD never reaches the parser: 400."""
        body = b'<!DOCTYPE x [<!ENTITY e "boom">]><ControlAccounts>&e;</ControlAccounts>'
        assert (await sandbox.post(body)).status == 400

    async def test_xml_content_type_is_required(self, sandbox: Sandbox) -> None:
        """A journal sent as text/plain is 415."""
        headers = {**sandbox.headers(await sandbox.token()), "Content-Type": "text/plain"}
        response = await sandbox.client.post(
            f"{FNG}/PostJournals", data=FMS_SAMPLE_JOURNAL, headers=headers
        )
        assert response.status == 415


@pytest.mark.parametrize("state", ["memory", "file"], indirect=True)
class TestConcurrency:
    async def test_identical_posts_post_once(self, sandbox: Sandbox) -> None:
        """Eight identical journals posted at once: exactly one is posted."""
        token = await sandbox.token()
        results = await asyncio.gather(
            *(sandbox.post_journal(FMS_SAMPLE_JOURNAL, token) for _ in range(8))
        )
        outcomes = sorted(str(r.get("isSuccess")) for r in results)
        assert outcomes == ["false"] * 7 + ["true"]
        for result in results:
            if result.get("isSuccess") == "false":
                assert "DUPLICATE_SUBMISSION" in [e["code"] for e in errors_of(result)]
        assert len(await sandbox.control("GET", "/journals")) == 1
        assert (await sandbox.control("GET", "/stats"))["posted_submissions"] == 1

    async def test_competing_row_versions_post_once(self, sandbox: Sandbox) -> None:
        """Two different journals claiming the same row versions: only one is posted."""
        token = await sandbox.token()
        results = await asyncio.gather(
            sandbox.post_journal(sample(submission_id="A"), token),
            sandbox.post_journal(sample(submission_id="B"), token),
        )
        assert sorted(str(r.get("isSuccess")) for r in results) == ["false", "true"]
        (loser,) = [r for r in results if r.get("isSuccess") == "false"]
        assert {e["code"] for e in errors_of(loser)} == {"ROW_VERSION"}


class TestAuditMessages:
    async def _post(self, sandbox: Sandbox, body: bytes) -> tuple[int, bytes]:
        headers = {**sandbox.headers(await sandbox.token()), "Content-Type": "application/xml"}
        response = await sandbox.client.post(f"{FNG}/PostAuditMessage", data=body, headers=headers)
        return response.status, await response.read()

    async def test_message_is_stored(self, sandbox: Sandbox, schemas: SchemaRegistry) -> None:
        """An audit message is answered AuditResult isSuccess=true and kept with its database."""
        status, body = await self._post(
            sandbox, b"<AuditMessage>Journal 0071 sent by Test Harness</AuditMessage>"
        )
        assert status == 200
        result = etree.fromstring(body)
        assert schemas.issues("ejournal/Results.xsd", result) == []
        assert result.get("isSuccess") == "true"
        (message,) = await sandbox.control("GET", "/audit-messages")
        assert message["message"] == "Journal 0071 sent by Test Harness"
        assert message["database_id"] == sandbox.demo.database_id
        assert message["received_at"]

    async def test_a_message_too_long_is_refused(self, sandbox: Sandbox) -> None:
        """More than 4000 characters is refused with an error and not stored."""
        status, body = await self._post(
            sandbox, b"<AuditMessage>" + b"x" * 4001 + b"</AuditMessage>"
        )
        assert status == 200
        result = etree.fromstring(body)
        assert result.get("isSuccess") == "false"
        (error,) = errors_of(result)
        assert error["code"] == "MESSAGE_TOO_LONG"
        assert await sandbox.control("GET", "/audit-messages") == []

    async def test_four_thousand_characters_fit(self, sandbox: Sandbox) -> None:
        """Exactly 4000 characters (not bytes) is accepted."""
        text = "é" * 4000
        status, body = await self._post(sandbox, f"<AuditMessage>{text}</AuditMessage>".encode())
        assert status == 200
        assert etree.fromstring(body).get("isSuccess") == "true"

    async def test_other_document_is_refused(self, sandbox: Sandbox) -> None:
        """A body that is not an AuditMessage document is 400."""
        status, _ = await self._post(sandbox, b"<AuditMessage><b>x</b></AuditMessage>")
        assert status == 400
