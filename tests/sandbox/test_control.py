"""The control API's observation: counters, and their reset."""

from __future__ import annotations

from tests.sandbox.conftest import FNG, Sandbox
from tests.sandbox.journals import FMS_SAMPLE_JOURNAL


class TestStats:
    async def test_counters(self, sandbox: Sandbox) -> None:
        """Token requests, calls per operation (refused ones too), posts, lines and notes."""
        token = await sandbox.token()
        await sandbox.request_token(sandbox.demo.client_id, "wrong")
        await sandbox.get_banks(token)
        await sandbox.get_banks("not a token")
        await sandbox.post_journal(FMS_SAMPLE_JOURNAL, token)
        await sandbox.post_journal(FMS_SAMPLE_JOURNAL, token)
        headers = {**sandbox.headers(token), "Content-Type": "application/xml"}
        await sandbox.client.post(
            f"{FNG}/PostAuditMessage", data=b"<AuditMessage>hi</AuditMessage>", headers=headers
        )
        assert await sandbox.control("GET", "/stats") == {
            "token_requests": 2,
            "tokens_issued": 1,
            "requests": {"GetBanks": 2, "PostJournals": 2, "PostAuditMessage": 1},
            "posted_submissions": 1,
            "journal_lines": 2,
            "audit_messages": 1,
        }

    async def test_reset_keeps_state(self, sandbox: Sandbox) -> None:
        """Resetting zeroes the counters but keeps what was posted."""
        await sandbox.post_journal(FMS_SAMPLE_JOURNAL)
        reset = await sandbox.control("POST", "/stats/reset")
        assert reset["posted_submissions"] == reset["token_requests"] == 0
        assert reset["requests"] == {"GetBanks": 0, "PostJournals": 0, "PostAuditMessage": 0}
        assert len(await sandbox.control("GET", "/journals")) == 1

    async def test_token_lifetime_is_validated(self, sandbox: Sandbox) -> None:
        """A token lifetime that is not a positive number of seconds is 400."""
        response = await sandbox.client.put("/_sandbox/simsid", json={"token_lifetime": 0})
        assert response.status == 400
        assert (await sandbox.control("GET", "/simsid")) == {"token_lifetime": 3600}
