"""The admin API's databases and their keys: partner keys rotated, FNG keys promoted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.integration.admin_api import GUID, Admin, new_database


class TestDatabases:
    """Databases are added with a partner key shown once."""

    async def test_a_database_partner_key_is_shown_once_and_moves_through_rotation(
        self, admin: Admin
    ) -> None:
        """A database gets a partner key, shown once; rotate, promote, cancel and retire move
        its keys through their states."""
        created = await new_database(admin)
        database_id, first_key = created["id"], created["partner_key"]
        assert uuid.UUID(first_key)
        listed = {item["id"]: item for item in await admin.get("/databases")}
        assert listed[database_id]["fng_key_pending"] is False
        keys = await admin.get(f"/databases/{database_id}/partner-keys")
        assert [key["state"] for key in keys] == ["active"]

        base = f"/databases/{database_id}/partner-keys"
        rotated = await admin.post(f"{base}/rotate", expect=201)
        assert rotated["database_id"] == database_id and uuid.UUID(rotated["next_key"])
        await admin.post(f"{base}/rotate", {}, expect=409)
        states = [key["state"] for key in await admin.get(base)]
        assert states == ["active", "next"]
        promoted = await admin.post(f"{base}/promote", {"grace_seconds": 60})
        refused_from = datetime.fromisoformat(promoted["old_key_refused_from"])
        assert timedelta(seconds=50) < refused_from - datetime.now(UTC) < timedelta(seconds=70)
        assert [key["state"] for key in await admin.get(base)] == ["retiring", "active"]
        await admin.post(f"{base}/promote", expect=409)
        await admin.post(f"{base}/retire")
        given = str(uuid.uuid4())
        rotated = await admin.post(f"{base}/rotate", {"key": given.upper()}, expect=201)
        assert rotated["next_key"] == given
        await admin.post(f"{base}/cancel")
        await admin.post(f"{base}/cancel", expect=409)
        for action in ("rotate", "promote", "cancel", "retire"):
            await admin.post(f"/databases/999999/partner-keys/{action}", expect=404)
        await admin.get("/databases/999999/partner-keys", expect=404)


class TestKeys:
    """FNG keys are stored as next and promoted."""

    async def test_the_next_fng_key_is_stored_pending_and_promoted(self, admin: Admin) -> None:
        """FNG's next key is stored (shown as pending, never as a value) and promoted."""
        database_id = (await new_database(admin))["id"]
        await admin.post(f"/databases/{database_id}/fng-key/promote", expect=409)
        await admin.put(f"/databases/{database_id}/fng-key/next", {"key": str(uuid.uuid4())})
        listed = {item["id"]: item for item in await admin.get("/databases")}
        assert listed[database_id]["fng_key_pending"] is True
        await admin.post(f"/databases/{database_id}/fng-key/promote")
        listed = {item["id"]: item for item in await admin.get("/databases")}
        assert listed[database_id]["fng_key_pending"] is False
        await admin.put("/databases/999999/fng-key/next", {"key": GUID}, expect=404)
        await admin.post("/databases/999999/fng-key/promote", expect=404)

    async def test_an_fng_key_that_is_no_change_or_anothers_is_a_conflict(
        self, admin: Admin
    ) -> None:
        """As the CLI and the import: the next key twice, or another database's key."""
        first = (await new_database(admin))["id"]
        (listed,) = [item for item in await admin.get("/databases") if item["id"] == first]
        other = {
            "school_id": listed["school_id"],
            "vendor_id": listed["vendor_id"],
            "name": "Private funds",
            "fng_key": str(uuid.uuid4()),
        }
        second = (await admin.post("/databases", other, expect=201))["id"]
        key = str(uuid.uuid4())
        await admin.put(f"/databases/{first}/fng-key/next", {"key": key})
        again = await admin.put(f"/databases/{first}/fng-key/next", {"key": key}, expect=409)
        assert "nothing would change" in again["title"], again
        taken = await admin.put(f"/databases/{second}/fng-key/next", {"key": key}, expect=409)
        assert "belongs to one database" in taken["title"], taken
