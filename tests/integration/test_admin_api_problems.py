"""The admin API's errors: a problem document for each, with its status."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.admin_api import GUID, Admin, new_vendor


class TestProblems:
    @pytest.mark.parametrize(
        ("raw", "content_type", "status", "code"),
        [
            (b"{", "application/json", 400, "MALFORMED_REQUEST"),
            (b"\xff", "application/json", 400, "MALFORMED_REQUEST"),
            (b'{"name": "\\ud800"}', "application/json", 400, "MALFORMED_REQUEST"),
            (b"", "application/json", 400, "MALFORMED_REQUEST"),
            (b"[]", "application/json", 422, "INVALID_INPUT"),
            (b"null", "application/json", 422, "INVALID_INPUT"),
            (b'{"name": "x"}', "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
            (b'{"name": "' + b"x" * 5000 + b'"}', "application/json", 413, "BODY_TOO_LARGE"),
        ],
    )
    async def test_each_unreadable_body_is_its_own_problem(
        self, admin: Admin, raw: bytes, content_type: str, status: int, code: str
    ) -> None:
        """Each unreadable body is its own clean problem."""
        _status, problem, _response = await admin.request(
            "POST", "/schools", data=raw, headers={"Content-Type": content_type}, expect=status
        )
        assert problem["code"] == code

    async def test_a_chunked_body_over_the_limit_is_413(self, admin: Admin) -> None:
        """A body without a length is still cut off at the limit."""

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"name": "'
            for _ in range(100):
                yield b"x" * 100
            yield b'"}'

        await admin.request(
            "POST",
            "/schools",
            data=chunks(),
            headers={"Content-Type": "application/json"},
            expect=413,
        )

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"la_number": "12", "establishment_number": "0456", "name": "x"}, "la_number"),
            ({"la_number": "١٢٣", "establishment_number": "0456", "name": "x"}, "la_number"),
            ({"la_number": "123\n", "establishment_number": "0456", "name": "x"}, "la_number"),
            ({"la_number": 123, "establishment_number": "0456", "name": "x"}, "la_number"),
            ({"la_number": "123", "establishment_number": "0456", "name": "a\x00b"}, "name"),
            ({"la_number": "123", "establishment_number": "0456"}, "name"),
            ({"la_number": "123", "establishment_number": "0456", "name": "x", "x": 1}, "x"),
            (
                {"la_number": "123", "establishment_number": "0456", "name": "x", "duns": "1"},
                "duns",
            ),
        ],
    )
    async def test_fields_that_break_their_schema_are_422(
        self, admin: Admin, body: dict[str, Any], field: str
    ) -> None:
        """A field of the wrong type or form is named in the problem's errors."""
        problem = await admin.post("/schools", body, expect=422)
        assert problem["code"] == "INVALID_INPUT"
        assert ["body", field] in [item["loc"] for item in problem["errors"]]

    @pytest.mark.parametrize(
        ("path", "body"),
        [
            ("/databases/0/partner-keys/promote", {}),
            ("/databases/abc/partner-keys/promote", {}),
            (f"/databases/{2**31}/partner-keys/promote", {}),
            ("/databases/+1/partner-keys/promote", {}),
            ("/databases/1_0/partner-keys/promote", {}),
            ("/databases/%EF%BC%91/partner-keys/promote", {}),  # a full-width 1
            ("/databases/1/partner-keys/promote", {"grace_seconds": -1}),
            ("/databases/1/partner-keys/promote", {"grace_seconds": 1e300}),
            ("/databases/1/partner-keys/promote", {"grace_seconds": "60"}),
            ("/databases/1/partner-keys/rotate", {"key": "not a guid"}),
            ("/accounts/1/password", {"password": "short"}),
            ("/accounts/1/password", {"overlap_seconds": True}),
            ("/accounts", {"username": "has space"}),
            ("/accounts/1/revoke", {"database_id": 1, "interfaces": []}),
            ("/accounts/1/grant", {"database_id": 1, "interfaces": ["soap"]}),
        ],
    )
    async def test_out_of_range_values_are_422(
        self, admin: Admin, path: str, body: dict[str, Any]
    ) -> None:
        """Ids, durations, keys and passwords out of range are refused before any service."""
        await admin.post(path, body, expect=422)

    async def test_nan_is_not_a_number_of_seconds(self, admin: Admin) -> None:
        """JSON's NaN extension is refused, not turned into a time."""
        await admin.request(
            "POST",
            "/databases/1/partner-keys/promote",
            data=b'{"grace_seconds": NaN}',
            headers={"Content-Type": "application/json"},
            expect=422,
        )

    async def test_a_refused_secret_is_not_echoed(self, admin: Admin) -> None:
        """The problem for a bad secret names the field, never the value."""
        secret = "s3cret-value-\x01"
        problem = await admin.post(
            "/vendors",
            {
                "name": "v",
                "token_url": "https://simsid.example/t",
                "client_id": "c",
                "secret": secret,
            },
            expect=422,
        )
        assert "s3cret-value" not in json.dumps(problem)

    async def test_unknown_references_in_bodies_are_404(self, admin: Admin) -> None:
        """A database for a school or vendor that does not exist is 404, not a conflict."""
        vendor_id = await new_vendor(admin)
        body = {"school_id": 999999, "vendor_id": vendor_id, "name": "x", "fng_key": GUID}
        await admin.post("/databases", body, expect=404)
