"""The admin API's suppliers' portals, and the eProcurement work set aside for operators."""

from __future__ import annotations

import json

from gateway.app import STORE
from tests.integration.admin_api import Admin, new_database, quarantine


class TestPortals:
    """Portals are added with their own settings, listed, given passwords and paused."""

    async def test_a_portal_is_listed_without_its_password_given_a_new_one_and_paused(
        self, admin: Admin
    ) -> None:
        """A portal is added, listed without its password, given a new one, and paused."""
        database_id = (await new_database(admin))["id"]
        body = {
            "database_id": database_id,
            "name": "acme",
            "url": "https://portal.example/EProcurementService.asmx",
            "username": "hill",
            "password": "portal password",
            "supplier_duns": "987654321",
            "password_days": 90,
        }
        portal_id = (await admin.post("/portals", body, expect=201))["id"]
        await admin.post("/portals", body, expect=409)
        await admin.post("/portals", {**body, "database_id": 999999}, expect=404)
        listed = {item["id"]: item for item in await admin.get("/portals")}
        assert listed[portal_id]["poll_seconds"] == 300
        assert listed[portal_id]["enabled"] is True
        assert "portal password" not in json.dumps(listed)
        await admin.put(f"/portals/{portal_id}/password", {"password": "new portal password"})
        await admin.post(f"/portals/{portal_id}/disable")
        listed = {item["id"]: item for item in await admin.get("/portals")}
        assert listed[portal_id]["enabled"] is False
        await admin.post(f"/portals/{portal_id}/enable")
        await admin.post("/portals/999999/enable", expect=404)
        await admin.put("/portals/999999/password", {"password": "x"}, expect=404)

    async def test_a_portals_own_settings_are_kept_and_listed(self, admin: Admin) -> None:
        """A portal's suppliers, http allowance, handshake codes and checksum policy are kept
        and listed; a plain http address without the allowance is refused (422), in one
        line; one DUNS number alone is a list of one."""
        database_id = (await new_database(admin))["id"]
        body = {
            "database_id": database_id,
            "name": "compare",
            "url": "http://127.0.0.1:9/EProcurementService.asmx",
            "username": "hill",
            "password": "portal password",
            "supplier_duns": ["111111111", "222222222"],
        }
        problem = await admin.post("/portals", body, expect=422)
        (error,) = problem["errors"]
        assert "must be https" in error["msg"] and "\n" not in error["msg"]
        await admin.post("/portals", {**body, "checksum_policy": "lenient"}, expect=422)
        await admin.post("/portals", {**body, "supplier_duns": []}, expect=422)
        portal_id = (
            await admin.post(
                "/portals",
                {
                    **body,
                    "allow_http": True,
                    "require_handshake_codes": False,
                    "checksum_policy": "warn",
                },
                expect=201,
            )
        )["id"]
        single = (
            await admin.post(
                "/portals",
                {
                    **body,
                    "name": "single",
                    "url": "https://p.example/ws",
                    "supplier_duns": "333333333",
                },
                expect=201,
            )
        )["id"]
        listed = {item["id"]: item for item in await admin.get("/portals")}
        assert listed[portal_id]["supplier_duns"] == ["111111111", "222222222"]
        assert (
            listed[portal_id]["allow_http"],
            listed[portal_id]["require_handshake_codes"],
            listed[portal_id]["checksum_policy"],
        ) == (True, False, "warn")
        assert listed[single]["supplier_duns"] == ["333333333"]
        assert (listed[single]["allow_http"], listed[single]["checksum_policy"]) == (False, None)


class TestEprocWork:
    """Quarantined documents and orders, and orders sent, as operators handle them."""

    async def test_orders_are_listed_with_their_sends_and_resent_once_at_a_time(
        self, admin: Admin
    ) -> None:
        """Orders are listed with their sends; one is queued to go again, once at a time."""
        demo = admin.gateway.demo
        _documents, orders = await quarantine(
            admin.gateway.app[STORE], demo.database_id, demo.portal_id, count=1
        )
        (listed,) = await admin.get("/eproc/orders")
        assert (listed["id"], listed["reference"], listed["sends"]) == (orders[0], "order-1", 0)
        await admin.post(f"/eproc/orders/{orders[0]}/resend")
        await admin.post(f"/eproc/orders/{orders[0]}/resend", expect=409)
        await admin.post("/eproc/orders/999999/resend", expect=404)
        (listed,) = await admin.get("/eproc/orders?limit=5")
        assert listed["state"] == "queued"

    async def test_quarantined_work_is_listed_shown_retried_and_released(
        self, admin: Admin
    ) -> None:
        """Quarantined documents and orders are listed, shown, retried and released."""
        demo = admin.gateway.demo
        documents, orders = await quarantine(
            admin.gateway.app[STORE], demo.database_id, demo.portal_id, count=2
        )
        held = await admin.get("/eproc/quarantine")
        assert sorted((item["kind"], item["reference"]) for item in held) == [
            ("document", "doc-1"),
            ("document", "doc-2"),
            ("order", "order-1"),
            ("order", "order-2"),
        ]
        shown = await admin.get(f"/eproc/documents/{documents[0]}")
        assert shown["content"] == "<Invoice>£ 5</Invoice>" and shown["rule"] == "checksum"
        await admin.post(f"/eproc/documents/{documents[0]}/retry")
        await admin.post(f"/eproc/documents/{documents[1]}/release")
        await admin.post(f"/eproc/orders/{orders[0]}/retry")
        await admin.post(f"/eproc/orders/{orders[1]}/release")
        assert await admin.get("/eproc/quarantine") == []
        await admin.get(f"/eproc/documents/{documents[0]}", expect=404)
        for path in (f"documents/{documents[0]}", f"orders/{orders[1]}"):
            for action in ("retry", "release"):
                await admin.post(f"/eproc/{path}/{action}", expect=404)
