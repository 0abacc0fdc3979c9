"""The admin API's vendors: SIMS ID client registrations."""

from __future__ import annotations

import json

from tests.integration.admin_api import Admin, new_vendor


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
