"""What the E-Journal service tells an integrator: every problem in one answer, results that
say what they answer and whether they are replays, faults that say what to do, logs that let
an operator help, and the request shapes of clients other than zeep."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import aiohttp
import pytest

from gateway import ns
from tests.conftest import Gateway, Sandbox
from tests.support import (
    Auth,
    BankEntry,
    Txn,
    errors_of,
    journal_xml,
    operation,
    post_journals_body,
    sample_journal,
    soap_call,
    strip_declaration,
)

EXAMPLES = Path(__file__).parents[2] / "examples"


class TestEveryProblemInOneAnswer:
    async def test_local_and_fng_problems_are_listed_together(
        self, gateway: Gateway, http: aiohttp.ClientSession, sandbox: Sandbox
    ) -> None:
        """A wrong line count, a bank the payment system has not mapped and a row version
        behind FNG's come back in the one answer, and nothing is posted."""
        first = await soap_call(
            http, gateway.soap_url, post_journals_body(sample_journal("1")), gateway.auth
        )
        assert first.result().get("isSuccess") == "true"
        journal = journal_xml(
            [
                BankEntry("BK1", orders=[Txn("2")]),  # built as if nothing had been posted
                BankEntry("BK9", settlements=[Txn("1")]),
            ],
            submission_id="2",
            line_count=5,
        )
        answer = await soap_call(http, gateway.soap_url, post_journals_body(journal), gateway.auth)
        result = answer.result()
        assert result.get("isSuccess") == "false"
        found = {
            (e["code"], e.get("bank"), e.get("expected"), e.get("sent")) for e in errors_of(result)
        }
        assert found == {
            ("LINE_COUNT", None, "2", "5"),
            ("UNMAPPED_BANK", "BK9", "a bank mapped for TPPCS: BK1, BK2, BK3", "BK9"),
            ("ROW_VERSION", "BK1", "2", "1"),
        }
        stats = await sandbox.stats()
        assert (stats["posted_submissions"], stats["requests"]["PostJournals"]) == (1, 1)

    async def test_an_unknown_payment_system_is_named_with_the_rest(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        """A payment system FNG does not know is reported beside the gateway's own findings."""
        await gateway.tenancy.grant(
            gateway.demo.account_id, gateway.demo.database_id, [], ["GHOST"]
        )
        journal = sample_journal("3", system="GHOST", line_count=1)
        result = (
            await soap_call(http, gateway.soap_url, post_journals_body(journal), gateway.auth)
        ).result()
        assert sorted(e["code"] for e in errors_of(result)) == ["LINE_COUNT", "UNKNOWN_SYSTEM"]

    async def test_fng_unreachable_still_answers_the_local_problems(
        self, gateway: Gateway, http: aiohttp.ClientSession, sandbox: Sandbox
    ) -> None:
        """When FNG cannot be asked, the caller still gets the gateway's findings, not a fault."""
        await sandbox.faults({"target": "fng", "kind": "error", "status": 503})
        journal = sample_journal("4", line_count=7)
        result = (
            await soap_call(http, gateway.soap_url, post_journals_body(journal), gateway.auth)
        ).result()
        assert [e["code"] for e in errors_of(result)] == ["LINE_COUNT"]


class TestResultsSayWhatTheyAnswer:
    @pytest.mark.parametrize(
        ("journal", "code"),
        [
            (sample_journal("0071", line_count=3), "LINE_COUNT"),
            (sample_journal("0071").replace('grossAmount="9.000000"', 'grossAmount="x"'), "SCHEMA"),
        ],
        ids=["rule", "schema"],
    )
    async def test_the_gateways_own_refusals_carry_the_submission(
        self, gateway: Gateway, http: aiohttp.ClientSession, journal: str, code: str
    ) -> None:
        result = (
            await soap_call(http, gateway.soap_url, post_journals_body(journal), gateway.auth)
        ).result()
        assert (result.get("isSuccess"), result.get("systemIdentifier")) == ("false", "TPPCS")
        assert result.get("submissionID") == "0071"
        assert code in {e["code"] for e in errors_of(result)}

    async def test_a_replay_says_so(
        self, gateway: Gateway, http: aiohttp.ClientSession, sandbox: Sandbox
    ) -> None:
        """The first answer is a post; the same submission again is answered from the ledger,
        still a success, marked replayed; FNG holds it once."""
        first = (
            await soap_call(
                http, gateway.soap_url, post_journals_body(sample_journal("0071")), gateway.auth
            )
        ).result()
        again = (
            await soap_call(
                http,
                gateway.soap_url,
                post_journals_body(sample_journal("0071")),
                gateway.auth,
                version="1.2",
            )
        ).result()
        assert (first.get("isSuccess"), first.get("replayed")) == ("true", None)
        assert (again.get("isSuccess"), again.get("replayed")) == ("true", "true")
        assert again.get("submissionID") == "0071"
        assert (await sandbox.stats())["posted_submissions"] == 1

    async def test_a_lost_answer_says_what_to_do_and_the_retry_is_a_replay(
        self, gateway: Gateway, http: aiohttp.ClientSession, sandbox: Sandbox
    ) -> None:
        """FNG commits and the answer is lost: OUTCOME_UNKNOWN tells the caller to send the
        same submission again; doing so is reconciled, answered as a replay, posted once."""
        await sandbox.faults({"target": "fng", "kind": "drop_after", "path": "PostJournals"})
        body = post_journals_body(sample_journal("0071"))
        lost = await soap_call(http, gateway.soap_url, body, gateway.auth)
        assert lost.fault_code == "OUTCOME_UNKNOWN"
        assert "send the same submission again, unchanged" in lost.fault_string
        await sandbox.clear_faults()
        result = (await soap_call(http, gateway.soap_url, body, gateway.auth)).result()
        assert (result.get("isSuccess"), result.get("replayed")) == ("true", "true")
        assert len(await sandbox.journals()) == 1


class TestRefusedLoginsAreLogged:
    @pytest.mark.parametrize(
        ("change", "reason"),
        [
            ({"password": "not-the-password"}, "wrong password"),
            ({"username": "nobody"}, "no such account"),
            ({"database": str(uuid.uuid4())}, "no database has that key"),
            ({"database": "FMS_LIVE"}, "the database key is not a GUID"),
        ],
        ids=["password", "account", "key", "not-a-guid"],
    )
    async def test_the_log_names_the_account_and_the_reason_never_the_password(
        self,
        gateway: Gateway,
        http: aiohttp.ClientSession,
        caplog: pytest.LogCaptureFixture,
        change: dict[str, str],
        reason: str,
    ) -> None:
        values = {
            "username": gateway.auth.username,
            "password": gateway.auth.password,
            "database": gateway.auth.database,
            **change,
        }
        caplog.set_level(logging.INFO)
        answer = await soap_call(
            http,
            gateway.soap_url,
            operation("GetBanks", systemIdentifier="TPPCS"),
            Auth(**values),
        )
        assert answer.fault_code == "AUTHENTICATION_FAILED"
        refusals = [r for r in caplog.records if r.getMessage().startswith("login refused")]
        assert [(r.getMessage(), getattr(r, "account", None)) for r in refusals] == [
            (f"login refused: {reason}", values["username"])
        ]
        for record in caplog.records:
            text = f"{record.getMessage()} {vars(record)}"
            assert values["password"] not in text
            assert gateway.auth.password not in text


class TestOtherClientsShapes:
    @pytest.mark.parametrize("version", ["1.1", "1.2"])
    async def test_the_journal_in_place_of_xml_data(
        self, gateway: Gateway, http: aiohttp.ClientSession, sandbox: Sandbox, version: str
    ) -> None:
        """PHP's SoapClient given SoapVar($xml, XSD_ANYXML) as the whole parameter sends the
        journal straight inside PostJournals, without xmlData: it is posted all the same."""
        body = f'<PostJournals xmlns="{ns.EJOURNAL}">{strip_declaration(sample_journal("0071"))}'
        body = body.replace("<ControlAccounts>", '<ControlAccounts xmlns="">', 1)
        body += "</PostJournals>"
        answer = await soap_call(http, gateway.soap_url, body, gateway.auth, version=version)
        assert answer.result().get("isSuccess") == "true", answer.raw
        assert [j["submission_id"] for j in await sandbox.journals()] == ["0071"]


class TestShippedExamples:
    async def test_the_raw_soap_envelope_posts_the_seeds_sample(
        self, gateway: Gateway, http: aiohttp.ClientSession, sandbox: Sandbox
    ) -> None:
        """examples/PostJournals-soap11.xml, with the password and key filled in, sent as the
        README's curl line sends it."""
        envelope = (EXAMPLES / "PostJournals-soap11.xml").read_text()
        envelope = envelope.replace("demo-payments", gateway.auth.username)
        envelope = envelope.replace("PASSWORD", gateway.auth.password)
        envelope = envelope.replace("DATABASE-KEY", gateway.auth.database)
        async with http.post(
            gateway.soap_url,
            data=envelope.encode(),
            headers={
                "Content-Type": "text/xml; charset=utf-8",
                "SOAPAction": '"urn:fng-gateway:ejournal/PostJournals"',
            },
        ) as response:
            raw = await response.read()
        assert response.status == 200, raw.decode()
        assert b'isSuccess="true"' in raw and b'submissionID="0071"' in raw
        (posted,) = await sandbox.journals()
        assert (posted["submission_id"], len(posted["lines"])) == ("0071", 2)

    @pytest.mark.parametrize("version", ["1.1", "1.2"])
    async def test_the_journal_as_the_whole_body_named_by_the_action(
        self, gateway: Gateway, http: aiohttp.ClientSession, sandbox: Sandbox, version: str
    ) -> None:
        """PHP's SoapClient given SoapVar($xml, XSD_ANYXML) as the call's only argument sends
        the journal alone as the body; the SOAPAction names the operation. Without an action
        naming one, such a body is no operation."""
        body = strip_declaration(sample_journal("0071"))
        named = await soap_call(
            http, gateway.soap_url, body, gateway.auth, version=version, action="PostJournals"
        )
        assert named.result().get("isSuccess") == "true", named.raw
        unnamed = await soap_call(http, gateway.soap_url, body, gateway.auth, version=version)
        assert unnamed.fault_code == "UNKNOWN_OPERATION"
        assert [j["submission_id"] for j in await sandbox.journals()] == ["0071"]
