"""What FMS would have thrown: one exception type, GatewayException, with the gateway's
fault code or the library's own, and never a retry where one cannot help."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dotnet.conftest import QUICK, DotNet, GatewayProcess, journal
from tests.dotnet.relay import Relay

pytestmark = pytest.mark.dotnet


class TestRefused:
    async def test_wrong_keys_and_wrong_addresses(
        self, dotnet: DotNet, gateway: GatewayProcess
    ) -> None:
        async with Relay(gateway.url) as relay:
            # A GUID the gateway does not know: refused like any bad credential, and not
            # retried (the gateway saw one request).
            unknown = (
                await dotnet.scenario(
                    "banks", *gateway.account(relay.url, database=str(uuid.uuid4())), *QUICK
                )
            ).step
            assert len(relay.requests) == 1
            # FMS's database name where the partner key belongs.
            legacy = (
                await dotnet.scenario(
                    "banks", *gateway.account(relay.url, database="FMS_Live"), *QUICK
                )
            ).step
            assert len(relay.requests) == 2

        assert unknown["exception"] == "CSFMSEJournalInterface.GatewayException"
        assert unknown["code"] == "AUTHENTICATION_FAILED"
        assert unknown["exceptionType"] == "AuthenticationException"
        assert unknown["message"].startswith("AuthenticationException:")
        assert unknown["requestId"] == relay.requests[0].headers["x-request-id"]
        assert (unknown["httpStatus"], unknown["attempts"]) == (500, 1)
        assert legacy["code"] == "AUTHENTICATION_FAILED"
        assert (legacy["exceptionType"], legacy["attempts"]) == ("AuthenticationException", 1)
        assert "GUID" in legacy["message"]

        # Something that is not the E-Journal service (here the sandbox's port): a 404.
        elsewhere = (
            await dotnet.scenario("banks", *gateway.account(gateway.sandbox_url), *QUICK)
        ).step
        assert elsewhere["code"] == "UNEXPECTED_RESPONSE"
        assert (elsewhere["httpStatus"], elsewhere["attempts"]) == (404, 1)
        assert "check the server address" in elsewhere["message"]

    async def test_fng_refusing_the_gateways_keys_is_final(
        self, dotnet: DotNet, gateway: GatewayProcess, tmp_path: Path
    ) -> None:
        """FNG answers 403 to the gateway (its keys for the school are wrong): a soap:Server
        fault, but one that no resend can help and after which nothing is posted. The
        caller hears UPSTREAM_REFUSED at once, not OUTCOME_UNKNOWN after minutes."""
        await gateway.faults({"target": "fng", "kind": "error", "status": 403})
        post = (
            await dotnet.scenario("post", f"file={journal(tmp_path)}", *gateway.account(), *QUICK)
        ).step
        banks = (await dotnet.scenario("banks", *gateway.account(), *QUICK)).step
        for refused in (post, banks):
            assert refused["code"] == "UPSTREAM_REFUSED", refused
            assert (refused["attempts"], refused["exceptionType"]) == (1, "UpstreamException")
            assert "may have been posted" not in refused["message"]
        assert await gateway.submissions() == []

    async def test_a_web_page_at_the_address_is_not_a_lost_answer(
        self, dotnet: DotNet, gateway: GatewayProcess, tmp_path: Path
    ) -> None:
        """A web server answering 200 with HTML is not the gateway: nothing was posted, and
        the address is what to check."""
        async with Relay(gateway.url, actions=("web_page",) * 2) as relay:
            banks = (await dotnet.scenario("banks", *gateway.account(relay.url), *QUICK)).step
            post = (
                await dotnet.scenario(
                    "post", f"file={journal(tmp_path)}", *gateway.account(relay.url), *QUICK
                )
            ).step
            assert len(relay.requests) == 2
        for call in (banks, post):
            assert call["code"] == "UNEXPECTED_RESPONSE", call
            assert (call["attempts"], call["httpStatus"]) == (1, 200)
            assert "check the server address" in call["message"]

    async def test_an_empty_password_is_refused_before_sending(
        self, dotnet: DotNet, gateway: GatewayProcess
    ) -> None:
        async with Relay(gateway.url) as relay:
            account = [a for a in gateway.account(relay.url) if not a.startswith("password=")]
            banks = (await dotnet.scenario("banks", *account, "password=")).step
            assert relay.requests == []
        assert (banks["code"], banks["attempts"]) == ("AUTHENTICATION_FAILED", 0)
        assert banks["message"].startswith(
            "The password given to FmsGeneralLedgerProcessor is empty"
        )


@pytest.fixture
def nobody() -> Iterator[str]:
    """The address of a port nothing listens on: bound (so no other process takes it while
    the test runs) but not listening, so connections to it are refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


class TestUnreachable:
    async def test_no_gateway_listening(self, dotnet: DotNet, nobody: str) -> None:
        """Nothing listens: every call is tried MaxAttempts times (a connection that cannot be
        made surely sent nothing, so even an audit note is retried), waiting in between."""
        account = (f"server={nobody}", f"database={uuid.uuid4()}", "username=u", "password=p")
        retries = ("attempts=3", "delay=100", "maxdelay=150")

        banks = (await dotnet.scenario("banks", *account, *retries)).step
        audit = (await dotnet.scenario("audit", "message=note", *account, *retries)).step

        for failed in (banks, audit):
            assert failed["code"] == "GATEWAY_UNREACHABLE", failed
            assert (failed["attempts"], failed["httpStatus"]) == (3, 0)
            assert failed["exceptionType"] is None
            assert nobody in failed["message"]
        assert banks["elapsed_ms"] >= 100 + 150  # the waits: 100 ms, then 200 capped to 150

    async def test_journal_to_no_gateway(self, dotnet: DotNet, nobody: str, tmp_path: Path) -> None:
        account = (f"server={nobody}", f"database={uuid.uuid4()}", "username=u", "password=p")
        post = (await dotnet.scenario("post", f"file={journal(tmp_path)}", *account, *QUICK)).step
        assert post["code"] == "GATEWAY_UNREACHABLE"
        assert post["attempts"] == 4
        assert "send the same submission again later" in post["message"]

    async def test_zero_delay_and_many_attempts(self, dotnet: DotNet, nobody: str) -> None:
        """RetryDelay 0 and more than 1025 attempts: each wait is 0 (2^1024 times zero was
        NaN, which TimeSpan refuses with an ArgumentException)."""
        account = (f"server={nobody}", f"database={uuid.uuid4()}", "username=u", "password=p")
        retries = ("attempts=1100", "delay=0", "maxdelay=0")
        banks = (await dotnet.scenario("banks", *account, *retries)).step
        assert banks["code"] == "GATEWAY_UNREACHABLE", banks
        assert banks["attempts"] == 1100


class TestCallTimeout:
    async def test_a_call_ends_when_its_time_runs_out(
        self, dotnet: DotNet, gateway: GatewayProcess, tmp_path: Path
    ) -> None:
        """The gateway takes the requests and never answers. However long each attempt may
        take (Timeout 30 s) and however many there may be, a call ends at CallTimeout: the
        attempt under way is cut off, and no new one starts without time to be answered."""
        limits = ("timeout=30000", "calltimeout=1500", "attempts=8", "delay=50", "maxdelay=50")
        async with Relay(gateway.url, actions=("hang",) * 20) as relay:
            banks = (await dotnet.scenario("banks", *gateway.account(relay.url), *limits)).step
            post = (
                await dotnet.scenario(
                    "post", f"file={journal(tmp_path)}", *gateway.account(relay.url), *limits
                )
            ).step

        assert banks["code"] == "GATEWAY_UNREACHABLE", banks
        assert "CallTimeout" in banks["message"]
        # The journal was sent and no answer came: it may be posted.
        assert post["code"] == "OUTCOME_UNKNOWN", post
        assert "send the same submission again later" in post["message"]
        for call in (banks, post):
            assert call["attempts"] == 1
            assert 1400 <= call["elapsed_ms"] < 5000, call


class TestAuditNotes:
    async def test_a_note_failed_after_fng_took_it_is_not_sent_again(
        self, dotnet: DotNet, gateway: GatewayProcess
    ) -> None:
        """STORE_UNAVAILABLE may come after FNG recorded the note (the gateway's store fails
        as it records the call): sending it again would record it twice."""
        async with Relay(gateway.url, actions=("fault_after:STORE_UNAVAILABLE",)) as relay:
            audit = (
                await dotnet.scenario(
                    "audit", "message=Export 43 posted", *gateway.account(relay.url), *QUICK
                )
            ).step
            assert len(relay.requests) == 1

        assert audit["code"] == "STORE_UNAVAILABLE", audit
        assert audit["attempts"] == 1
        assert "not sent again" in audit["message"]
        assert await gateway.audit_messages() == ["Export 43 posted"]

    async def test_a_note_met_by_an_ingress_error_is_not_sent_again(
        self, dotnet: DotNet, gateway: GatewayProcess
    ) -> None:
        """An ingress's 502 may come after the gateway took the note: the message says it
        may be recorded, not to try again."""
        async with Relay(gateway.url, actions=("bad_gateway",)) as relay:
            audit = (
                await dotnet.scenario(
                    "audit", "message=Export 45 posted", *gateway.account(relay.url), *QUICK
                )
            ).step
            assert len(relay.requests) == 1
        assert (audit["code"], audit["attempts"], audit["httpStatus"]) == (
            "GATEWAY_UNREACHABLE",
            1,
            502,
        )
        assert "the note may be recorded; it was not sent again" in audit["message"], audit
        assert "try again" not in audit["message"]

    async def test_a_note_refused_before_fng_is_sent_again(
        self, dotnet: DotNet, gateway: GatewayProcess
    ) -> None:
        """TOKEN_UNAVAILABLE comes before the gateway calls FNG: the note is sent again."""
        async with Relay(gateway.url, actions=("fault:TOKEN_UNAVAILABLE",)) as relay:
            audit = (
                await dotnet.scenario(
                    "audit", "message=Export 44 posted", *gateway.account(relay.url), *QUICK
                )
            ).step
            assert len(relay.requests) == 2

        assert audit["isSuccess"] == "true", audit
        assert await gateway.audit_messages() == ["Export 44 posted"]


class TestUnsendable:
    async def test_characters_xml_cannot_carry_are_refused_before_sending(
        self, dotnet: DotNet, gateway: GatewayProcess, tmp_path: Path
    ) -> None:
        """A control character in a journal built in memory, or in an audit note: a
        GatewayException saying which character and where, and nothing sent."""
        async with Relay(gateway.url) as relay:
            post = (
                await dotnet.scenario(
                    "post", f"file={journal(tmp_path)}", "invalid=1", *gateway.account(relay.url)
                )
            ).step
            audit = (
                await dotnet.scenario(
                    "audit", "message=bell \x07 here", *gateway.account(relay.url)
                )
            ).step
            assert relay.requests == []

        assert post["exception"] == "CSFMSEJournalInterface.GatewayException", post
        assert (post["code"], post["attempts"], post["httpStatus"]) == ("MALFORMED_REQUEST", 0, 0)
        assert "U+0001 in the description attribute of a Txn element" in post["message"]
        assert audit["exception"] == "CSFMSEJournalInterface.GatewayException", audit
        assert (audit["code"], audit["attempts"]) == ("MALFORMED_REQUEST", 0)
        assert "U+0007 at position 6" in audit["message"]
        assert await gateway.submissions() == []
