"""Journals in FNG (``state.journals``): payment systems and their code mappings, the
banks' ledgers, posted journals and audit messages.

A journal is checked against the ledger and posted in one write transaction, so two
journals can never both be posted against the same ledger.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.sandbox import tables as t
from gateway.sandbox.fng.journal_rules import (
    MAPPING_KINDS,
    SECTIONS,
    BankLedger,
    Journal,
    LedgerView,
    RuleError,
    add,
    check,
)
from gateway.sandbox.stats import SandboxStats
from gateway.sandbox.store import SandboxStore


@dataclass(frozen=True, slots=True)
class PostOutcome:
    """The result of posting a journal: the broken rules, or nothing when it was posted."""

    errors: tuple[RuleError, ...]

    @property
    def posted(self) -> bool:
        return not self.errors


class Journals:
    """The journal interface's side of FNG."""

    def __init__(self, store: SandboxStore, stats: SandboxStats) -> None:
        self._store = store
        self._stats = stats

    async def add_payment_system(
        self,
        database_id: int,
        system_identifier: str,
        name: str,
        mappings: Mapping[str, Mapping[str, str]],
    ) -> int:
        """Set up a payment system and its code mappings (kind → its code → FMS code)."""
        unknown = set(mappings) - set(MAPPING_KINDS)
        if unknown:
            raise ValueError(f"unknown mapping kinds: {', '.join(sorted(unknown))}")
        async with self._store.write() as conn:
            result = await conn.execute(
                sa.insert(t.payment_systems).values(
                    database_id=database_id, system_identifier=system_identifier, name=name
                )
            )
            assert result.inserted_primary_key is not None
            ps_id = int(result.inserted_primary_key[0])
            rows = [
                {"payment_system_id": ps_id, "kind": kind, "code": code, "fms_code": fms_code}
                for kind, codes in mappings.items()
                for code, fms_code in codes.items()
            ]
            if rows:
                await conn.execute(sa.insert(t.code_mappings), rows)
            banks = [
                {"payment_system_id": ps_id, "bank": code} for code in mappings.get("bank", {})
            ]
            if banks:
                await conn.execute(sa.insert(t.bank_ledgers), banks)
        return ps_id

    async def banks(
        self, database_id: int, system_identifier: str
    ) -> list[tuple[str, BankLedger]] | None:
        """Each mapped bank of a payment system with its ledger; None if it is unknown."""
        async with self._store.read() as conn:
            ps_id = await _payment_system_id(conn, database_id, system_identifier)
            if ps_id is None:
                return None
            found = await _ledgers(conn, ps_id)
            codes = (
                await conn.scalars(
                    sa.select(t.code_mappings.c.code)
                    .where(t.code_mappings.c.payment_system_id == ps_id)
                    .where(t.code_mappings.c.kind == "bank")
                    .order_by(t.code_mappings.c.code)
                )
            ).all()
        return [(code, found.get(code, BankLedger())) for code in codes]

    async def post(self, database_id: int, journal: Journal) -> PostOutcome:
        """Check a journal against the ledger and, if it breaks no rule, post all of it."""
        async with self._store.write() as conn:
            ps_id = await _payment_system_id(conn, database_id, journal.system_identifier)
            view = None if ps_id is None else await _ledger_view(conn, ps_id, journal)
            errors = check(journal, view)
            if errors or ps_id is None or view is None:
                return PostOutcome(tuple(errors))
            await _post(conn, ps_id, journal, view)
        self._stats.posted_submissions += 1
        self._stats.journal_lines += journal.lines
        return PostOutcome(())

    async def add_audit_message(self, database_id: int, client_id: str, message: str) -> None:
        async with self._store.write() as conn:
            await conn.execute(
                sa.insert(t.audit_messages).values(
                    database_id=database_id,
                    client_id=client_id,
                    received_at=t.now_iso(),
                    message=message,
                )
            )
        self._stats.audit_messages += 1

    async def posted(self) -> list[dict[str, Any]]:
        """Every posted submission with its lines, oldest first."""
        s, ps, jl = t.submissions, t.payment_systems, t.journal_lines
        async with self._store.read() as conn:
            heads = (
                await conn.execute(
                    sa.select(
                        s.c.id,
                        ps.c.database_id,
                        ps.c.system_identifier,
                        s.c.submission_id,
                        s.c.posted_at,
                        s.c.transaction_line_count,
                        s.c.requested_by,
                        s.c.source,
                    )
                    .join(ps, ps.c.id == s.c.payment_system_id)
                    .order_by(s.c.id)
                )
            ).all()
            lines = (await conn.execute(sa.select(jl).order_by(jl.c.id))).all()
        by_submission: dict[int, list[dict[str, Any]]] = {}
        for line in lines:
            by_submission.setdefault(line.submission_row, []).append(
                {
                    "bank": line.bank,
                    "section": line.section,
                    "id": line.transaction_id,
                    "gross_amount": line.gross_amount,
                    "code": line.code,
                    "vat_code": line.vat_code,
                    "attributes": json.loads(line.attributes),
                }
            )
        return [
            {
                "database_id": head.database_id,
                "system_identifier": head.system_identifier,
                "submission_id": head.submission_id,
                "posted_at": head.posted_at,
                "transaction_line_count": head.transaction_line_count,
                "requested_by": head.requested_by,
                "source": head.source,
                "lines": by_submission.get(head.id, []),
            }
            for head in heads
        ]

    async def audit_messages(self) -> list[dict[str, Any]]:
        a = t.audit_messages
        async with self._store.read() as conn:
            rows = (await conn.execute(sa.select(a).order_by(a.c.id))).all()
        return [
            {
                "database_id": row.database_id,
                "client_id": row.client_id,
                "received_at": row.received_at,
                "message": row.message,
            }
            for row in rows
        ]


# -- the ledger, inside a transaction the caller holds -----------------------------------


#: Section name → its row-version column in ``bank_ledgers``.
_SECTION_COLUMNS: Final[Mapping[str, str]] = {
    "Orders": "orders",
    "Settlements": "settlements",
    "OrderReversals": "order_reversals",
    "SettlementReversals": "settlement_reversals",
}


async def _payment_system_id(
    conn: AsyncConnection, database_id: int, system_identifier: str
) -> int | None:
    found = await conn.scalar(
        sa.select(t.payment_systems.c.id)
        .where(t.payment_systems.c.database_id == database_id)
        .where(t.payment_systems.c.system_identifier == system_identifier)
    )
    return None if found is None else int(found)


async def _ledgers(conn: AsyncConnection, ps_id: int) -> dict[str, BankLedger]:
    """Each mapped bank's row versions and net."""
    bl = t.bank_ledgers
    rows = (await conn.execute(sa.select(bl).where(bl.c.payment_system_id == ps_id))).all()
    return {
        row.bank: BankLedger(
            row_versions={name: getattr(row, col) for name, col in _SECTION_COLUMNS.items()},
            net=Decimal(row.net),
        )
        for row in rows
    }


async def _ledger_view(conn: AsyncConnection, ps_id: int, journal: Journal) -> LedgerView:
    """What the rules compare a journal with: mappings, ledgers, and earlier submissions."""
    cm = t.code_mappings
    mapped: dict[str, set[str]] = {}
    for kind, code in (
        await conn.execute(sa.select(cm.c.kind, cm.c.code).where(cm.c.payment_system_id == ps_id))
    ).all():
        mapped.setdefault(kind, set()).add(code)
    posted = await conn.scalar(
        sa.select(sa.func.count())
        .select_from(t.submissions)
        .where(t.submissions.c.payment_system_id == ps_id)
        .where(t.submissions.c.submission_id == journal.submission_id)
    )
    return LedgerView(
        system_identifier=journal.system_identifier,
        mappings={kind: frozenset(codes) for kind, codes in mapped.items()},
        ledgers=await _ledgers(conn, ps_id),
        already_posted=bool(posted),
    )


async def _post(conn: AsyncConnection, ps_id: int, journal: Journal, view: LedgerView) -> None:
    """Write a journal that broke no rule: its submission, its lines, its banks' ledgers."""
    result = await conn.execute(
        sa.insert(t.submissions).values(
            payment_system_id=ps_id,
            submission_id=journal.submission_id,
            posted_at=t.now_iso(),
            transaction_line_count=journal.lines,
            requested_by=journal.requested_by,
            source=journal.source,
        )
    )
    assert result.inserted_primary_key is not None
    row = int(result.inserted_primary_key[0])
    lines = [
        {
            "submission_row": row,
            "bank": bank.reference,
            "section": section.name,
            "transaction_id": txn.id,
            "gross_amount": str(txn.gross_amount),
            "code": txn.code,
            "vat_code": txn.vat_code,
            "attributes": json.dumps(dict(txn.attributes)),
        }
        for bank in journal.banks
        for section in bank.sections
        for txn in section.txns
    ]
    if lines:
        await conn.execute(sa.insert(t.journal_lines), lines)
    bl = t.bank_ledgers
    for bank in journal.banks:
        ledger = view.ledgers.get(bank.reference, BankLedger())
        counts = {s.name: len(s.txns) for s in bank.sections}
        values: dict[str, Any] = {
            _SECTION_COLUMNS[name]: ledger.row_version(name) + counts.get(name, 0)
            for name in SECTIONS
        }
        values["net"] = str(add(ledger.net, bank.net_change()))
        await conn.execute(
            sa.update(bl)
            .where(bl.c.payment_system_id == ps_id)
            .where(bl.c.bank == bank.reference)
            .values(**values)
        )
