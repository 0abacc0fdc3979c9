"""Writing an import's plan: in batches, with one audit entry per school and database created
or updated and one for the import. Rows and audit entries are made as the operators'
functions make them (:mod:`gateway.tenancy.records`)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.tables import audit_log, databases, partner_keys, schools
from gateway.tenancy.bulk.plan import DatabasePlan, Plan, Progress, chunks
from gateway.tenancy.bulk.read import SCHOOL_COLUMNS
from gateway.tenancy.model import KeyState
from gateway.tenancy.records import audit_entry, database_row, partner_key_row, school_row
from gateway.tenancy.secrets import SecretBox

#: Rows written per batch of statements.
CHUNK: Final = 100


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


class _Audit:
    """The import's audit entries, written together; each names the import."""

    def __init__(self, actor: str, now: datetime) -> None:
        self.actor = actor
        self.now = now
        self.batch = uuid.uuid4().hex[:12]
        self.entries: list[dict[str, Any]] = []

    def __call__(self, action: str, subject: str, **detail: Any) -> None:
        self.entries.append(
            audit_entry(
                self.actor, action, subject, at=self.now, **{**detail, "import": self.batch}
            )
        )


async def write_import(
    conn: AsyncConnection,
    box: SecretBox,
    actor: str,
    plan: Plan,
    text: str,
    progress: Progress | None,
) -> ImportReport:
    now = datetime.now(UTC)
    audit = _Audit(actor, now)
    generated: list[GeneratedKey] = []
    written = 0
    for chunk in chunks(plan.rows, CHUNK):
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
    for part in chunks(audit.entries, CHUNK * 4):
        await conn.execute(audit_log.insert(), part)
    return report


async def _write_schools(
    conn: AsyncConnection, plan: Plan, chunk: Sequence[DatabasePlan], audit: _Audit
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
                school_row(
                    **school.first.school_values,
                    la_number=school.first.la_number,
                    establishment_number=school.first.establishment_number,
                    at=audit.now,
                )
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
            .values({column: sa.bindparam(f"b_{column}") for column in SCHOOL_COLUMNS}),
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
    plan: Plan,
    chunk: Sequence[DatabasePlan],
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
                database_row(
                    box,
                    school_id=plan.school_id(item.row),
                    vendor_id=item.vendor_id,
                    name=item.row.database,
                    fng_key=item.row.fng_key,
                    at=audit.now,
                )
                for item in new
            ],
        )
        keys: list[dict[str, Any]] = []
        for item, database_id in zip(new, created.scalars(), strict=True):
            item.database_id = database_id
            assert item.new_partner_key is not None  # given or generated, else refused
            keys.append(
                partner_key_row(
                    box, database_id, item.new_partner_key, KeyState.ACTIVE, at=audit.now
                )
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
