"""FNG's databases (``state.databases``): what each one's application set-up screen holds,
its school and the two keys a vendor's calls must carry."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.sandbox import tables as t
from gateway.sandbox.fng.budget_rules import School
from gateway.sandbox.store import SandboxStore


def canonical_guid(value: str) -> str:
    """A GUID in FNG's canonical form (lower case, hyphenated); ValueError if it is not one."""
    return str(uuid.UUID(value.strip()))


def new_guid() -> str:
    """A fresh random key, as FNG and integrators issue them."""
    return str(uuid.uuid4())


async def require_database(conn: AsyncConnection, database_id: int) -> None:
    found = await conn.scalar(sa.select(t.databases.c.id).where(t.databases.c.id == database_id))
    if found is None:
        raise LookupError(f"no database {database_id}")


async def school(conn: AsyncConnection, database_id: int) -> School | None:
    """The school of a database, as the documents' headers name it."""
    db = t.databases
    row = (
        await conn.execute(
            sa.select(db.c.school_name, db.c.la_number, db.c.establishment_number).where(
                db.c.id == database_id
            )
        )
    ).first()
    if row is None:
        return None
    return School(row.school_name, row.la_number, row.establishment_number)


class Databases:
    """FNG's databases, each set up for one SIMS ID client with two keys."""

    def __init__(self, store: SandboxStore) -> None:
        self._store = store

    async def add(
        self,
        name: str,
        *,
        school_name: str,
        la_number: str,
        establishment_number: str,
        client_id: str,
        fng_key: str,
        partner_key: str,
    ) -> int:
        """Create an FNG database whose set-up grants ``client_id`` with the two keys."""
        if not (la_number.isdigit() and len(la_number) == 3):
            raise ValueError("an LA number has three digits")
        if not (establishment_number.isdigit() and len(establishment_number) == 4):
            raise ValueError("an establishment number has four digits")
        async with self._store.write() as conn:
            result = await conn.execute(
                sa.insert(t.databases).values(
                    name=name,
                    school_name=school_name,
                    la_number=la_number,
                    establishment_number=establishment_number,
                    client_id=client_id,
                    fng_key=canonical_guid(fng_key),
                    partner_key=canonical_guid(partner_key),
                )
            )
            key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    async def set_partner_key(self, database_id: int, partner_key: str) -> None:
        """Enter a new integrator key in the database's set-up (a key rotation)."""
        await self._set_key(database_id, partner_key=canonical_guid(partner_key))

    async def set_fng_key(self, database_id: int, fng_key: str) -> None:
        """Issue the database a new FNG key (X-PSK); the old one is refused from then on."""
        await self._set_key(database_id, fng_key=canonical_guid(fng_key))

    async def _set_key(self, database_id: int, **key: str) -> None:
        async with self._store.write() as conn:
            result = await conn.execute(
                sa.update(t.databases).where(t.databases.c.id == database_id).values(**key)
            )
            if result.rowcount != 1:
                raise LookupError(f"no database {database_id}")

    async def find(self, client_id: str, fng_key: str, partner_key: str) -> int | None:
        """The database whose set-up holds both keys for this client, if there is one."""
        try:
            fng, partner = canonical_guid(fng_key), canonical_guid(partner_key)
        except ValueError:
            return None
        async with self._store.read() as conn:
            found = await conn.scalar(
                sa.select(t.databases.c.id)
                .where(t.databases.c.fng_key == fng)
                .where(t.databases.c.partner_key == partner)
                .where(t.databases.c.client_id == client_id)
            )
        return None if found is None else int(found)
