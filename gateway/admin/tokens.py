"""Operators' bearer tokens for the admin API: random, shown once, stored as SHA-256 only."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa

from gateway.errors import NotFound
from gateway.store import Store
from gateway.store.tables import admin_tokens
from gateway.tenancy.identifiers import TOKEN_NAME, check
from gateway.tenancy.records import audit
from gateway.tenancy.service import insert_unique

PREFIX: Final = "fgwa_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AdminTokens:
    def __init__(self, store: Store, actor: str) -> None:
        self._store = store
        self.actor = actor

    async def create(self, name: str) -> str:
        """A new token for operator ``name``; this is the only time it is seen."""
        check(TOKEN_NAME, name)  # the --actor rule: it names the operator in the audit log
        token = PREFIX + secrets.token_urlsafe(32)
        async with self._store.write() as conn:
            await insert_unique(
                conn,
                admin_tokens.insert().values(
                    name=name, digest=_digest(token), created_at=datetime.now(UTC)
                ),
                f"a token named {name!r}",
            )
            await audit(conn, self.actor, "admin_token.create", f"admin_token:{name}")
        return token

    async def revoke(self, name: str) -> None:
        async with self._store.write() as conn:
            revoked = await conn.execute(
                admin_tokens.update()
                .where(admin_tokens.c.name == name, admin_tokens.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            if revoked.rowcount != 1:
                raise NotFound(f"there is no live token named {name!r}")
            await audit(conn, self.actor, "admin_token.revoke", f"admin_token:{name}")

    async def list(self) -> list[dict[str, Any]]:
        async with self._store.read() as conn:
            rows = await conn.execute(sa.select(admin_tokens).order_by(admin_tokens.c.id))
            return [
                {
                    "name": row.name,
                    "created_at": row.created_at.isoformat(),
                    "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
                    "revoked": row.revoked_at is not None,
                }
                for row in rows
            ]

    async def verify(self, token: str) -> str | None:
        """The operator's name if ``token`` is live, else None."""
        if not token.startswith(PREFIX) or len(token) > 200:
            return None
        digest = _digest(token)
        async with self._store.read() as conn:
            row = (
                await conn.execute(
                    sa.select(admin_tokens.c.name, admin_tokens.c.digest).where(
                        admin_tokens.c.digest == digest, admin_tokens.c.revoked_at.is_(None)
                    )
                )
            ).first()
        if row is None or not hmac.compare_digest(row.digest, digest):
            return None
        async with self._store.write() as conn:
            await conn.execute(
                admin_tokens.update()
                .where(admin_tokens.c.digest == digest)
                .values(last_used_at=datetime.now(UTC))
            )
        return str(row.name)
