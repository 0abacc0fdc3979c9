"""The journal's side of the database: reading a payment system's ledgers, posting to them.

Each function runs inside a transaction its caller holds, so that checking a journal and
posting it happen atomically.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.sandbox import tables as t
from gateway.sandbox.fng.journal_rules import SECTIONS, BankLedger, Journal, LedgerView, add

#: Section name → its row-version column in ``bank_ledgers``.
SECTION_COLUMNS: Final[Mapping[str, str]] = {
    "Orders": "orders",
    "Settlements": "settlements",
    "OrderReversals": "order_reversals",
    "SettlementReversals": "settlement_reversals",
}


async def payment_system_id(
    conn: AsyncConnection, database_id: int, system_identifier: str
) -> int | None:
    found = await conn.scalar(
        sa.select(t.payment_systems.c.id)
        .where(t.payment_systems.c.database_id == database_id)
        .where(t.payment_systems.c.system_identifier == system_identifier)
    )
    return None if found is None else int(found)


async def ledgers(conn: AsyncConnection, ps_id: int) -> dict[str, BankLedger]:
    """Each mapped bank's row versions and net."""
    bl = t.bank_ledgers
    rows = (await conn.execute(sa.select(bl).where(bl.c.payment_system_id == ps_id))).all()
    return {
        row.bank: BankLedger(
            row_versions={name: getattr(row, col) for name, col in SECTION_COLUMNS.items()},
            net=Decimal(row.net),
        )
        for row in rows
    }


async def ledger_view(conn: AsyncConnection, ps_id: int, journal: Journal) -> LedgerView:
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
        ledgers=await ledgers(conn, ps_id),
        already_posted=bool(posted),
    )


async def post(conn: AsyncConnection, ps_id: int, journal: Journal, view: LedgerView) -> None:
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
            SECTION_COLUMNS[name]: ledger.row_version(name) + counts.get(name, 0)
            for name in SECTIONS
        }
        values["net"] = str(add(ledger.net, bank.net_change()))
        await conn.execute(
            sa.update(bl)
            .where(bl.c.payment_system_id == ps_id)
            .where(bl.c.bank == bank.reference)
            .values(**values)
        )
