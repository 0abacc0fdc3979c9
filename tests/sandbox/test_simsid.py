"""SIMS ID: the token endpoint, its client authentication, discovery and keys."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from gateway.sandbox import SandboxState, create_sandbox_app, seed_demo
from tests.sandbox.conftest import Sandbox, basic_header

FORM = "application/x-www-form-urlencoded"
GRANT = "grant_type=client_credentials&scope=fngapi"


@pytest.fixture(scope="module")
def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, auto_kid=True)


async def _send(sandbox: Sandbox, auth: ClientAuth, body: str = GRANT) -> Any:
    _, headers, prepared = auth.prepare("POST", sandbox.token_url, {"Content-Type": FORM}, body)
    return await sandbox.client.post("/connect/token", data=prepared, headers=headers)


class TestClientAuthentication:
    async def test_client_secret_basic_form_encoded(self, sandbox: Sandbox) -> None:
        """A Basic header whose id and secret were form-urlencoded first gets a token."""
        response = await sandbox.request_token(sandbox.demo.client_id, sandbox.demo.client_secret)
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        body = await response.json()
        assert body["token_type"] == "Bearer"
        assert body["scope"] == "fngapi"
        assert body["expires_in"] == 3600
        assert body["access_token"].count(".") == 2

    async def test_client_secret_post(self, sandbox: Sandbox) -> None:
        """The id and secret in the form body (authlib's client_secret_post) get a token."""
        auth = ClientAuth(
            sandbox.demo.client_id, sandbox.demo.client_secret, auth_method="client_secret_post"
        )
        response = await _send(sandbox, auth)
        assert response.status == 200, await response.text()

    async def test_private_key_jwt_rsa(self, sandbox: Sandbox, rsa_key: RSAKey) -> None:
        """A client assertion signed with the client's registered RSA key gets a token."""
        await sandbox.state.simsid.add_client(
            "rsa-vendor", public_jwk=rsa_key.as_dict(private=False)
        )
        auth = ClientAuth("rsa-vendor", rsa_key, auth_method=PrivateKeyJWT(sandbox.token_url))
        response = await _send(sandbox, auth)
        assert response.status == 200, await response.text()

    async def test_private_key_jwt_ec(self, sandbox: Sandbox) -> None:
        """An ES256 client assertion verifies against a registered EC key."""
        key = ECKey.generate_key("P-256")
        await sandbox.state.simsid.add_client("ec-vendor", public_jwk=key.as_dict(private=False))
        method = PrivateKeyJWT(sandbox.token_url, alg="ES256")
        response = await _send(sandbox, ClientAuth("ec-vendor", key, auth_method=method))
        assert response.status == 200, await response.text()

    async def test_wrong_secret_is_refused(self, sandbox: Sandbox) -> None:
        """A wrong secret is answered 401 invalid_client with a Basic challenge."""
        response = await sandbox.request_token(sandbox.demo.client_id, "not the secret")
        assert response.status == 401
        assert (await response.json())["error"] == "invalid_client"
        assert response.headers["WWW-Authenticate"].startswith("Basic")

    async def test_unknown_client_is_refused(self, sandbox: Sandbox) -> None:
        """A client id SIMS ID does not know is refused like a wrong secret."""
        response = await sandbox.request_token("nobody", sandbox.demo.client_secret)
        assert response.status == 401
        assert (await response.json())["error"] == "invalid_client"

    async def test_basic_without_form_encoding_is_refused(self, sandbox: Sandbox) -> None:
        """authlib's own Basic encoder joins the raw secret, which this secret does not survive."""
        secret = sandbox.demo.client_secret
        assert {" ", ":", "%", "+"} <= set(secret)
        auth = ClientAuth(sandbox.demo.client_id, secret, auth_method="client_secret_basic")
        response = await _send(sandbox, auth)
        assert response.status == 401
        assert (await response.json())["error"] == "invalid_client"

    async def test_two_methods_at_once_are_refused(self, sandbox: Sandbox) -> None:
        """Basic credentials plus a client_secret in the body is an invalid request."""
        response = await sandbox.client.post(
            "/connect/token",
            data={**dict(grant_type="client_credentials", scope="fngapi"), "client_secret": "x"},
            headers={"Authorization": basic_header(sandbox.demo.client_id, "x")},
        )
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_request"

    async def test_no_authentication_is_refused(self, sandbox: Sandbox) -> None:
        """A request with no client authentication at all is 401 invalid_client."""
        response = await sandbox.client.post("/connect/token", data={"grant_type": "x"})
        assert response.status == 401

    async def test_assertion_for_another_audience_is_refused(
        self, sandbox: Sandbox, rsa_key: RSAKey
    ) -> None:
        """An assertion addressed to another token endpoint is refused."""
        await sandbox.state.simsid.add_client(
            "rsa-vendor", public_jwk=rsa_key.as_dict(private=False)
        )
        method = PrivateKeyJWT("https://elsewhere.example/connect/token")
        response = await _send(sandbox, ClientAuth("rsa-vendor", rsa_key, auth_method=method))
        assert response.status == 401

    async def test_assertion_signed_by_another_key_is_refused(
        self, sandbox: Sandbox, rsa_key: RSAKey
    ) -> None:
        """An assertion signed by a key other than the registered one is refused."""
        other = ECKey.generate_key("P-256")
        await sandbox.state.simsid.add_client("ec-vendor", public_jwk=other.as_dict(private=False))
        auth = ClientAuth("ec-vendor", rsa_key, auth_method=PrivateKeyJWT(sandbox.token_url))
        response = await _send(sandbox, auth)
        assert response.status == 401

    async def test_assertion_cannot_be_replayed(self, sandbox: Sandbox, rsa_key: RSAKey) -> None:
        """The same client assertion (same jti) works once only."""
        await sandbox.state.simsid.add_client(
            "rsa-vendor", public_jwk=rsa_key.as_dict(private=False)
        )
        assertion = private_key_jwt_sign(rsa_key, "rsa-vendor", sandbox.token_url)
        form = {
            "grant_type": "client_credentials",
            "scope": "fngapi",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }
        first = await sandbox.client.post("/connect/token", data=form)
        second = await sandbox.client.post("/connect/token", data=form)
        assert (first.status, second.status) == (200, 401)


class TestGrant:
    async def _token_request(self, sandbox: Sandbox, **form: str) -> Any:
        auth = basic_header(sandbox.demo.client_id, sandbox.demo.client_secret)
        return await sandbox.client.post(
            "/connect/token", data=form, headers={"Authorization": auth}
        )

    async def test_wrong_scope_is_refused(self, sandbox: Sandbox) -> None:
        """Any scope but fngapi is invalid_scope."""
        response = await self._token_request(
            sandbox, grant_type="client_credentials", scope="fngapi openid"
        )
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_scope"

    async def test_scope_is_required(self, sandbox: Sandbox) -> None:
        """A request without scope is invalid_request."""
        response = await self._token_request(sandbox, grant_type="client_credentials")
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_request"

    async def test_other_grant_types_are_unsupported(self, sandbox: Sandbox) -> None:
        """Other grant types are unsupported_grant_type."""
        response = await self._token_request(sandbox, grant_type="password", scope="fngapi")
        assert response.status == 400
        assert (await response.json())["error"] == "unsupported_grant_type"

    async def test_get_is_not_allowed(self, sandbox: Sandbox) -> None:
        """The token endpoint answers 405 to anything but POST."""
        response = await sandbox.client.get("/connect/token")
        assert response.status == 405
        assert response.headers["Allow"] == "POST"

    async def test_form_body_is_required(self, sandbox: Sandbox) -> None:
        """A JSON body is an invalid request."""
        response = await sandbox.client.post(
            "/connect/token", json={"grant_type": "client_credentials"}
        )
        assert response.status == 400

    async def test_token_lifetime_can_be_changed(self, sandbox: Sandbox) -> None:
        """After PUT /_sandbox/simsid new tokens carry the new lifetime."""
        await sandbox.control("PUT", "/simsid", {"token_lifetime": 5})
        response = await sandbox.request_token(sandbox.demo.client_id, sandbox.demo.client_secret)
        body = await response.json()
        assert body["expires_in"] == 5
        claims = jwt.decode(body["access_token"], sandbox.state.simsid.signing_key).claims
        assert claims["exp"] - claims["iat"] == 5


class TestTokensAndKeys:
    async def test_discovery_names_the_issuer_and_its_endpoints(self, sandbox: Sandbox) -> None:
        """Discovery names this issuer, its token endpoint, JWKS, methods and grant."""
        response = await sandbox.client.get("/.well-known/openid-configuration")
        document = await response.json()
        assert document["issuer"] == sandbox.issuer
        assert document["token_endpoint"] == sandbox.token_url
        assert document["jwks_uri"] == f"{sandbox.issuer}/.well-known/openid-configuration/jwks"
        assert set(document["token_endpoint_auth_methods_supported"]) == {
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        }
        assert document["grant_types_supported"] == ["client_credentials"]

    async def test_token_verifies_with_published_jwks(self, sandbox: Sandbox) -> None:
        """The access token is an RS256 JWT that verifies with the published key set."""
        token = await sandbox.token()
        keys = await (await sandbox.client.get("/.well-known/openid-configuration/jwks")).json()
        assert all("d" not in key for key in keys["keys"])
        decoded = jwt.decode(token, KeySet.import_key_set(keys), algorithms=["RS256"])
        assert decoded.header["alg"] == "RS256"
        assert decoded.header["kid"] == keys["keys"][0]["kid"]
        claims = decoded.claims
        assert claims["iss"] == sandbox.issuer
        assert claims["aud"] == "fngapi"
        assert claims["client_id"] == sandbox.demo.client_id
        assert claims["scope"] == "fngapi"
        assert claims["nbf"] == claims["iat"] <= time.time() < claims["exp"]
        assert claims["jti"]

    async def test_a_fixed_issuer_is_used_whatever_the_host(
        self, state: SandboxState, aiohttp_client: Any
    ) -> None:
        """With issuer= the tokens and discovery use that issuer whatever the Host."""
        demo = await seed_demo(state)
        client = await aiohttp_client(create_sandbox_app(state, issuer="https://simsid.test/"))
        document = await (await client.get("/.well-known/openid-configuration")).json()
        assert document["issuer"] == "https://simsid.test"
        response = await client.post(
            "/connect/token",
            data={"grant_type": "client_credentials", "scope": "fngapi"},
            headers={"Authorization": basic_header(demo.client_id, demo.client_secret)},
        )
        token = (await response.json())["access_token"]
        assert jwt.decode(token, state.simsid.signing_key).claims["iss"] == "https://simsid.test"

    async def test_key_and_demo_survive_a_restart(self, tmp_path: Path) -> None:
        """Reopening the same file keeps the signing key, the demo, and issued tokens."""
        url = f"sqlite+aiosqlite:///{tmp_path / 'sandbox.db'}"
        first = await SandboxState.open(url)
        demo = await seed_demo(first)
        token = await first.simsid.issue_token(demo.client_id, issuer="http://h", lifetime=60)
        kid = first.simsid.signing_key.kid
        await first.close()
        second = await SandboxState.open(url)
        try:
            assert second.simsid.signing_key.kid == kid
            assert await seed_demo(second) == demo
            claims = await second.simsid.verify_token(token, issuer="http://h")
            assert claims.client_id == demo.client_id
        finally:
            await second.close()

    async def test_demo_is_idempotent(self, state: SandboxState) -> None:
        """Seeding twice returns the same demo, with GUID keys and a hard-to-encode secret."""
        first, second = await seed_demo(state), await seed_demo(state)
        assert first == second
        assert uuid.UUID(first.fng_key) != uuid.UUID(first.partner_key)
        assert first.school_name == "Demo Primary School"
        assert (first.la_number, first.establishment_number) == ("123", "4567")
        assert first.banks == ("BK1", "BK2", "BK3")
        assert {"WATBTL1", "LUNCH", "TRIP"} <= set(first.products)
        assert (first.vat_codes, first.charge_codes) == (("VAT20", "VAT0"), ("CHARGE30",))
        assert first.charge_vat_codes == ("CHARGEVAT0",)
        assert {" ", ":", "%", "+"} <= set(first.client_secret)
