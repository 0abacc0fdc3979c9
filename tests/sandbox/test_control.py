"""The control API's observation: counters, and their reset."""

from __future__ import annotations

import hashlib

from tests.sandbox.budgets import demo_budget, fmt, year_start
from tests.sandbox.conftest import FNG, Sandbox
from tests.sandbox.journals import FMS_SAMPLE_JOURNAL

ZERO = {
    "GetBanks": 0,
    "PostJournals": 0,
    "PostAuditMessage": 0,
    "ExportGlAccount": 0,
    "ExportFinancialYears": 0,
    "ImportBudget": 0,
    "PostDocument": 0,
    "AuthorisedOrders": 0,
    "MarkOrderSent": 0,
}


class TestStats:
    async def test_every_request_post_and_note_is_counted(self, sandbox: Sandbox) -> None:
        """Token requests, calls per operation (refused ones too), posts, lines, notes and
        budgets."""
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
        await sandbox.export_chart(fmt(year_start(sandbox.demo.open_year)), token)
        await sandbox.export_chart("not a date", token)
        await sandbox.export_chart("01/04/1990", token)
        await sandbox.export_years(token)
        await sandbox.send_budget(demo_budget(sandbox.demo), token)
        await sandbox.send_budget(demo_budget(sandbox.demo), token)
        await sandbox.send_budget(demo_budget(sandbox.demo), "not a token")
        assert await sandbox.control("GET", "/stats") == {
            "token_requests": 2,
            "tokens_issued": 1,
            "requests": {
                "GetBanks": 2,
                "PostJournals": 2,
                "PostAuditMessage": 1,
                "ExportGlAccount": 3,
                "ExportFinancialYears": 1,
                "ImportBudget": 3,
                "PostDocument": 0,
                "AuthorisedOrders": 0,
                "MarkOrderSent": 0,
            },
            "posted_submissions": 1,
            "journal_lines": 2,
            "last_journal_sha256": hashlib.sha256(FMS_SAMPLE_JOURNAL).hexdigest(),
            "audit_messages": 1,
            "budgets_imported": 1,
            "documents_received": 0,
            "orders_sent": 0,
            "portals": {},
        }

    async def test_reset_keeps_state(self, sandbox: Sandbox) -> None:
        """Resetting zeroes the counters but keeps what was posted and imported."""
        await sandbox.post_journal(FMS_SAMPLE_JOURNAL)
        await sandbox.send_budget(demo_budget(sandbox.demo))
        reset = await sandbox.control("POST", "/stats/reset")
        assert reset["posted_submissions"] == reset["token_requests"] == 0
        assert reset["budgets_imported"] == 0
        assert reset["requests"] == ZERO
        assert len(await sandbox.control("GET", "/journals")) == 1
        assert len(await sandbox.control("GET", "/budgets")) == 1

    async def test_token_lifetime_is_validated(self, sandbox: Sandbox) -> None:
        """A token lifetime that is not a positive number of seconds is 400."""
        response = await sandbox.client.put("/_sandbox/simsid", json={"token_lifetime": 0})
        assert response.status == 400
        assert (await sandbox.control("GET", "/simsid")) == {"token_lifetime": 3600}
