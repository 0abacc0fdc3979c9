"""A journal whose outcome is unknown is never reported as anything but "send the same
submission again": once any attempt may have reached the gateway, whatever later attempts
run into, and whatever a lost, cut or garbled answer looks like. Each test posts seed 001's
journal (submission 0071) and checks FNG holds it once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dotnet.conftest import QUICK, DotNet, GatewayProcess, journal
from tests.dotnet.relay import Relay, self_signed

pytestmark = pytest.mark.dotnet

RESEND = "send the same submission again later (the same submissionID, the journal unchanged)"


async def resent_once(dotnet: DotNet, gateway: GatewayProcess, path: Path) -> None:
    """The same submission sent again, straight to the gateway: answered from its ledger,
    and FNG still holds it once."""
    again = (await dotnet.scenario("post", f"file={path}", *gateway.account(), *QUICK)).step
    assert again["isSuccess"] == "true", again
    assert again["replayed"] == "true"
    assert await gateway.submissions() == ["0071"]


class TestLastAttemptDoesNotHideAnEarlierOne:
    async def test_a_lost_answer_then_a_web_page(
        self, dotnet: DotNet, gateway: GatewayProcess, tmp_path: Path
    ) -> None:
        """The first attempt posts the journal and its answer is lost; the second meets an
        ingress's HTML 404. The caller is told the journal may be posted and to send the
        same submission again, not to check the server address."""
        path = journal(tmp_path)
        async with Relay(gateway.url, actions=("swallow", "not_found")) as relay:
            failed = (
                await dotnet.scenario("post", f"file={path}", *gateway.account(relay.url), *QUICK)
            ).step
            assert len(relay.requests) == 2

        assert failed["code"] == "OUTCOME_UNKNOWN", failed
        assert (failed["attempts"], failed["httpStatus"]) == (2, 404)
        assert failed["message"].startswith("The journal may have been posted")
        assert RESEND in failed["message"]
        assert "check the server address" not in failed["message"]
        assert failed["requestId"] == relay.requests[0].headers["x-request-id"]
        assert await gateway.submissions() == ["0071"]
        await resent_once(dotnet, gateway, path)

    async def test_a_lost_answer_then_an_untrusted_certificate(
        self, dotnet: DotNet, gateway: GatewayProcess, tmp_path: Path
    ) -> None:
        """The second attempt's TLS connection meets a certificate the application does not
        trust (final, not retried): the caller still hears OUTCOME_UNKNOWN, not TLS_FAILED."""
        trusted = self_signed(tmp_path)
        (tmp_path / "other").mkdir()
        other = self_signed(tmp_path / "other")
        path = journal(tmp_path)
        handshakes = (trusted.server_context(), other.server_context())
        async with Relay(
            gateway.url,
            actions=("swallow",),
            tls=trusted.server_context(),
            handshakes=handshakes,
        ) as relay:
            failed = (
                await dotnet.scenario(
                    "post",
                    f"file={path}",
                    f"thumbprint={trusted.sha1}",
                    *gateway.account(relay.url),
                    *QUICK,
                )
            ).step
            assert len(relay.requests) == 1

        assert failed["code"] == "OUTCOME_UNKNOWN", failed
        assert (failed["attempts"], failed["httpStatus"]) == (2, 0)
        assert RESEND in failed["message"]
        assert await gateway.submissions() == ["0071"]
        await resent_once(dotnet, gateway, path)

    async def test_retries_run_out_on_internal_errors_after_the_post(
        self, dotnet: DotNet, gateway: GatewayProcess, tmp_path: Path
    ) -> None:
        """Every attempt reaches the gateway and is answered INTERNAL_ERROR (the first after
        FNG posted the journal): the caller hears OUTCOME_UNKNOWN, to send it again."""
        path = journal(tmp_path)
        async with Relay(gateway.url, actions=("fault_after:INTERNAL_ERROR",) * 4) as relay:
            failed = (
                await dotnet.scenario("post", f"file={path}", *gateway.account(relay.url), *QUICK)
            ).step
            assert len(relay.requests) == 4

        assert failed["code"] == "OUTCOME_UNKNOWN", failed
        assert failed["attempts"] == 4
        assert "INTERNAL_ERROR" in failed["message"]
        assert RESEND in failed["message"]
        assert await gateway.submissions() == ["0071"]
        await resent_once(dotnet, gateway, path)


async def answered_from_the_ledger_on_the_second_send(
    dotnet: DotNet, gateway: GatewayProcess, tmp_path: Path, action: str
) -> None:
    """The relay does ``action`` to the first PostJournals; the library sends the journal
    again and is answered from the ledger, the journal posted once."""
    async with Relay(gateway.url, actions=(action,)) as relay:
        post = (
            await dotnet.scenario(
                "post", f"file={journal(tmp_path)}", *gateway.account(relay.url), *QUICK
            )
        ).step
        assert len(relay.requests) == 2

    assert post.get("exception") is None, post
    assert post["isSuccess"] == "true"
    assert post["replayed"] == "true"
    assert await gateway.submissions() == ["0071"]


class TestUnreadableAnswersAreLostAnswers:
    @pytest.mark.parametrize("action", ["truncate", "garble", "empty", "bad_gzip"])
    async def test_a_journal_whose_answer_is_cut_or_garbled_is_sent_again(
        self, dotnet: DotNet, gateway: GatewayProcess, tmp_path: Path, action: str
    ) -> None:
        """200 OK, then less than Content-Length, half a SOAP message, nothing, or a
        compressed body that does not decompress: the journal was handled and its answer
        lost. The library sends it again and gets the ledger's answer."""
        await answered_from_the_ledger_on_the_second_send(dotnet, gateway, tmp_path, action)

    async def test_get_banks_whose_answer_is_garbled_is_sent_again(
        self, dotnet: DotNet, gateway: GatewayProcess
    ) -> None:
        async with Relay(gateway.url, actions=("garble", "truncate")) as relay:
            banks = (await dotnet.scenario("banks", *gateway.account(relay.url), *QUICK)).step
            assert len(relay.requests) == 3
        assert banks["isSuccess"] is True, banks
        assert banks["banks"] == "BK1::,BK2::,BK3::"


class TestServerFaultsAreResent:
    @pytest.mark.parametrize("code", ["INTERNAL_ERROR", "GATEWAY_ERROR"])
    async def test_a_journal_answered_with_a_server_fault_is_sent_again(
        self, dotnet: DotNet, gateway: GatewayProcess, tmp_path: Path, code: str
    ) -> None:
        """The gateway failed after FNG posted the journal: sent again, the journal is
        answered from the ledger, not posted twice."""
        await answered_from_the_ledger_on_the_second_send(
            dotnet, gateway, tmp_path, f"fault_after:{code}"
        )

    async def test_get_banks_answered_with_a_server_fault_is_sent_again(
        self, dotnet: DotNet, gateway: GatewayProcess
    ) -> None:
        async with Relay(gateway.url, actions=("fault:GATEWAY_ERROR",)) as relay:
            banks = (await dotnet.scenario("banks", *gateway.account(relay.url), *QUICK)).step
            assert len(relay.requests) == 2
        assert banks["isSuccess"] is True, banks
