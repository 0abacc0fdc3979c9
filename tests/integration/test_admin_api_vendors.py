"""The admin API's vendors: SIMS ID client registrations."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.admin_api import Admin, new_database, new_vendor


class TestVendors:
    """Vendors are added, listed and given new secrets."""

    async def test_a_vendor_is_listed_without_its_secret_and_its_secret_can_change(
        self, admin: Admin
    ) -> None:
        """A vendor added is listed, without its secret; its secret can be changed."""
        vendor_id = await new_vendor(admin, secret="first secret")
        listed = {item["id"]: item for item in await admin.get("/vendors")}
        assert listed[vendor_id]["client_id"] == "payments-ltd"
        assert listed[vendor_id]["auth_method"] == "client_secret_basic"
        assert "first secret" not in json.dumps(listed)
        done = await admin.put(f"/vendors/{vendor_id}/secret", {"secret": "second secret"})
        assert done == {"subject": f"vendor:{vendor_id}", "done": "secret"}
        await admin.put("/vendors/999999/secret", {"secret": "x"}, expect=404)


class TestAddresses:
    """An address no client could call (a port out of range, no host, a bracket left open)
    is refused when it is given, 422 naming what is wrong, not stored to fail at run time."""

    @pytest.mark.parametrize(
        ("url", "words"),
        [
            ("https://x:99999/token", "the port 99999 is not a port number (1 to 65535)"),
            ("https://x:0/token", "the port 0 is not a port number (1 to 65535)"),
            ("https://[::1/token", "has brackets that do not enclose an IPv6 address"),
            ("https://:443/token", "names no host"),
            ("https://x:abc/token", "has a port that is not a number"),
        ],
    )
    async def test_a_vendor_or_portal_address_no_client_could_call_is_422_saying_why(
        self, admin: Admin, url: str, words: str
    ) -> None:
        database_id = (await new_database(admin))["id"]
        before = [await admin.get("/vendors"), await admin.get("/portals")]
        vendor = {"name": "V", "token_url": url, "client_id": "c", "secret": "s"}
        portal = {
            "database_id": database_id,
            "name": "acme",
            "url": url,
            "username": "hill",
            "password": "pw",
            "supplier_duns": ["987654321"],
        }
        for path, body, field, what in (
            ("/vendors", vendor, "token_url", "SIMS ID's token URL"),
            ("/portals", portal, "url", "the portal's URL"),
        ):
            problem = await admin.post(path, body, expect=422)
            (message,) = self.messages(problem, field)
            assert message.startswith(f"Value error, {what} ") and words in message, problem
        assert [await admin.get("/vendors"), await admin.get("/portals")] == before
        ported = {**vendor, "token_url": "https://simsid.example:8443/connect/token"}
        assert (await admin.post("/vendors", ported, expect=201))["id"]

    @staticmethod
    def messages(problem: dict[str, Any], field: str) -> list[str]:
        return [error["msg"] for error in problem["errors"] if error["loc"] == ["body", field]]
