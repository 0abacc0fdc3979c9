"""Rotating every credential without a failed call.

**Partner keys** (ours, sent as X-Client-Id and presented by legacy callers as the database
key): ``rotate`` issues a ``next`` key, shown once, which callers may use at once; the
operator enters it in FNG's set-up screen; ``promote`` (or the gateway itself, the first time
FNG refuses the active key and accepts ``next``) makes it ``active`` and the old key
``retiring``: still accepted from callers until its deadline, refused after.

**FNG keys** (FNG's, sent as X-PSK): a replacement FNG issues is stored as ``next``; the
gateway tries it when FNG refuses the current one, and keeps it once FNG accepts it (or the
operator promotes it).

**Account passwords**: a new password is accepted at once and the old one until a deadline,
so integrations can change over without a refused call.

Every step is audited (who, what, when), never with the secret.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from gateway.errors import NotFound, RegistryError
from gateway.store import Store
from gateway.store.tables import accounts, databases, partner_keys
from gateway.tenancy.keys import new_key, normalise_key
from gateway.tenancy.model import KeyState
from gateway.tenancy.passwords import generate_password, hash_password
from gateway.tenancy.records import audit, partner_key_row
from gateway.tenancy.secrets import SecretBox
from gateway.tenancy.service import TenancyAdmin, insert_unique, require


def _now() -> datetime:
    return datetime.now(UTC)


class KeyRotation:
    def __init__(self, store: Store, box: SecretBox, actor: str) -> None:
        self._store = store
        self._box = box
        self.actor = actor

    # -- partner keys ------------------------------------------------------------------------

    async def rotate_partner_key(self, database_id: int, key: str | None = None) -> str:
        """Issue the database's ``next`` key (or take the one given) and return it, once."""
        value = normalise_key(key) if key is not None else new_key()
        if value is None:
            raise RegistryError("a partner key must be a GUID")
        async with self._store.write() as conn:
            await require(conn, databases, database_id, "database")
            pending = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(partner_keys)
                .where(
                    partner_keys.c.database_id == database_id,
                    partner_keys.c.state == KeyState.NEXT.value,
                )
            )
            if pending:
                raise RegistryError(
                    f"database {database_id} already has a next key: promote or cancel it first"
                )
            await insert_unique(
                conn,
                partner_keys.insert().values(
                    partner_key_row(self._box, database_id, value, KeyState.NEXT, at=_now())
                ),
                "that partner key",
            )
            await audit(conn, self.actor, "partner_key.rotate", f"database:{database_id}")
        return value

    async def promote_partner_key(self, database_id: int, grace: timedelta) -> datetime:
        """``next`` becomes ``active``; the active key retires at now + ``grace``."""
        deadline = _now() + grace
        async with self._store.write() as conn:
            await require(conn, databases, database_id, "database")
            if not await self._promote_partner(conn, database_id, deadline):
                raise RegistryError(f"database {database_id} has no next key to promote")
            await audit(
                conn,
                self.actor,
                "partner_key.promote",
                f"database:{database_id}",
                retire_at=deadline.isoformat(),
            )
        return deadline

    async def _promote_partner(self, conn: Any, database_id: int, deadline: datetime) -> bool:
        now = _now()
        # Keys whose deadline has passed are gone for good.
        await conn.execute(
            partner_keys.delete().where(
                partner_keys.c.database_id == database_id,
                partner_keys.c.state == KeyState.RETIRING.value,
                partner_keys.c.retire_at <= now,
            )
        )
        has_next = await conn.scalar(
            sa.select(partner_keys.c.id).where(
                partner_keys.c.database_id == database_id,
                partner_keys.c.state == KeyState.NEXT.value,
            )
        )
        if has_next is None:
            return False
        await conn.execute(
            partner_keys.update()
            .where(
                partner_keys.c.database_id == database_id,
                partner_keys.c.state == KeyState.ACTIVE.value,
            )
            .values(state=KeyState.RETIRING.value, retire_at=deadline)
        )
        await conn.execute(
            partner_keys.update()
            .where(partner_keys.c.id == has_next)
            .values(state=KeyState.ACTIVE.value, retire_at=None)
        )
        return True

    async def cancel_partner_key(self, database_id: int) -> None:
        async with self._store.write() as conn:
            gone = await conn.execute(
                partner_keys.delete().where(
                    partner_keys.c.database_id == database_id,
                    partner_keys.c.state == KeyState.NEXT.value,
                )
            )
            if gone.rowcount != 1:
                raise RegistryError(f"database {database_id} has no next key")
            await audit(conn, self.actor, "partner_key.cancel", f"database:{database_id}")

    async def retire_now(self, database_id: int) -> None:
        """End the retiring key's grace at once (it is refused from now on)."""
        async with self._store.write() as conn:
            await conn.execute(
                partner_keys.update()
                .where(
                    partner_keys.c.database_id == database_id,
                    partner_keys.c.state == KeyState.RETIRING.value,
                )
                .values(retire_at=_now())
            )
            await audit(conn, self.actor, "partner_key.retire", f"database:{database_id}")

    async def partner_keys(self, database_id: int) -> list[dict[str, Any]]:
        """The database's keys, without their values: a short fingerprint tells them apart."""
        async with self._store.read() as conn:
            await require(conn, databases, database_id, "database")
            rows = await conn.execute(
                sa.select(partner_keys)
                .where(partner_keys.c.database_id == database_id)
                .order_by(partner_keys.c.id)
            )
            return [
                {
                    "state": row.state,
                    "fingerprint": row.digest[:12],
                    "created_at": row.created_at.isoformat(),
                    "retire_at": row.retire_at.isoformat() if row.retire_at else None,
                }
                for row in rows
            ]

    # -- FNG keys ----------------------------------------------------------------------------

    async def set_next_fng_key(self, database_id: int, key: str) -> None:
        """FNG's next key for a database, checked as every FNG key is (see
        :meth:`TenancyAdmin.set_next_fng_key`)."""
        await TenancyAdmin(self._store, self._box, self.actor).set_next_fng_key(database_id, key)

    async def promote_fng_key(self, database_id: int) -> None:
        async with self._store.write() as conn:
            await require(conn, databases, database_id, "database")
            if not await self._promote_fng(conn, database_id):
                raise RegistryError(f"database {database_id} has no next FNG key")
            await audit(conn, self.actor, "fng_key.promote", f"database:{database_id}")

    async def _promote_fng(self, conn: Any, database_id: int) -> bool:
        promoted = await conn.execute(
            databases.update()
            .where(databases.c.id == database_id, databases.c.fng_key_next_enc.is_not(None))
            .values(fng_key_enc=databases.c.fng_key_next_enc, fng_key_next_enc=None)
        )
        return bool(promoted.rowcount == 1)

    async def promote_accepted(
        self, database_id: int, *, fng_key: bool, partner_key: bool, grace: timedelta
    ) -> None:
        """FNG has just accepted the ``next`` key(s): make them current. Several replicas may
        learn it at once; promoting twice is harmless (the second finds nothing next)."""
        async with self._store.write() as conn:
            if fng_key and await self._promote_fng(conn, database_id):
                await audit(
                    conn,
                    self.actor,
                    "fng_key.promote",
                    f"database:{database_id}",
                    reason="FNG accepted the next FNG key",
                )
            if partner_key and await self._promote_partner(conn, database_id, _now() + grace):
                await audit(
                    conn,
                    self.actor,
                    "partner_key.promote",
                    f"database:{database_id}",
                    reason="FNG accepted the next partner key",
                )

    # -- account passwords --------------------------------------------------------------------

    async def change_password(
        self, username: str, overlap: timedelta, password: str | None = None
    ) -> str:
        """A new password, accepted at once; the old one is accepted for ``overlap`` more."""
        password = password or generate_password()
        if len(password) < 12:
            raise RegistryError("a password has at least 12 characters")
        password_hash = await asyncio.to_thread(hash_password, password)
        async with self._store.write() as conn:
            account = (
                await conn.execute(
                    sa.select(accounts.c.id, accounts.c.password_hash).where(
                        accounts.c.username == username
                    )
                )
            ).first()
            if account is None:
                raise NotFound(f"there is no account named {username!r}")
            current = account.password_hash
            await conn.execute(
                accounts.update()
                .where(accounts.c.id == account.id)
                .values(
                    password_hash=password_hash,
                    previous_password_hash=current if overlap > timedelta(0) else None,
                    previous_valid_until=_now() + overlap if overlap > timedelta(0) else None,
                )
            )
            await audit(
                conn,
                self.actor,
                "account.password",
                f"account:{account.id}",
                overlap_seconds=int(overlap.total_seconds()),
            )
        return password
