"""Secrets through the admin API: re-encrypted under the newest key, shown only once."""

from __future__ import annotations

import json
import uuid

import sqlalchemy as sa
from cryptography.fernet import Fernet

from gateway.app import STORE
from gateway.store.tables import audit_log, vendors
from gateway.tenancy.secrets import SecretBox
from gateway.tenancy.service import TenancyAdmin
from tests.integration.admin_api import Admin, new_school, new_vendor


class TestReencryption:
    """Stored secrets are re-encrypted under the newest master key."""

    async def test_every_stored_secret_is_counted_as_reencrypted(self, admin: Admin) -> None:
        """Every stored secret is counted as re-encrypted (the demo has several)."""
        assert (await admin.post("/secrets/reencrypt"))["reencrypted"] >= 4

    async def test_secrets_no_master_key_decrypts_are_a_conflict_that_names_them(
        self, admin: Admin
    ) -> None:
        """A vendor registered under a master key the gateway does not hold: re-encrypting
        is 409 (documented), naming the vendor and what to do as the command line does, and
        re-encrypts nothing; once its secret is set again, it is done."""
        store = admin.gateway.app[STORE]
        elsewhere = TenancyAdmin(store, SecretBox([Fernet.generate_key()]), actor="test")
        vendor_id = await elsewhere.add_vendor(
            "Vendor under another key",
            token_url="https://simsid.example/connect/token",
            client_id="c",
            credential="stored under another key",
        )
        async with store.read() as conn:
            before = (await conn.execute(sa.select(vendors.c.id, vendors.c.credential_enc))).all()

        problem = await admin.post("/secrets/reencrypt", expect=409)
        assert problem["code"] == "CONFLICT"
        assert problem["title"] == (
            "ConflictException:1 stored secret(s) cannot be decrypted with the configured "
            f"master keys (vendor {vendor_id}): add the master key they were stored under "
            "(after the newest) and run this again, or set those secrets again; nothing was "
            "re-encrypted"
        )
        async with store.read() as conn:
            after = (await conn.execute(sa.select(vendors.c.id, vendors.c.credential_enc))).all()
        assert after == before
        audited = await admin.get("/audit?limit=1000")
        assert "secrets.reencrypt" not in [entry["action"] for entry in audited]
        served = await admin.get("/openapi.json", token=None)
        assert "409" in served["paths"]["/secrets/reencrypt"]["post"]["responses"]

        await admin.put(f"/vendors/{vendor_id}/secret", {"secret": "set again"})
        assert (await admin.post("/secrets/reencrypt"))["reencrypted"] >= 5


class TestSecretsShownOnce:
    async def test_no_secret_appears_in_a_list_or_the_audit_log(self, admin: Admin) -> None:
        """Every secret sent or made through the API is absent from every list, from the
        audit log as the API shows it, and from the audit table itself."""
        vendor_secret, new_vendor_secret = f"vs-{uuid.uuid4()}", f"vs2-{uuid.uuid4()}"
        fng_key, next_fng_key = str(uuid.uuid4()), str(uuid.uuid4())
        portal_password, new_portal_password = f"pp-{uuid.uuid4()}", f"pp2-{uuid.uuid4()}"
        given_password = f"ap-{uuid.uuid4()}"
        vendor_id = await new_vendor(admin, secret=vendor_secret)
        await admin.put(f"/vendors/{vendor_id}/secret", {"secret": new_vendor_secret})
        school_id = await new_school(admin, "555", "5555")
        database = await admin.post(
            "/databases",
            {"school_id": school_id, "vendor_id": vendor_id, "name": "D", "fng_key": fng_key},
            expect=201,
        )
        database_id = database["id"]
        base = f"/databases/{database_id}"
        rotated = await admin.post(f"{base}/partner-keys/rotate", expect=201)
        await admin.put(f"{base}/fng-key/next", {"key": next_fng_key})
        generated = await admin.post("/accounts", {"username": "once"}, expect=201)
        given = await admin.post(
            "/accounts", {"username": "given-once", "password": given_password}, expect=201
        )
        changed = await admin.post(f"/accounts/{given['id']}/password", {})
        portal = await admin.post(
            "/portals",
            {
                "database_id": database_id,
                "name": "once",
                "url": "https://portal.example/ws",
                "username": "u",
                "password": portal_password,
                "supplier_duns": "123456789",
            },
            expect=201,
        )
        await admin.put(f"/portals/{portal['id']}/password", {"password": new_portal_password})

        secrets = {
            vendor_secret,
            new_vendor_secret,
            fng_key,
            next_fng_key,
            database["partner_key"],
            rotated["next_key"],
            generated["password"],
            given_password,
            changed["password"],
            portal_password,
            new_portal_password,
        }
        shown = [
            await admin.get(path)
            for path in (
                "/vendors",
                "/schools",
                "/databases",
                f"{base}/partner-keys",
                "/accounts",
                "/portals",
                "/eproc/quarantine",
                "/tokens",
                "/audit?limit=1000",
                "/openapi.json",
            )
        ]
        text = json.dumps(shown)
        async with admin.gateway.app[STORE].read() as conn:
            rows = (await conn.execute(sa.select(audit_log))).all()
        text += "\n".join(repr(tuple(row)) for row in rows)
        assert len(rows) > 10
        leaked = [secret for secret in secrets if secret in text]
        assert leaked == []
        assert admin.token not in text
