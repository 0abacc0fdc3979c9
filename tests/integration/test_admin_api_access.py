"""Operators' bearer tokens: who may call the admin API, and that it is absent unless enabled."""

from __future__ import annotations

import json

import aiohttp
import pytest

from gateway.admin.tokens import AdminTokens
from gateway.app import STORE
from tests.conftest import Gateway
from tests.integration.admin_api import Admin


class TestAuthentication:
    async def test_a_live_token_works(self, admin: Admin) -> None:
        """A request with a live operator's token is answered."""
        assert isinstance(await admin.get("/vendors"), list)

    @pytest.mark.parametrize(
        "header",
        [
            None,
            "",
            "Bearer",
            "Bearer ",
            "Basic YWxpY2U6c2VjcmV0",
            "Bearer fgwa_not-a-token",
            "Bearer fgwa_ü",
            "Bearer " + "fgwa_" + "a" * 500,
            "Bearer a b",
        ],
    )
    async def test_no_token_or_a_wrong_one_is_401(self, admin: Admin, header: str | None) -> None:
        """Without a live token every operation is refused with a Bearer challenge."""
        headers = {} if header is None else {"Authorization": header}
        status, body, response = await admin.request("GET", "/vendors", token=None, headers=headers)
        assert status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")
        assert body["code"] == "AUTHENTICATION_FAILED"

    async def test_a_revoked_token_is_401(self, admin: Admin) -> None:
        """A token revoked (here by another operator, through the API) stops working at once."""
        other = await AdminTokens(admin.gateway.app[STORE], "test").create("bob")
        await admin.get("/vendors", token=other)
        done = await admin.post("/tokens/revoke", {"name": "bob"})
        assert done == {"subject": "admin_token:bob", "done": "admin_token.revoke"}
        status, _body, response = await admin.request("GET", "/vendors", token=other)
        assert status == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        tokens = {item["name"]: item for item in await admin.get("/tokens")}
        assert tokens["bob"]["revoked"] and not tokens["alice"]["revoked"]
        assert admin.token not in json.dumps(tokens)
        await admin.post("/tokens/revoke", {"name": "bob"}, expect=404)

    async def test_unknown_paths_are_401_before_404(self, admin: Admin) -> None:
        """Without a token nothing tells which paths exist; with one, an unknown path is 404."""
        status, _body, _response = await admin.request("GET", "/nothing", token=None)
        assert status == 401
        status, body, _response = await admin.request("GET", "/nothing")
        assert (status, body["code"]) == (404, "NOT_FOUND")

    async def test_a_method_a_path_lacks_is_405_with_allow(self, admin: Admin) -> None:
        """A method the path does not take is a problem naming the ones it does."""
        status, _body, response = await admin.request("DELETE", "/vendors")
        assert status == 405
        assert set(response.headers["Allow"].split(",")) >= {"GET", "POST"}

    async def test_the_openapi_document_needs_no_token(self, admin: Admin) -> None:
        """The document is public, so clients can be generated from it."""
        status, body, _response = await admin.request("GET", "/openapi.json", token=None)
        assert status == 200
        assert body["openapi"] == "3.1.0"


async def test_the_api_is_absent_unless_enabled(gateway: Gateway, http: aiohttp.ClientSession):
    """By default there is no /admin/ at all, document included."""
    for path in ("/admin/openapi.json", "/admin/vendors"):
        async with http.get(f"{gateway.url}{path}") as response:
            assert response.status == 404
