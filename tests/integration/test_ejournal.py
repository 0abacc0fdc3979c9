"""The E-Journal operations end to end: gateway and sandbox on loopback, raw SOAP and plain XML."""

from __future__ import annotations

import hashlib
from xml.sax.saxutils import escape

import aiohttp
import pytest

from gateway import ns
from gateway.tenancy.model import Interface
from tests.conftest import Gateway, GatewayWith, Sandbox
from tests.support import (
    BankEntry,
    Txn,
    basic,
    big_journal,
    errors_of,
    journal_xml,
    next_submission_id,
    operation,
    post_journals_body,
    sample_journal,
    soap_call,
    strip_declaration,
)


async def banks(http: aiohttp.ClientSession, gateway: Gateway) -> dict[str, dict[str, str]]:
    answer = await soap_call(
        http, gateway.soap_url, operation("GetBanks", systemIdentifier="TPPCS"), gateway.auth
    )
    return {
        bank.get("externalReference"): dict(bank.attrib)
        for bank in answer.result().iterfind("Banks/Bank")
    }


class TestGetBanks:
    async def test_banks_of_the_payment_system(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        """GetBanks answers the Banks document and isSuccess true, row versions empty at first."""
        answer = await soap_call(
            http, gateway.soap_url, operation("GetBanks", systemIdentifier="TPPCS"), gateway.auth
        )
        assert answer.status == 200
        assert answer.part("isSuccess") == "true"
        request = answer.result()
        assert request.tag == "Request"
        assert request.find("Header").get("systemIdentifier") == "TPPCS"
        assert [b.get("externalReference") for b in request.iterfind("Banks/Bank")] == [
            "BK1",
            "BK2",
            "BK3",
        ]
        assert {b.get("lastOrderRowVersion") for b in request.iterfind("Banks/Bank")} == {""}

    async def test_unknown_system_is_not_a_success(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        """A payment system the account may use but FNG does not know: isSuccess false."""
        await gateway.tenancy.grant(
            gateway.demo.account_id, gateway.demo.database_id, [], ["GHOST"]
        )
        answer = await soap_call(
            http, gateway.soap_url, operation("GetBanks", systemIdentifier="GHOST"), gateway.auth
        )
        assert answer.part("isSuccess") == "false"
        assert answer.result().find("Banks") is not None
        # The Header as FMS wrote it, fmsVersion included (empty: FNG gave none).
        header = answer.result().find("Header")
        assert header is not None and header.get("systemIdentifier") == "GHOST"
        assert header.get("fmsVersion") == ""

    async def test_system_not_granted_is_a_fault(
        self, gateway: Gateway, http: aiohttp.ClientSession, sandbox: Sandbox
    ) -> None:
        answer = await soap_call(
            http, gateway.soap_url, operation("GetBanks", systemIdentifier="OTHER"), gateway.auth
        )
        assert answer.is_fault and answer.status == 500
        assert answer.fault_string.startswith("AuthorizationException:")
        assert answer.fault_code == "NOT_PERMITTED"
        assert (await sandbox.stats())["requests"]["GetBanks"] == 0


class TestPostJournals:
    async def test_seed_sample_posts_and_row_versions_advance(
        self, gateway: Gateway, http: aiohttp.ClientSession, sandbox: Sandbox
    ) -> None:
        answer = await soap_call(
            http, gateway.soap_url, post_journals_body(sample_journal("0071")), gateway.auth
        )
        result = answer.result()
        assert (result.tag, result.get("isSuccess"), result.get("submissionID")) == (
            "JournalResult",
            "true",
            "0071",
        )
        after = await banks(http, gateway)
        assert (after["BK1"]["lastOrderRowVersion"], after["BK1"]["lastSettlementRowVersion"]) == (
            "1",
            "1",
        )
        assert (await sandbox.stats())["posted_submissions"] == 1

    async def test_a_wrong_control_total_names_the_bank_and_posts_nothing(
        self, gateway: Gateway, http: aiohttp.ClientSession, sandbox: Sandbox
    ) -> None:
        """A failed result names the bank, the value expected and the value sent; nothing posts."""
        document = journal_xml([BankEntry("BK1", control_total="5.00", orders=[Txn("1")])])
        result = (
            await soap_call(http, gateway.soap_url, post_journals_body(document), gateway.auth)
        ).result()
        assert result.get("isSuccess") == "false"
        (error,) = errors_of(result)
        assert (error["code"], error["bank"], error["sent"]) == ("CONTROL_TOTAL", "BK1", "5.00")
        assert float(error["expected"]) == 0
        assert (await sandbox.stats())["posted_submissions"] == 0

    async def test_an_unmapped_code_is_reported_with_its_transaction(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        document = journal_xml([BankEntry("BK1", orders=[Txn("1", product="NOPE")])])
        result = (
            await soap_call(http, gateway.soap_url, post_journals_body(document), gateway.auth)
        ).result()
        (error,) = errors_of(result)
        assert (error["code"], error["bank"], error["transactionId"], error["sent"]) == (
            "UNMAPPED_PRODUCT",
            "BK1",
            "1",
            "NOPE",
        )
        assert error["expected"]

    async def test_a_stale_row_version_is_reported_against_fngs(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        await soap_call(http, gateway.soap_url, post_journals_body(sample_journal()), gateway.auth)
        # Built as if nothing had been posted: the row version it sends is behind FNG's.
        stale = journal_xml([BankEntry("BK1", orders=[Txn("2")], control_total="0")])
        result = (
            await soap_call(http, gateway.soap_url, post_journals_body(stale), gateway.auth)
        ).result()
        assert result.get("isSuccess") == "false"
        error = next(e for e in errors_of(result) if e["code"] == "ROW_VERSION")
        assert (error["bank"], error["section"], error["expected"], error["sent"]) == (
            "BK1",
            "Orders",
            "2",
            "1",
        )

    async def test_local_errors_never_reach_fng(
        self, gateway: Gateway, http: aiohttp.ClientSession, sandbox: Sandbox
    ) -> None:
        document = journal_xml([BankEntry("BK1", orders=[Txn("1"), Txn("1")])], line_count=9)
        result = (
            await soap_call(http, gateway.soap_url, post_journals_body(document), gateway.auth)
        ).result()
        assert sorted(e["code"] for e in errors_of(result)) == ["DUPLICATE_ID", "LINE_COUNT"]
        assert (await sandbox.stats())["requests"]["PostJournals"] == 0

    async def test_journal_sent_as_escaped_text(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        """Clients that pass the journal as a string (escaped XML) are understood too."""
        from xml.sax.saxutils import escape

        body = operation("PostJournals", xmlData=escape(sample_journal()))
        result = (await soap_call(http, gateway.soap_url, body, gateway.auth)).result()
        assert result.get("isSuccess") == "true"

    async def test_a_journal_sent_as_text_reaches_fng_byte_for_byte(
        self, gateway_with: GatewayWith, http: aiohttp.ClientSession, sandbox: Sandbox
    ) -> None:
        """The gateway checks a journal and does not rewrite it: FNG gets what was sent (here
        with single quotes and the header's end tag written out, which a new serialization
        would change), read whole or, past the default 1 MiB, streamed."""
        gateway = await gateway_with(xml={"stream_above_bytes": 1024 * 1024})
        for journal in (
            sample_journal(next_submission_id()),
            big_journal(6000, next_submission_id(), base=1),
        ):
            # (Whitespace around the document is not part of it.)
            text = strip_declaration(journal).strip()
            text = text.replace('"', "'").replace(" />", "></Header>", 1)
            answer = await soap_call(
                http,
                gateway.soap_url,
                operation("PostJournals", xmlData=escape(text)),
                gateway.auth,
            )
            assert answer.result().get("isSuccess") == "true", answer.raw
            stats = await sandbox.stats()
            assert stats["last_journal_sha256"] == hashlib.sha256(text.encode()).hexdigest()

    async def test_a_journal_sent_as_text_in_the_service_namespace_reaches_fng_without_it(
        self, gateway_with: GatewayWith, http: aiohttp.ClientSession, sandbox: Sandbox
    ) -> None:
        gateway = await gateway_with(xml={"stream_above_bytes": 1024 * 1024})
        text = strip_declaration(sample_journal(next_submission_id())).replace(
            "<ControlAccounts>", f'<ControlAccounts xmlns="{ns.EJOURNAL}">', 1
        )
        answer = await soap_call(
            http, gateway.soap_url, operation("PostJournals", xmlData=escape(text)), gateway.auth
        )
        # FNG validates journals without a namespace: it took this one, so it got it without.
        assert answer.result().get("isSuccess") == "true", answer.raw
        assert (await sandbox.stats())["posted_submissions"] == 1

    async def test_five_thousand_lines_post_whole(
        self, gateway: Gateway, http: aiohttp.ClientSession, sandbox: Sandbox
    ) -> None:
        """A large journal is within the default limits and posts whole."""
        answer = await soap_call(
            http, gateway.soap_url, post_journals_body(big_journal(5000)), gateway.auth
        )
        assert answer.result().get("isSuccess") == "true"
        assert (await sandbox.stats())["journal_lines"] == 5000

    async def test_a_journal_larger_than_libxml2s_text_limit_posts_whole_as_text(
        self, gateway_with: GatewayWith, http: aiohttp.ClientSession, sandbox: Sandbox
    ) -> None:
        """55,000 lines escaped in xmlData: one text node over libxml2's own 10 MB cap, and
        well inside the gateway's byte limit, which is the one that holds. (The sandbox's
        FNG takes seconds to store that many lines on a busy machine: FNG is given a minute,
        not the tests' five seconds.)"""
        gateway = await gateway_with(fng={"timeout_seconds": 60.0})
        text = escape(strip_declaration(big_journal(55_000)))
        assert len(text.encode()) > 10_000_000
        answer = await soap_call(
            http, gateway.soap_url, operation("PostJournals", xmlData=text), gateway.auth
        )
        assert answer.result().get("isSuccess") == "true", answer.raw[:500]
        assert (await sandbox.stats())["journal_lines"] == 55_000

    async def test_a_missing_journal_is_a_schema_error(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        result = (
            await soap_call(http, gateway.soap_url, operation("PostJournals"), gateway.auth)
        ).result()
        assert result.get("isSuccess") == "false"
        assert errors_of(result)[0]["code"] == "SCHEMA"


class TestPostAuditMessage:
    async def test_message_is_recorded(
        self, gateway: Gateway, http: aiohttp.ClientSession, sandbox: Sandbox
    ) -> None:
        answer = await soap_call(
            http,
            gateway.soap_url,
            operation("PostAuditMessage", message="Export run 42 complete"),
            gateway.auth,
        )
        assert answer.result().get("isSuccess") == "true"
        assert (await sandbox.stats())["audit_messages"] == 1

    async def test_an_empty_message_is_refused_before_fng(
        self, gateway: Gateway, http: aiohttp.ClientSession, sandbox: Sandbox
    ) -> None:
        answer = await soap_call(
            http, gateway.soap_url, operation("PostAuditMessage", message=""), gateway.auth
        )
        assert answer.result().get("isSuccess") == "false"
        assert (await sandbox.stats())["requests"]["PostAuditMessage"] == 0


class TestFaults:
    async def test_soap12_fault_in_its_own_version(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        answer = await soap_call(
            http,
            gateway.soap_url,
            operation("GetBanks", systemIdentifier="TPPCS"),
            None,
            version="1.2",
        )
        assert answer.status == 400
        assert answer.root.tag == f"{{{ns.SOAP12_ENV}}}Envelope"
        assert answer.root.findtext(f".//{{{ns.SOAP12_ENV}}}Value") == "soap:Sender"
        assert answer.fault_string.startswith("AuthenticationException:")

    async def test_upstream_failure_is_a_receiver_fault(
        self, gateway: Gateway, http: aiohttp.ClientSession, sandbox: Sandbox
    ) -> None:
        await sandbox.faults({"target": "fng", "kind": "error", "status": 503})
        answer = await soap_call(
            http, gateway.soap_url, operation("GetBanks", systemIdentifier="TPPCS"), gateway.auth
        )
        assert answer.is_fault and answer.status == 500
        assert answer.root.findtext(".//faultcode") == "soap:Server"
        assert answer.fault_string.startswith("UpstreamException:")

    async def test_an_unknown_operation_is_a_fault(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        answer = await soap_call(http, gateway.soap_url, operation("DropTables"), gateway.auth)
        assert answer.fault_code == "UNKNOWN_OPERATION"

    async def test_must_understand_header(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        body = (
            f'<?xml version="1.0"?><soap:Envelope xmlns:soap="{ns.SOAP11_ENV}"><soap:Header>'
            '<x:Trace xmlns:x="urn:other" soap:mustUnderstand="1">1</x:Trace></soap:Header>'
            f"<soap:Body>{operation('GetBanks', systemIdentifier='TPPCS')}</soap:Body>"
            "</soap:Envelope>"
        )
        async with http.post(
            gateway.soap_url, data=body, headers={"Content-Type": "text/xml"}
        ) as response:
            text = await response.text()
        assert "soap:MustUnderstand" in text and "MUST_UNDERSTAND" in text


class TestPlainXml:
    async def test_get_banks(self, gateway: Gateway, http: aiohttp.ClientSession) -> None:
        headers = {
            "Authorization": basic(gateway.demo.username, gateway.demo.password),
            "X-School-Key": gateway.demo.database_key,
        }
        async with http.post(
            f"{gateway.url}/xml/ejournal/GetBanks?systemIdentifier=TPPCS", headers=headers
        ) as response:
            assert response.status == 200
            text = await response.text()
        assert "<tns:isSuccess>true</tns:isSuccess>" in text and 'externalReference="BK1"' in text

    async def test_post_a_bare_journal(
        self, gateway: Gateway, http: aiohttp.ClientSession, sandbox: Sandbox
    ) -> None:
        headers = {
            "Authorization": basic(gateway.demo.username, gateway.demo.password),
            "X-School-Key": gateway.demo.database_key,
            "Content-Type": "application/xml",
        }
        async with http.post(
            f"{gateway.url}/xml/ejournal/PostJournals", data=sample_journal(), headers=headers
        ) as response:
            text = await response.text()
        assert 'isSuccess="true"' in text
        assert (await sandbox.stats())["posted_submissions"] == 1

    @pytest.mark.parametrize("password", ["wrong", None])
    async def test_refusal_is_a_problem_document(
        self, gateway: Gateway, http: aiohttp.ClientSession, password: str | None
    ) -> None:
        headers = {"X-School-Key": gateway.demo.database_key}
        if password is not None:
            headers["Authorization"] = basic(gateway.demo.username, password)
        async with http.post(
            f"{gateway.url}/xml/ejournal/GetBanks?systemIdentifier=TPPCS", headers=headers
        ) as response:
            assert response.status == 401
            assert response.content_type == "application/problem+xml"
            assert "WWW-Authenticate" in response.headers
            text = await response.text()
        assert "AUTHENTICATION_FAILED" in text and "AuthenticationException:" in text


class TestGrants:
    async def test_an_interface_not_granted_is_refused_like_a_stranger(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        """An account granted only another interface of the database is refused like a stranger."""
        account = await gateway.tenancy.add_account("budget-only")
        await gateway.tenancy.grant(
            account.account_id, gateway.demo.database_id, [Interface.BUDGET], ["TPPCS"]
        )
        from tests.support import Auth

        answer = await soap_call(
            http,
            gateway.soap_url,
            operation("GetBanks", systemIdentifier="TPPCS"),
            Auth("budget-only", account.password, gateway.demo.database_key),
        )
        assert answer.fault_code == "AUTHENTICATION_FAILED"
