"""Planning an import: every row checked against the registry, and what to write decided,
before anything is written."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.tables import databases, partner_keys, schools, vendors
from gateway.tenancy.bulk.read import KEYLESS, SCHOOL_COLUMNS, BulkImportError, SchoolRow
from gateway.tenancy.keys import key_digest, new_key
from gateway.tenancy.model import KeyState
from gateway.tenancy.secrets import SecretBox

#: Called as work goes on: the phase ("validating" or "writing"), rows done, rows in all.
Progress = Callable[[str, int, int], None]

#: Values per ``IN (...)``, well inside every backend's limit on parameters.
IN_LIMIT: Final = 1000

_T = TypeVar("_T")


@dataclass(slots=True)
class SchoolPlan:
    """A school the file names: as the registry has it (if it does), and what changes."""

    first: SchoolRow
    school_id: int | None
    changed: dict[str, tuple[Any, Any]]


@dataclass(slots=True)
class DatabasePlan:
    row: SchoolRow
    vendor_id: int
    database_id: int | None = None
    fng_key_changed: bool = False
    #: The pending next FNG key, kept unless the file's key is it (then FNG has promoted it).
    fng_key_next_enc: str | None = None
    old_vendor_id: int | None = None
    #: The partner key to store for a new database (given, or generated).
    new_partner_key: str | None = field(default=None, repr=False)
    generated: bool = False


@dataclass(slots=True)
class Plan:
    schools: dict[tuple[str, str], SchoolPlan]
    rows: list[DatabasePlan]

    def school_id(self, row: SchoolRow) -> int:
        """The id of the row's school, once it is stored (its first row writes it)."""
        school_id = self.schools[row.school].school_id
        assert school_id is not None
        return school_id


@dataclass(slots=True)
class _Snapshot:
    """What the registry holds that the file's rows touch, read in a few queries."""

    vendor_ids: dict[str, int]
    schools: dict[tuple[str, str], Any]
    databases: dict[tuple[int, str], Any]
    #: Decrypted FNG keys (current and next) by database id, and who holds each.
    fng_keys: dict[int, tuple[str, str | None]]
    fng_owner: dict[str, Any]
    #: The file's partner keys' digests, and the databases holding those already stored.
    digests: dict[str, str]
    key_owner: dict[str, Any]

    @classmethod
    async def read(
        cls, conn: AsyncConnection, box: SecretBox, rows: Sequence[SchoolRow]
    ) -> _Snapshot:
        vendor_ids = {
            name: vendor_id
            for vendor_id, name in await conn.execute(sa.select(vendors.c.id, vendors.c.name))
        }
        found_schools = {
            (school.la_number, school.establishment_number): school
            for chunk in chunks(sorted({row.la_number for row in rows}))
            for school in await conn.execute(
                sa.select(
                    schools.c.id,
                    schools.c.la_number,
                    schools.c.establishment_number,
                    *(schools.c[column] for column in SCHOOL_COLUMNS),
                ).where(schools.c.la_number.in_(chunk))
            )
        }
        # Every database, not only the file's: an FNG key belongs to one database only.
        found_databases: dict[tuple[int, str], Any] = {}
        fng_keys: dict[int, tuple[str, str | None]] = {}
        fng_owner: dict[str, Any] = {}
        for database in await conn.execute(
            sa.select(
                databases.c.id,
                databases.c.school_id,
                databases.c.name,
                databases.c.vendor_id,
                databases.c.fng_key_enc,
                databases.c.fng_key_next_enc,
                schools.c.la_number,
                schools.c.establishment_number,
            ).join_from(databases, schools, databases.c.school_id == schools.c.id)
        ):
            found_databases[(database.school_id, database.name)] = database
            current = box.decrypt(database.fng_key_enc).get_secret_value()
            pending = (
                box.decrypt(database.fng_key_next_enc).get_secret_value()
                if database.fng_key_next_enc is not None
                else None
            )
            fng_keys[database.id] = current, pending
            for key in (current, pending):
                if key is not None:
                    fng_owner.setdefault(key, database)
        digests = {row.partner_key: key_digest(row.partner_key) for row in rows if row.partner_key}
        key_owner = {
            key.digest: key
            for chunk in chunks(sorted(digests.values()))
            for key in await conn.execute(
                sa.select(
                    partner_keys.c.digest,
                    partner_keys.c.database_id,
                    partner_keys.c.state,
                    databases.c.name,
                    schools.c.la_number,
                    schools.c.establishment_number,
                )
                .join_from(partner_keys, databases, partner_keys.c.database_id == databases.c.id)
                .join(schools, databases.c.school_id == schools.c.id)
                .where(partner_keys.c.digest.in_(chunk))
            )
        }
        return cls(
            vendor_ids, found_schools, found_databases, fng_keys, fng_owner, digests, key_owner
        )


async def plan_import(
    conn: AsyncConnection,
    box: SecretBox,
    rows: Sequence[SchoolRow],
    problems: list[tuple[int, str]],
    generate_keys: bool,
    progress: Progress | None,
) -> Plan:
    """Every row checked against the registry: what to write, or every problem (the file's
    own ``problems`` first). A row wrong on its own is not checked against the registry."""
    snapshot = await _Snapshot.read(conn, box, rows)
    keyless: list[int] = []
    plan = Plan({}, [])
    for done, row in enumerate(rows, 1):
        school = plan.schools.get(row.school)
        if school is None:
            school = plan.schools[row.school] = _school_plan(row, snapshot)
        item, found = _database_plan(row, school, snapshot, generate_keys)
        problems.extend((row.line, message) for message in found)
        if item.new_partner_key is None and item.database_id is None:
            keyless.append(row.line)
            problems.append((row.line, KEYLESS))
        plan.rows.append(item)
        if progress is not None:
            progress("validating", done, len(rows))
    if problems:
        raise BulkImportError(problems, keyless)
    return plan


def _school_plan(row: SchoolRow, snapshot: _Snapshot) -> SchoolPlan:
    found = snapshot.schools.get(row.school)
    if found is None:
        return SchoolPlan(row, None, {})
    changed = {
        column: (getattr(found, column), value)
        for column, value in row.school_values.items()
        if getattr(found, column) != value
    }
    return SchoolPlan(row, found.id, changed)


def _database_plan(
    row: SchoolRow, school: SchoolPlan, snapshot: _Snapshot, generate_keys: bool
) -> tuple[DatabasePlan, list[str]]:
    """What to do with one row's database, and what is wrong with it."""
    problems: list[str] = []
    vendor_id = snapshot.vendor_ids.get(row.vendor)
    if vendor_id is None:
        problems.append(f"there is no vendor named {row.vendor!r}")
    existing = (
        snapshot.databases.get((school.school_id, row.database))
        if school.school_id is not None
        else None
    )
    item = DatabasePlan(row, vendor_id or 0, existing.id if existing is not None else None)
    owner = snapshot.fng_owner.get(row.fng_key)
    if owner is not None and owner.id != item.database_id:
        problems.append(f"the FNG key is already {_named(owner)}'s")
    if existing is not None:
        current, pending = snapshot.fng_keys[existing.id]
        item.fng_key_changed = current != row.fng_key
        # The file's key is the pending one: FNG has moved to it, so it is pending no more.
        item.fng_key_next_enc = existing.fng_key_next_enc if pending != row.fng_key else None
        if vendor_id is not None and vendor_id != existing.vendor_id:
            item.old_vendor_id = existing.vendor_id

    if row.partner_key is None:
        if existing is None and generate_keys:
            item.new_partner_key, item.generated = new_key(), True
        return item, problems
    holder = snapshot.key_owner.get(snapshot.digests[row.partner_key])
    if existing is None:
        if holder is not None:
            problems.append(f"the partner key is already {_named(holder)}'s")
        item.new_partner_key = row.partner_key
    elif holder is None:
        problems.append(
            f"the partner key is not {_named(existing)}'s active key: keys are rotated with "
            "`fng-gateway keys rotate`, not an import"
        )
    elif holder.database_id != existing.id:
        problems.append(f"the partner key is already {_named(holder)}'s")
    elif holder.state != KeyState.ACTIVE.value:
        problems.append(
            f"the partner key is {_named(holder)}'s {holder.state} key, not its active one: "
            "use `fng-gateway keys`, not an import"
        )
    return item, problems


def _named(found: Any) -> str:
    return f"database {found.name!r} of school {found.la_number}/{found.establishment_number}"


def chunks(items: Sequence[_T], size: int = IN_LIMIT) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
