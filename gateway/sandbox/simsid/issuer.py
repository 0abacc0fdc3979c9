"""SIMS ID's part of the sandbox's state (``state.simsid``): the signing key, the registered
clients, the tokens issued to them and the client assertions they presented.

The cryptography is :mod:`gateway.sandbox.simsid.tokens`; this is what it must remember.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any, Final

import sqlalchemy as sa
from joserfc.jwk import RSAKey

from gateway.sandbox import tables as t
from gateway.sandbox.errors import TokenError
from gateway.sandbox.simsid import tokens
from gateway.sandbox.store import SandboxStore

_SIGNING_KEY: Final = "signing_key"


def new_secret() -> str:
    """A client secret that only survives a correct RFC 6749 §2.3.1 encoding.

    It holds a space, ``:``, ``%`` and ``+``: a client that puts it in a Basic header without
    form-urlencoding it first, or that decodes ``+`` wrongly, is refused.
    """
    return f"sbx {secrets.token_urlsafe(18)}:%41+{secrets.token_hex(4)}"


class SimsId:
    """SIMS ID's registrations and issued tokens. Open with :meth:`open`."""

    def __init__(self, store: SandboxStore, signing_key: RSAKey) -> None:
        self._store = store
        self._signing_key = signing_key

    @classmethod
    async def open(cls, store: SandboxStore, offered: RSAKey | None = None) -> SimsId:
        """SIMS ID with the signing key the store keeps; else with ``offered``, else with a
        new one, which the store keeps from then on (so tokens outlive a restart)."""
        async with store.write() as conn:
            text = await conn.scalar(
                sa.select(t.settings.c.value).where(t.settings.c.name == _SIGNING_KEY)
            )
            if text is not None:
                return cls(store, RSAKey.import_key(json.loads(text)))
            if offered is not None and not offered.is_private:
                raise ValueError("the signing key must be a private RSA key")
            key = offered or tokens.generate_signing_key()
            await conn.execute(
                sa.insert(t.settings).values(
                    name=_SIGNING_KEY, value=json.dumps(key.as_dict(private=True))
                )
            )
        return cls(store, key)

    @property
    def signing_key(self) -> RSAKey:
        return self._signing_key

    def jwks(self) -> dict[str, Any]:
        return tokens.public_key_set(self._signing_key)

    async def add_client(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        public_jwk: Mapping[str, Any] | None = None,
    ) -> None:
        """Register a client (a vendor): a secret (kept hashed), a public key, or both."""
        if not client_id:
            raise ValueError("a client id is required")
        if secret is None and public_jwk is None:
            raise ValueError("a client needs a secret or a public key")
        jwk_text = None
        if public_jwk is not None:
            jwk_text = json.dumps(tokens.import_public_jwk(public_jwk).as_dict(private=False))
        secret_hash = tokens.hash_secret(secret) if secret is not None else None
        async with self._store.write() as conn:
            await conn.execute(
                sa.insert(t.clients).values(
                    client_id=client_id, secret_hash=secret_hash, public_jwk=jwk_text
                )
            )

    async def client_secret_matches(self, client_id: str, secret: str) -> bool:
        async with self._store.read() as conn:
            stored = await conn.scalar(
                sa.select(t.clients.c.secret_hash).where(t.clients.c.client_id == client_id)
            )
        if stored is None:
            # Spend the same work on unknown clients.
            tokens.secret_matches(secret, tokens.hash_secret(""))
            return False
        return tokens.secret_matches(secret, stored)

    async def client_public_key(self, client_id: str) -> tokens.PublicKey | None:
        async with self._store.read() as conn:
            text = await conn.scalar(
                sa.select(t.clients.c.public_jwk).where(t.clients.c.client_id == client_id)
            )
        return tokens.import_public(json.loads(text)) if text else None

    async def remember_assertion(self, client_id: str, jti: str, expires_at: int) -> bool:
        """Record a client assertion's id; False if it has been presented before."""
        now = int(time.time())
        async with self._store.write() as conn:
            await conn.execute(
                sa.delete(t.used_assertions).where(t.used_assertions.c.expires_at < now)
            )
            seen = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(t.used_assertions)
                .where(t.used_assertions.c.client_id == client_id)
                .where(t.used_assertions.c.jti == jti)
            )
            if seen:
                return False
            await conn.execute(
                sa.insert(t.used_assertions).values(
                    client_id=client_id, jti=jti, expires_at=max(expires_at, now)
                )
            )
        return True

    async def issue_token(
        self, client_id: str, *, issuer: str, lifetime: int, now: int | None = None
    ) -> str:
        """Sign an access token for ``client_id`` and remember it (so it can be revoked)."""
        issued_at = int(time.time()) if now is None else now
        jti = uuid.uuid4().hex
        token = tokens.mint_access_token(
            self._signing_key,
            issuer=issuer,
            client_id=client_id,
            jti=jti,
            issued_at=issued_at,
            lifetime=lifetime,
        )
        async with self._store.write() as conn:
            await conn.execute(
                sa.delete(t.issued_tokens).where(t.issued_tokens.c.expires_at < time.time())
            )
            await conn.execute(
                sa.insert(t.issued_tokens).values(
                    jti=jti,
                    client_id=client_id,
                    issued_at=issued_at,
                    expires_at=issued_at + lifetime,
                    revoked=False,
                )
            )
        return token

    async def verify_token(self, token: str, *, issuer: str) -> tokens.AccessClaims:
        """Verify an access token; raise :class:`TokenError` if it is refused."""
        claims = tokens.verify_access_token(
            token, self._signing_key, issuer=issuer, now=int(time.time())
        )
        async with self._store.read() as conn:
            row = (
                await conn.execute(
                    sa.select(t.issued_tokens.c.client_id, t.issued_tokens.c.revoked).where(
                        t.issued_tokens.c.jti == claims.jti
                    )
                )
            ).first()
        if row is None or row.client_id != claims.client_id:
            raise TokenError("the token was not issued by this SIMS ID")
        if row.revoked:
            raise TokenError("the token has been revoked")
        return claims

    async def revoke_tokens(self) -> int:
        """Refuse every token issued so far; return how many were newly revoked."""
        async with self._store.write() as conn:
            result = await conn.execute(
                sa.update(t.issued_tokens)
                .where(t.issued_tokens.c.revoked == sa.false())
                .values(revoked=True)
            )
        return int(result.rowcount)
