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
