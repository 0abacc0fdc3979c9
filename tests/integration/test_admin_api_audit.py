"""The audit log through the admin API: entries in the operator's name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.admin.tokens import AdminTokens
from gateway.app import STORE
from gateway.errors import RegistryError
from tests.integration.admin_api import Admin, new_vendor


class TestAudit:
    async def test_entries_carry_the_operator_and_filter(self, admin: Admin) -> None:
        """Each change is audited as admin:<operator>; subject, since and limit filter."""
        before = datetime.now(UTC)
        vendor_id = await new_vendor(admin)
        await admin.put(f"/vendors/{vendor_id}/secret", {"secret": "another"})
        entries = await admin.get(f"/audit?subject=vendor:{vendor_id}")
        assert [(e["action"], e["actor"]) for e in entries] == [
            ("vendor.credential", "admin:alice"),
            ("vendor.add", "admin:alice"),
        ]
        assert len(await admin.get(f"/audit?subject=vendor:{vendor_id}&limit=1")) == 1
        since = before.isoformat().replace("+00:00", "Z")
        recent = await admin.get("/audit", params={"since": since})
        assert {e["actor"] for e in recent} == {"admin:alice"}
        future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        assert await admin.get("/audit", params={"since": future}) == []
        await admin.get("/audit?limit=0", expect=422)
        await admin.get("/audit?limit=+5", expect=422)
        await admin.get("/audit", params={"since": "2016-12-31T23:59:60Z"})  # a leap second
        for since in ("yesterday", "1700000000", "2024-09-01", "2024-09-01T00:00:00"):
            await admin.get("/audit", params={"since": since}, expect=422)
        await admin.get("/audit?since=9999-12-31T23:59:59-14:00", expect=422)

    async def test_a_long_operator_name_fits_the_audit_log(self, admin: Admin) -> None:
        """An operator with the longest name a token may have (94 characters, so that
        ``admin:NAME`` fills the audit log's 100) has every change audited under it."""
        tokens = AdminTokens(admin.gateway.app[STORE], "test")
        with pytest.raises(RegistryError):
            await tokens.create("o" * 95)
        token = await tokens.create("o" * 94)
        await admin.post(
            "/schools",
            {"name": "Long", "la_number": "321", "establishment_number": "4321"},
            token=token,
            expect=201,
        )
        [entry] = await admin.get("/audit?limit=1")
        assert entry["actor"] == "admin:" + "o" * 94
