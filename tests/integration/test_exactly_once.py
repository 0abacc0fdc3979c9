"""A journal reaches FNG once and only once, however its caller retries and whatever fails.

The sandbox counts what it receives and what it posts; those counts are the proof.
"""

from __future__ import annotations

import asyncio

import aiohttp

from tests.conftest import Gateway, GatewayWith, Sandbox
from tests.support import errors_of, post_journals_body, sample_journal, soap_call


async def post(http: aiohttp.ClientSession, gateway: Gateway, document: str):  # type: ignore[no-untyped-def]
    return await soap_call(http, gateway.soap_url, post_journals_body(document), gateway.auth)


class TestReplays:
    async def test_a_second_identical_submission_is_answered_from_the_ledger(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        """The second identical submission is answered from the ledger, not posted again."""
        document = sample_journal("0100")
        first = (await post(http, gateway, document)).result()
        second = (await post(http, gateway, document)).result()
        assert first.get("isSuccess") == second.get("isSuccess") == "true"
        stats = await sandbox.stats()
        assert (stats["posted_submissions"], stats["requests"]["PostJournals"]) == (1, 1)

    async def test_twenty_duplicates_at_once_share_one_post(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        """Concurrent duplicates wait for the one that posts, and all get its result."""
        document = sample_journal("0200")
        answers = await asyncio.gather(*(post(http, gateway, document) for _ in range(20)))
        assert [answer.result().get("isSuccess") for answer in answers] == ["true"] * 20
        stats = await sandbox.stats()
        assert (stats["posted_submissions"], stats["requests"]["PostJournals"]) == (1, 1)

    async def test_the_same_id_with_other_content_is_a_conflict(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        await post(http, gateway, sample_journal("0300"))
        other = sample_journal("0300").replace(
            'grossAmount="9.000000" vat', 'grossAmount="8.000000" vat'
        )
        result = (await post(http, gateway, other)).result()
        assert result.get("isSuccess") == "false"
        (error,) = errors_of(result)
        assert error["code"] == "SUBMISSION_CONFLICT" and "different content" in error["message"]
        assert error["message"].endswith("different content needs a submission id of its own")
        assert (await sandbox.stats())["requests"]["PostJournals"] == 1

    async def test_a_refused_submission_may_be_corrected(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        """FNG refused it, so nothing was posted: the same id with corrected content posts."""
        wrong = sample_journal("0400").replace('controlTotal="0"', 'controlTotal="7"', 1)
        assert (await post(http, gateway, wrong)).result().get("isSuccess") == "false"
        assert (await post(http, gateway, sample_journal("0400"))).result().get(
            "isSuccess"
        ) == "true"
        assert (await sandbox.stats())["posted_submissions"] == 1


class TestLostAnswers:
    async def test_connection_dropped_after_commit(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        """FNG posted but the answer was lost; the retry is reconciled, not posted again."""
        await sandbox.faults(
            {"target": "fng", "path": "PostJournals", "kind": "drop_after", "count": 1}
        )
        document = sample_journal("0500")
        first = await post(http, gateway, document)
        assert first.is_fault and first.fault_code == "OUTCOME_UNKNOWN"
        second = (await post(http, gateway, document)).result()
        assert second.get("isSuccess") == "true"
        stats = await sandbox.stats()
        assert (stats["posted_submissions"], stats["requests"]["PostJournals"]) == (1, 1)

    async def test_garbage_answer_after_commit(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        await sandbox.faults(
            {"target": "fng", "path": "PostJournals", "kind": "garbage", "count": 1}
        )
        document = sample_journal("0600")
        assert (await post(http, gateway, document)).fault_code == "OUTCOME_UNKNOWN"
        assert (await post(http, gateway, document)).result().get("isSuccess") == "true"
        assert (await sandbox.stats())["posted_submissions"] == 1

    async def test_an_error_before_processing_is_reconciled_then_posted(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        """A 503 may or may not have posted: reconciliation finds it did not, and it posts."""
        await sandbox.faults(
            {"target": "fng", "path": "PostJournals", "kind": "error", "status": 503, "count": 1}
        )
        document = sample_journal("0700")
        assert (await post(http, gateway, document)).fault_code == "OUTCOME_UNKNOWN"
        assert (await post(http, gateway, document)).result().get("isSuccess") == "true"
        stats = await sandbox.stats()
        # The 503 came from in front of FNG's handler, so one post reached it: the retry's.
        assert (stats["posted_submissions"], stats["requests"]["PostJournals"]) == (1, 1)

    async def test_timeout_while_fng_is_slow(
        self, gateway_with: GatewayWith, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        """The gateway gives up waiting; FNG posts later; the retry finds it posted."""
        gateway = await gateway_with(fng={"timeout_seconds": 0.5})
        await sandbox.faults(
            {
                "target": "fng",
                "path": "PostJournals",
                "kind": "latency",
                "latency_ms": 1500,
                "count": 1,
            }
        )
        document = sample_journal("0800")
        assert (await post(http, gateway, document)).fault_code == "OUTCOME_UNKNOWN"
        for _ in range(50):  # until the slow post has landed in the sandbox
            if (await sandbox.stats())["posted_submissions"]:
                break
            await asyncio.sleep(0.1)
        assert (await post(http, gateway, document)).result().get("isSuccess") == "true"
        stats = await sandbox.stats()
        assert (stats["posted_submissions"], stats["requests"]["PostJournals"]) == (1, 1)

    async def test_no_repost_while_fng_is_unreachable_during_reconciliation(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        """No repost while the outcome cannot be established; then it settles."""
        await sandbox.faults(
            {"target": "fng", "path": "PostJournals", "kind": "drop_after", "count": 1}
        )
        document = sample_journal("0900")
        await post(http, gateway, document)
        await sandbox.faults({"target": "fng", "path": "GetBanks", "kind": "error", "status": 503})
        answer = await post(http, gateway, document)
        assert answer.fault_code == "RECONCILIATION_FAILED"
        await sandbox.clear_faults()
        assert (await post(http, gateway, document)).result().get("isSuccess") == "true"
        stats = await sandbox.stats()
        assert (stats["posted_submissions"], stats["requests"]["PostJournals"]) == (1, 1)
