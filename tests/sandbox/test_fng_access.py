"""FNG's door: the bearer token, the scope header and the two database keys."""

from __future__ import annotations

import time
import uuid

import pytest
from aiohttp import ClientResponse
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.sandbox.conftest import Sandbox


async def _problem(response: ClientResponse) -> dict[str, object]:
    assert response.content_type == "application/problem+json"
    body: dict[str, object] = await response.json(content_type=None)
    return body


class TestBearerToken:
    async def test_valid_token_is_accepted(self, sandbox: Sandbox) -> None:
        """A fresh token with the demo's keys reaches GetBanks."""
        response = await sandbox.get_banks()
        assert response.status == 200

    async def test_a_missing_token_is_401_with_a_challenge(self, sandbox: Sandbox) -> None:
        """No Authorization header is 401 with a Bearer invalid_token challenge."""
        headers = sandbox.headers("x")
        del headers["Authorization"]
        response = await sandbox.client.get(
            "/fng/api/JournalInterface/GetBanks",
            params={"systemIdentifier": "TPPCS"},
            headers=headers,
        )
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
        assert (await _problem(response))["status"] == 401

    async def test_an_expired_token_is_401(self, sandbox: Sandbox) -> None:
        """A token whose exp has passed is 401."""
        token = await sandbox.state.simsid.issue_token(
            sandbox.demo.client_id,
            issuer=sandbox.issuer,
            lifetime=60,
            now=int(time.time()) - 3600,
        )
        response = await sandbox.get_banks(token)
        assert response.status == 401
        assert "expired" in str((await _problem(response))["detail"])

    async def test_a_revoked_token_is_401_and_a_new_one_works(self, sandbox: Sandbox) -> None:
        """After revoke-tokens every earlier token is 401, and a new one works."""
        token = await sandbox.token()
        revoked = await sandbox.control("POST", "/revoke-tokens")
        assert revoked["revoked"] >= 1
        assert (await sandbox.get_banks(token)).status == 401
        assert (await sandbox.get_banks(await sandbox.token())).status == 200

    async def test_a_token_signed_by_another_key_is_401(self, sandbox: Sandbox) -> None:
        """The same claims signed by another key under the sandbox's kid are 401."""
        token = await sandbox.token()
        decoded = jwt.decode(token, sandbox.state.simsid.signing_key)
        forged = jwt.encode(decoded.header, decoded.claims, RSAKey.generate_key(2048))
        assert (await sandbox.get_banks(forged)).status == 401

    async def test_tampered_claims_are_401(self, sandbox: Sandbox) -> None:
        """A token whose payload was changed after signing is 401."""
        header, payload, signature = (await sandbox.token()).split(".")
        other = (await sandbox.token()).split(".")[1]
        assert other != payload
        assert (await sandbox.get_banks(f"{header}.{other[:-2]}xx.{signature}")).status == 401
        assert (await sandbox.get_banks(f"{header}.{other}.{signature}")).status == 401

    async def test_a_token_of_another_issuer_is_401(self, sandbox: Sandbox) -> None:
        """A token signed by this key but for another issuer is 401."""
        token = await sandbox.state.simsid.issue_token(
            sandbox.demo.client_id, issuer="https://other.example", lifetime=60
        )
        assert (await sandbox.get_banks(token)).status == 401


class TestDatabaseKeys:
    async def test_scope_header_is_required(self, sandbox: Sandbox) -> None:
        """Without the scope header the call is 403."""
        headers = sandbox.headers(await sandbox.token())
        del headers["scope"]
        response = await sandbox.client.get(
            "/fng/api/JournalInterface/GetBanks",
            params={"systemIdentifier": "TPPCS"},
            headers=headers,
        )
        assert response.status == 403
        assert (await _problem(response))["status"] == 403

    async def test_a_wrong_fng_key_is_403(self, sandbox: Sandbox) -> None:
        """An X-PSK that is not the database's is 403."""
        response = await sandbox.get_banks(psk=str(uuid.uuid4()))
        assert response.status == 403

    async def test_a_wrong_partner_key_is_403(self, sandbox: Sandbox) -> None:
        """An X-Client-Id that is not the database's is 403, as is a non-GUID."""
        assert (await sandbox.get_banks(client_key=str(uuid.uuid4()))).status == 403
        assert (await sandbox.get_banks(client_key="not-a-guid")).status == 403

    async def test_swapped_keys_are_403(self, sandbox: Sandbox) -> None:
        """The two keys in each other's header are 403."""
        response = await sandbox.get_banks(
            psk=sandbox.demo.partner_key, client_key=sandbox.demo.fng_key
        )
        assert response.status == 403

    async def test_keys_are_guids_in_any_case(self, sandbox: Sandbox) -> None:
        """Upper-case GUIDs name the same database."""
        response = await sandbox.get_banks(
            psk=sandbox.demo.fng_key.upper(), client_key=sandbox.demo.partner_key.upper()
        )
        assert response.status == 200

    async def test_another_clients_database_is_403(self, sandbox: Sandbox) -> None:
        """Keys of a database set up for another vendor are 403 with this vendor's token."""
        state = sandbox.state
        await state.simsid.add_client("other-vendor", secret="other secret")
        other_fng, other_partner = str(uuid.uuid4()), str(uuid.uuid4())
        database_id = await state.databases.add(
            "Non-public funds",
            school_name="Other School",
            la_number="999",
            establishment_number="0001",
            client_id="other-vendor",
            fng_key=other_fng,
            partner_key=other_partner,
        )
        await state.journals.add_payment_system(
            database_id, "TPPCS", "Other", {"bank": {"BK1": "B"}}
        )
        demo_token = await sandbox.token()
        other_token = await sandbox.token("other-vendor", "other secret")
        assert (
            await sandbox.get_banks(demo_token, psk=other_fng, client_key=other_partner)
        ).status == 403
        assert (await sandbox.get_banks(other_token)).status == 403
        assert (
            await sandbox.get_banks(other_token, psk=other_fng, client_key=other_partner)
        ).status == 200

    async def test_after_rotation_the_old_partner_key_is_403_and_the_new_one_works(
        self, sandbox: Sandbox
    ) -> None:
        """Once the set-up holds a new partner key, the old one is 403 and the new one works."""
        new_key = str(uuid.uuid4())
        await sandbox.state.databases.set_partner_key(sandbox.demo.database_id, new_key)
        token = await sandbox.token()
        assert (await sandbox.get_banks(token)).status == 403
        assert (await sandbox.get_banks(token, client_key=new_key)).status == 200


BUDGET_CALLS = [
    ("GET", "/fng/api/BudgetInterface/ExportGlAccount?date=01/05/2026", "ExportGlAccount"),
    ("GET", "/fng/api/BudgetInterface/ExportFinancialYears", "ExportFinancialYears"),
    ("POST", "/fng/api/BudgetInterface/ImportBudget", "ImportBudget"),
]


@pytest.mark.parametrize(("method", "path", "operation"), BUDGET_CALLS)
class TestBudgetRoutes:
    async def _call(
        self, sandbox: Sandbox, method: str, path: str, headers: dict[str, str]
    ) -> ClientResponse:
        body = b"<Message/>" if method == "POST" else None
        headers = {**headers, "Content-Type": "application/xml"}
        return await sandbox.client.request(method, path, data=body, headers=headers)

    async def test_token_is_required(
        self, sandbox: Sandbox, method: str, path: str, operation: str
    ) -> None:
        """No token, or a revoked one, is 401 on every budget planning call, and is counted."""
        token = await sandbox.token()
        await sandbox.control("POST", "/revoke-tokens")
        headers = sandbox.headers(token)
        assert (await self._call(sandbox, method, path, headers)).status == 401
        del headers["Authorization"]
        response = await self._call(sandbox, method, path, headers)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
        assert (await sandbox.control("GET", "/stats"))["requests"][operation] == 2

    async def test_keys_are_required(
        self, sandbox: Sandbox, method: str, path: str, operation: str
    ) -> None:
        """A wrong X-PSK, a wrong X-Client-Id or no scope header is 403; the right ones pass."""
        token = await sandbox.token()
        for headers in (
            sandbox.headers(token, psk=str(uuid.uuid4())),
            sandbox.headers(token, client_key=sandbox.demo.fng_key),
            {k: v for k, v in sandbox.headers(token).items() if k != "scope"},
        ):
            response = await self._call(sandbox, method, path, headers)
            assert response.status == 403
            assert (await _problem(response))["status"] == 403
        assert (await self._call(sandbox, method, path, sandbox.headers(token))).status == 200
        assert await sandbox.control("GET", "/budgets") == []
