"""Schools in bulk, from a CSV file: ``fng-gateway schools import`` and the admin API.

The file is UTF-8 (a byte-order mark is allowed), comma-separated, with a header row naming
these ten columns, in any order::

    name,la_number,establishment_number,duns,language,currency,database,vendor,fng_key,partner_key

One row per school database: a school with two FNG databases has two rows with the same LA
and establishment numbers and different ``database`` names. ``duns``, ``language`` (default
``en``), ``currency`` (default ``GBP``) and ``partner_key`` (default: a generated one) may
be empty; ``vendor`` is the name of a registered vendor; ``fng_key`` and ``partner_key``
are GUIDs.

A school (LA number + establishment number) is created, or updated (name, DUNS, language,
currency). A database (school + name) is created with its FNG key and an active partner
key, or updated (FNG key, vendor). A partner key given for an existing database must be its
active key: rotating keys is ``fng-gateway keys rotate``, not an import.

Every row is checked, against the file and against the registry, before anything is
written; any problem refuses the whole file with every problem and its line (the header is
line 1). Then everything is written in one transaction, with one audit entry per school and
database created or updated and one for the import (never a secret).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store import Store
from gateway.store.tables import audit_log, databases, partner_keys, schools, vendors
from gateway.tenancy.identifiers import CURRENCY, DUNS, ESTABLISHMENT_NUMBER, LA_NUMBER, LANGUAGE
from gateway.tenancy.keys import key_digest, new_key, normalise_key
from gateway.tenancy.model import KeyState
from gateway.tenancy.secrets import SecretBox
from gateway.tenancy.service import RegistryError

#: The file's columns, as its header names them.
COLUMNS: Final = (
    "name",
    "la_number",
    "establishment_number",
    "duns",
    "language",
    "currency",
    "database",
    "vendor",
    "fng_key",
    "partner_key",
)
#: The columns that may be empty.
OPTIONAL: Final = frozenset({"duns", "language", "currency", "partner_key"})

#: Called as work goes on: the phase ("validating" or "writing"), rows done, rows in all.
Progress = Callable[[str, int, int], None]

#: What an import may change in a school that exists.
_SCHOOL_COLUMNS: Final = ("name", "duns", "language", "currency")
#: Rows written per batch of statements.
_CHUNK: Final = 100
#: Values per ``IN (...)``, well inside every backend's limit on parameters.
_IN_LIMIT: Final = 1000

_T = TypeVar("_T")


class BulkImportError(RegistryError):
    """A file refused as a whole: nothing was written. ``problems`` holds every
    ``(line, message)``, in line order; ``keyless`` the lines that would need a generated
    partner key when generating keys was not allowed."""

    code = "BULK_IMPORT_REFUSED"

    def __init__(self, problems: Iterable[tuple[int, str]], keyless: Iterable[int] = ()) -> None:
        self.problems = sorted(problems, key=lambda problem: problem[0])
        self.keyless = tuple(keyless)
        lines = len({line for line, _ in self.problems})
        # Rows without a key are told once, together, not once a row.
        listed = [
            f"  line {line}: {message}" for line, message in self.problems if message != KEYLESS
        ]
        if self.keyless:
            listed.append(f"  {_line_ranges(self.keyless)}: {KEYLESS}")
        super().__init__(
            f"{len(self.problems)} problem(s) on {lines} line(s); nothing was imported:\n"
            + "\n".join(listed)
        )


#: The problem of a new database's row without a partner key, when keys are not generated.
KEYLESS: Final = "partner_key is empty, and generated keys were not asked for"


def _line_ranges(lines: Iterable[int]) -> str:
    """``line 4``, ``lines 2, 4`` or ``lines 2-40, 45``."""
    ordered = sorted(set(lines))
    spans: list[list[int]] = []
    for line in ordered:
        if spans and line == spans[-1][1] + 1:
            spans[-1][1] = line
        else:
            spans.append([line, line])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
    return f"line {text}" if len(ordered) == 1 else f"lines {text}"


@dataclass(frozen=True, slots=True)
class SchoolRow:
    """One valid row of the file, keys normalised."""

    line: int
    name: str
    la_number: str
    establishment_number: str
    duns: str | None
    language: str
    currency: str
    database: str
    vendor: str
    fng_key: str = field(repr=False)
    partner_key: str | None = field(repr=False)

    @property
    def school(self) -> tuple[str, str]:
        return self.la_number, self.establishment_number

    @property
    def school_values(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "duns": self.duns,
            "language": self.language,
            "currency": self.currency,
        }


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    """A partner key the import generated: shown once, then only its digest is usable."""

    la_number: str
    establishment_number: str
    database: str
    database_id: int
    partner_key: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ImportReport:
    rows: int
    schools_created: int
    schools_updated: int
    schools_unchanged: int
    databases_created: int
    databases_updated: int
    databases_unchanged: int
    generated_keys: tuple[GeneratedKey, ...] = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """The counts, without any key."""
        return {
            "rows": self.rows,
            "schools": {
                "created": self.schools_created,
                "updated": self.schools_updated,
                "unchanged": self.schools_unchanged,
            },
            "databases": {
                "created": self.databases_created,
                "updated": self.databases_updated,
                "unchanged": self.databases_unchanged,
            },
            "generated_keys": len(self.generated_keys),
        }


# -- reading the file ----------------------------------------------------------------------------


def parse_school_rows(text: str) -> list[SchoolRow]:
    """The file's rows, checked on their own and against each other (not the registry).

    Raises :class:`BulkImportError` with every problem found. Blank lines are skipped.
    """
    rows, problems = _read_rows(text)
    if problems:
        raise BulkImportError(problems)
    return rows


def _read_rows(text: str) -> tuple[list[SchoolRow], list[tuple[int, str]]]:
    """The rows that are right on their own, and every problem; a wrong header raises."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise BulkImportError([(1, "the file is empty: it needs a header row")]) from None
    except csv.Error as exc:
        raise BulkImportError([(1, f"the header is not readable as CSV: {exc}")]) from None
    names = [name.strip().lower() for name in header]
    _check_header(names)

    problems: list[tuple[int, str]] = []
    rows: list[SchoolRow] = []
    while True:
        line = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append((line, f"not readable as CSV: {exc}"))
            continue
        if not any(value.strip() for value in record):
            continue
        if len(record) != len(names):
            problems.append(
                (line, f"{len(record)} values where the header has {len(names)} columns")
            )
            continue
        row, found = _row(line, {k: v.strip() for k, v in zip(names, record, strict=True)})
        problems.extend((line, message) for message in found)
        if row is not None:
            rows.append(row)
    if not rows and not problems:
        problems.append((1, "the file has a header but no rows"))
    problems.extend(_across_rows(rows))
    return rows, problems


def _check_header(names: list[str]) -> None:
    problems: list[str] = []
    missing = [column for column in COLUMNS if column not in names]
    if missing:
        problems.append(f"the header lacks {', '.join(missing)}")
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        problems.append(f"the header has unknown columns: {', '.join(map(repr, unknown))}")
    twice = sorted({name for name in names if names.count(name) > 1 and name in COLUMNS})
    if twice:
        problems.append(f"the header names {', '.join(twice)} more than once")
    if problems:
        expected = ",".join(COLUMNS)
        raise BulkImportError([(1, f"{problem} (expected {expected})") for problem in problems])


def _row(line: int, values: dict[str, str]) -> tuple[SchoolRow | None, list[str]]:
    problems = [
        f"{column} is empty" for column in COLUMNS if column not in OPTIONAL and not values[column]
    ]
    name, database, vendor = values["name"], values["database"], values["vendor"]
    if len(name) > 200:
        problems.append("the name is longer than 200 characters")
    if len(database) > 100:
        problems.append("the database name is longer than 100 characters")
    la, establishment = values["la_number"], values["establishment_number"]
    if la and not LA_NUMBER.fullmatch(la):
        problems.append(f"the LA number {la!r} is not 3 digits")
    if establishment and not ESTABLISHMENT_NUMBER.fullmatch(establishment):
        problems.append(f"the establishment number {establishment!r} is not 4 digits")
    duns = values["duns"] or None
    if duns is not None and not DUNS.fullmatch(duns):
        problems.append(f"the DUNS number {duns!r} is not 9 digits (or a 13-digit GLN)")
    language = values["language"] or "en"
    if not LANGUAGE.fullmatch(language):
        problems.append(f"the language {language!r} is not a code such as en or en-GB")
    currency = values["currency"] or "GBP"
    if not CURRENCY.fullmatch(currency):
        problems.append(f"the currency {currency!r} is not a three-letter code such as GBP")
    fng_key = normalise_key(values["fng_key"]) if values["fng_key"] else None
    if values["fng_key"] and fng_key is None:
        problems.append("fng_key is not a GUID")
    partner_key = normalise_key(values["partner_key"]) if values["partner_key"] else None
    if values["partner_key"] and partner_key is None:
        problems.append("partner_key is not a GUID")
    if problems or fng_key is None:
        return None, problems
    return SchoolRow(
        line=line,
        name=name,
        la_number=la,
        establishment_number=establishment,
        duns=duns,
        language=language,
        currency=currency,
        database=database,
        vendor=vendor,
        fng_key=fng_key,
        partner_key=partner_key,
    ), []


def _across_rows(rows: Sequence[SchoolRow]) -> Iterator[tuple[int, str]]:
    """Rows that contradict or repeat an earlier row."""
    first_school: dict[tuple[str, str], SchoolRow] = {}
    first_database: dict[tuple[str, str, str], int] = {}
    first_partner: dict[str, int] = {}
    first_fng: dict[str, int] = {}
    for row in rows:
        school = first_school.setdefault(row.school, row)
        differing = [
            column
            for column, value in row.school_values.items()
            if school.school_values[column] != value
        ]
        if differing:
            yield (
                row.line,
                f"school {_school(row)} has a different {', '.join(differing)} on line "
                f"{school.line}",
            )
        database = first_database.setdefault((*row.school, row.database), row.line)
        if database != row.line:
            yield (
                row.line,
                f"school {_school(row)}'s database {row.database!r} is also on line {database}",
            )
        if row.partner_key is not None:
            partner = first_partner.setdefault(row.partner_key, row.line)
            if partner != row.line:
                yield row.line, f"the partner key is also on line {partner}"
        fng = first_fng.setdefault(row.fng_key, row.line)
        if fng != row.line:
            yield row.line, f"the FNG key is also on line {fng}"


def _school(row: SchoolRow) -> str:
    return f"{row.la_number}/{row.establishment_number}"


# -- checking against the registry, and writing ----------------------------------------------------


@dataclass(slots=True)
class _School:
    """A school the file names: as the registry has it (if it does), and what changes."""

    first: SchoolRow
    school_id: int | None
    changed: dict[str, tuple[Any, Any]]


@dataclass(slots=True)
class _Database:
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
class _Plan:
    schools: dict[tuple[str, str], _School]
    rows: list[_Database]


async def import_schools(
    store: Store,
    box: SecretBox,
    actor: str,
    text: str,
    *,
    progress: Progress | None = None,
    generate_keys: bool = True,
    save_keys: Callable[[Sequence[GeneratedKey]], Awaitable[None]] | None = None,
) -> ImportReport:
    """Create or update every school and database the file names, or nothing.

    ``generate_keys=False`` refuses rows that would need a generated partner key.
    ``save_keys`` is given the generated keys inside the transaction, before it commits: if
    it raises, nothing is imported (so no key is stored that nobody was shown).
    """
    rows, problems = _read_rows(text)
    try:
        async with store.write() as conn:
            plan = await _plan(conn, box, rows, problems, generate_keys, progress)
            report = await _write(conn, box, actor, plan, text, progress)
            if save_keys is not None and report.generated_keys:
                try:
                    await save_keys(report.generated_keys)
                except OSError as exc:
                    raise RegistryError(
                        f"the generated keys could not be saved ({exc.strerror or exc}); "
                        "nothing was imported"
                    ) from None
    except IntegrityError:
        # Someone else changed the registry between the checks and the writes.
        raise RegistryError(
            "the registry changed while the file was imported; nothing was imported: try again"
        ) from None
    return report


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
            for chunk in _chunks(sorted({row.la_number for row in rows}))
            for school in await conn.execute(
                sa.select(
                    schools.c.id,
                    schools.c.la_number,
                    schools.c.establishment_number,
                    *(schools.c[column] for column in _SCHOOL_COLUMNS),
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
            for chunk in _chunks(sorted(digests.values()))
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


async def _plan(
    conn: AsyncConnection,
    box: SecretBox,
    rows: Sequence[SchoolRow],
    problems: list[tuple[int, str]],
    generate_keys: bool,
    progress: Progress | None,
) -> _Plan:
    """Every row checked against the registry: what to write, or every problem (the file's
    own ``problems`` first). A row wrong on its own is not checked against the registry."""
    snapshot = await _Snapshot.read(conn, box, rows)
    keyless: list[int] = []
    plan = _Plan({}, [])
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


def _school_plan(row: SchoolRow, snapshot: _Snapshot) -> _School:
    found = snapshot.schools.get(row.school)
    if found is None:
        return _School(row, None, {})
    changed = {
        column: (getattr(found, column), value)
        for column, value in row.school_values.items()
        if getattr(found, column) != value
    }
    return _School(row, found.id, changed)


def _database_plan(
    row: SchoolRow, school: _School, snapshot: _Snapshot, generate_keys: bool
) -> tuple[_Database, list[str]]:
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
    item = _Database(row, vendor_id or 0, existing.id if existing is not None else None)
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


class _Audit:
    """The import's audit entries, written together; each names the import."""

    def __init__(self, actor: str, now: datetime) -> None:
        self.actor = actor
        self.now = now
        self.batch = uuid.uuid4().hex[:12]
        self.entries: list[dict[str, Any]] = []

    def __call__(self, action: str, subject: str, **detail: Any) -> None:
        self.entries.append(
            {
                "at": self.now,
                "actor": self.actor,
                "action": action,
                "subject": subject,
                "detail": json.dumps({**detail, "import": self.batch}, sort_keys=True),
            }
        )


async def _write(
    conn: AsyncConnection,
    box: SecretBox,
    actor: str,
    plan: _Plan,
    text: str,
    progress: Progress | None,
) -> ImportReport:
    now = datetime.now(UTC)
    audit = _Audit(actor, now)
    generated: list[GeneratedKey] = []
    written = 0
    for chunk in _chunks(plan.rows, _CHUNK):
        await _write_schools(conn, plan, chunk, audit)
        generated.extend(await _write_databases(conn, box, plan, chunk, audit))
        written += len(chunk)
        if progress is not None:
            progress("writing", written, len(plan.rows))

    actions = [entry["action"] for entry in audit.entries]
    schools_created, schools_updated = actions.count("school.add"), actions.count("school.update")
    databases_created = actions.count("database.add")
    databases_updated = actions.count("database.update")
    report = ImportReport(
        rows=len(plan.rows),
        schools_created=schools_created,
        schools_updated=schools_updated,
        schools_unchanged=len(plan.schools) - schools_created - schools_updated,
        databases_created=databases_created,
        databases_updated=databases_updated,
        databases_unchanged=len(plan.rows) - databases_created - databases_updated,
        generated_keys=tuple(generated),
    )
    # The file's digest says which file it was; its GUIDs make it impossible to reverse.
    audit(
        "schools.import",
        "schools",
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        **report.summary(),
    )
    for part in _chunks(audit.entries, _CHUNK * 4):
        await conn.execute(audit_log.insert(), part)
    return report


async def _write_schools(
    conn: AsyncConnection, plan: _Plan, chunk: Sequence[_Database], audit: _Audit
) -> None:
    """The chunk's schools, each at its first row: created, or updated if changed."""
    firsts = [
        school for item in chunk if (school := plan.schools[item.row.school]).first is item.row
    ]
    new = [school for school in firsts if school.school_id is None]
    if new:
        created = await conn.execute(
            schools.insert().returning(schools.c.id, sort_by_parameter_order=True),
            [
                {
                    **school.first.school_values,
                    "la_number": school.first.la_number,
                    "establishment_number": school.first.establishment_number,
                    "created_at": audit.now,
                }
                for school in new
            ],
        )
        for school, school_id in zip(new, created.scalars(), strict=True):
            school.school_id = school_id
            audit(
                "school.add",
                f"school:{school_id}",
                name=school.first.name,
                la_number=school.first.la_number,
                establishment_number=school.first.establishment_number,
            )
    changed = [school for school in firsts if school.changed]
    if changed:
        await conn.execute(
            schools.update()
            .where(schools.c.id == sa.bindparam("b_id"))
            .values({column: sa.bindparam(f"b_{column}") for column in _SCHOOL_COLUMNS}),
            [
                {
                    "b_id": school.school_id,
                    **{
                        f"b_{column}": value for column, value in school.first.school_values.items()
                    },
                }
                for school in changed
            ],
        )
        for school in changed:
            audit(
                "school.update",
                f"school:{school.school_id}",
                changed={column: list(values) for column, values in school.changed.items()},
            )


async def _write_databases(
    conn: AsyncConnection,
    box: SecretBox,
    plan: _Plan,
    chunk: Sequence[_Database],
    audit: _Audit,
) -> list[GeneratedKey]:
    """The chunk's databases: created with their partner keys, or updated if changed."""
    new = [item for item in chunk if item.database_id is None]
    changed = [
        item
        for item in chunk
        if item.database_id is not None and (item.fng_key_changed or item.old_vendor_id is not None)
    ]
    generated: list[GeneratedKey] = []
    if new:
        created = await conn.execute(
            databases.insert().returning(databases.c.id, sort_by_parameter_order=True),
            [
                {
                    "school_id": plan.schools[item.row.school].school_id,
                    "vendor_id": item.vendor_id,
                    "name": item.row.database,
                    "fng_key_enc": box.encrypt(item.row.fng_key),
                    "created_at": audit.now,
                }
                for item in new
            ],
        )
        keys: list[dict[str, Any]] = []
        for item, database_id in zip(new, created.scalars(), strict=True):
            item.database_id = database_id
            assert item.new_partner_key is not None  # given or generated, else refused
            keys.append(
                {
                    "database_id": database_id,
                    "digest": key_digest(item.new_partner_key),
                    "key_enc": box.encrypt(item.new_partner_key),
                    "state": KeyState.ACTIVE.value,
                    "created_at": audit.now,
                }
            )
            audit(
                "database.add",
                f"database:{database_id}",
                school_id=plan.schools[item.row.school].school_id,
                vendor_id=item.vendor_id,
                name=item.row.database,
                partner_key="generated" if item.generated else "given",
            )
            if item.generated:
                generated.append(
                    GeneratedKey(
                        la_number=item.row.la_number,
                        establishment_number=item.row.establishment_number,
                        database=item.row.database,
                        database_id=database_id,
                        partner_key=item.new_partner_key,
                    )
                )
        await conn.execute(partner_keys.insert(), keys)
    if changed:
        await conn.execute(
            databases.update()
            .where(databases.c.id == sa.bindparam("b_id"))
            .values(
                vendor_id=sa.bindparam("b_vendor_id"),
                fng_key_enc=sa.bindparam("b_fng_key_enc"),
                fng_key_next_enc=sa.bindparam("b_fng_key_next_enc"),
            ),
            [
                {
                    "b_id": item.database_id,
                    "b_vendor_id": item.vendor_id,
                    "b_fng_key_enc": box.encrypt(item.row.fng_key),
                    "b_fng_key_next_enc": item.fng_key_next_enc,
                }
                for item in changed
            ],
        )
        for item in changed:
            detail: dict[str, Any] = {
                "changed": [
                    name
                    for name, flag in (
                        ("fng_key", item.fng_key_changed),
                        ("vendor", item.old_vendor_id is not None),
                    )
                    if flag
                ]
            }
            if item.old_vendor_id is not None:
                detail["vendor_id"] = [item.old_vendor_id, item.vendor_id]
            audit("database.update", f"database:{item.database_id}", **detail)
    return generated


def _chunks(items: Sequence[_T], size: int = _IN_LIMIT) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
