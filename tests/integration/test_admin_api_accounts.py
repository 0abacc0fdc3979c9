"""The admin API's integration accounts: grants, passwords, enabling."""

from __future__ import annotations

from typing import Any

from tests.integration.admin_api import Admin, new_database


class TestAccounts:
    """Accounts are added, granted, revoked, given passwords, disabled and enabled."""

    async def test_an_account_is_granted_revoked_given_a_password_disabled_and_enabled(
        self, admin: Admin
    ) -> None:
        """An account is added, granted, revoked, given a new password, disabled and enabled;
        the list shows each change."""
        database_id = (await new_database(admin))["id"]
        created = await admin.post("/accounts", {"username": "payments-ltd-hill"}, expect=201)
        account_id, password = created["id"], created["password"]
        assert len(password) >= 20
        given = await admin.post(
            "/accounts", {"username": "given", "password": "a long given password"}, expect=201
        )
        assert given["password"] is None
        await admin.post("/accounts", {"username": "given"}, expect=409)

        base = f"/accounts/{account_id}"
        await admin.post(
            f"{base}/grant",
            {
                "database_id": database_id,
                "interfaces": ["ejournal", "budget", "ejournal"],
                "system_identifiers": ["TPPCS"],
            },
        )
        await admin.post(
            f"{base}/grant", {"database_id": database_id, "interfaces": ["ejournal"]}, expect=409
        )
        account = await self.account(admin, account_id)
        assert sorted(g["interface"] for g in account["grants"]) == ["budget", "ejournal"]
        assert account["system_identifiers"] == ["TPPCS"]
        await admin.post(f"{base}/revoke", {"database_id": database_id, "interfaces": ["budget"]})
        account = await self.account(admin, account_id)
        assert [g["interface"] for g in account["grants"]] == ["ejournal"]

        changed = await admin.post(f"{base}/password", {"overlap_seconds": 0})
        assert changed["password"] and changed["password"] != password
        changed = await admin.post(f"{base}/password", {"password": "another long password"})
        assert changed["password"] is None
        assert (await self.account(admin, account_id))["old_password_until"] is not None

        await admin.post(f"{base}/disable")
        assert (await self.account(admin, account_id))["enabled"] is False
        await admin.post(f"{base}/enable")
        assert (await self.account(admin, account_id))["enabled"] is True
        for action in ("enable", "disable", "password"):
            await admin.post(f"/accounts/999999/{action}", {}, expect=404)
        body = {"database_id": 999999, "interfaces": ["budget"]}
        await admin.post(f"{base}/grant", body, expect=404)
        await admin.post(f"{base}/revoke", body, expect=404)

    async def test_a_grant_of_no_interface_is_422_saying_one_is_needed(self, admin: Admin) -> None:
        """A grant naming no interface (an empty list, or none) is refused as invalid input,
        saying a grant needs one, as the command line needs --interface; not a conflict
        with what the account has, and nothing is granted."""
        database_id = (await new_database(admin))["id"]
        account_id = (await admin.post("/accounts", {"username": "no-interface"}, expect=201))["id"]
        for body in (
            {"database_id": database_id, "interfaces": []},
            {"database_id": database_id, "interfaces": [], "system_identifiers": ["TPPCS"]},
            {"database_id": database_id, "system_identifiers": ["TPPCS"]},
        ):
            problem = await admin.post(f"/accounts/{account_id}/grant", body, expect=422)
            (error,) = problem["errors"]
            assert error["loc"] == ["body", "interfaces"], problem
            if "interfaces" in body:
                assert "a grant names at least one interface" in error["msg"], problem
        account = await self.account(admin, account_id)
        assert account["grants"] == [] and account["system_identifiers"] == []
        served = await admin.get("/openapi.json", token=None)
        interfaces = served["components"]["schemas"]["Grant"]["properties"]["interfaces"]
        assert interfaces["minItems"] == 1

    @staticmethod
    async def account(admin: Admin, account_id: int) -> dict[str, Any]:
        listed = {item["id"]: item for item in await admin.get("/accounts")}
        return listed[account_id]
