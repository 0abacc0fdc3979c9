"""Imported budgets in FNG (``state.budgets``).

A budget is checked against the database's years, chart and cost centres and imported in
one write transaction, so two budgets with one serial number can never both be imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.sandbox import tables as t
from gateway.sandbox.fng import databases, planning
from gateway.sandbox.fng.budget_rules import (
    Budget,
    BudgetProblem,
    BudgetView,
    FinancialYear,
    LedgerCode,
    School,
    check,
)
from gateway.sandbox.stats import SandboxStats
from gateway.sandbox.store import SandboxStore


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """The result of importing a budget: the broken rules, or nothing when it was imported."""

    errors: tuple[BudgetProblem, ...]

    @property
    def imported(self) -> bool:
        return not self.errors


class Budgets:
    """The budgets FNG imported, each checked by FMS 6's Budget Import rules."""

    def __init__(self, store: SandboxStore, stats: SandboxStats) -> None:
        self._store = store
        self._stats = stats

    async def import_budget(
        self, database_id: int, client_id: str, budget: Budget
    ) -> ImportOutcome:
        """Check a budget against the database and, if it breaks no rule, import all of it."""
        async with self._store.write() as conn:
            school = await databases.school(conn, database_id)
            if school is None:
                raise LookupError(f"no database {database_id}")
            view = await _budget_view(conn, database_id, school, budget)
            errors = check(budget, view)
            year = view.year(budget.financial_year)
            if errors or year is None:
                return ImportOutcome(tuple(errors))
            await _write_budget(conn, database_id, client_id, budget, year)
        self._stats.budgets_imported += 1
        return ImportOutcome(())

    async def imported(self) -> list[dict[str, Any]]:
        """Every imported budget with its allocations, oldest first."""
        async with self._store.read() as conn:
            return await _imported_budgets(conn)


# -- inside a transaction the caller holds -------------------------------------------------


async def _budget_view(
    conn: AsyncConnection, database_id: int, found_school: School, budget: Budget
) -> BudgetView:
    """What the rules compare a budget with."""
    all_years = await planning.years(conn, database_id)
    chart: Mapping[str, LedgerCode] = {}
    for year in all_years:
        if year.description == budget.financial_year:
            chart = {code.code: code for code in await planning.ledger_codes(conn, year.id)}
    taken = await conn.scalar(
        sa.select(sa.func.count())
        .select_from(t.budgets)
        .where(t.budgets.c.database_id == database_id)
        .where(t.budgets.c.serial_number == budget.serial_number)
    )
    return BudgetView(
        school=found_school,
        serial_taken=bool(taken),
        years=all_years,
        chart=chart,
        cost_centres=frozenset(c.code for c in await planning.cost_centres(conn, database_id)),
    )


async def _write_budget(
    conn: AsyncConnection, database_id: int, client_id: str, budget: Budget, year: FinancialYear
) -> None:
    """Write a budget that broke no rule: its row, then its allocations."""
    result = await conn.execute(
        sa.insert(t.budgets).values(
            database_id=database_id,
            serial_number=budget.serial_number,
            year_id=year.id,
            date_created=budget.date_created,
            imported_at=t.now_iso(),
            client_id=client_id,
        )
    )
    assert result.inserted_primary_key is not None
    row = int(result.inserted_primary_key[0])
    await conn.execute(
        sa.insert(t.budget_allocations),
        [
            {
                "budget_id": row,
                "section": a.section,
                "position": a.position,
                "ledger_code": a.ledger_code,
                "fund_code": a.fund_code,
                "cfr_code": a.cfr_code,
                "cost_centre": a.cost_centre,
                "amount": str(a.amount),
                "profile": a.profile,
            }
            for a in budget.allocations
        ],
    )


async def _imported_budgets(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Every imported budget with its allocations, oldest first."""
    b, fy, ba = t.budgets, t.financial_years, t.budget_allocations
    heads = (
        await conn.execute(
            sa.select(
                b.c.id,
                b.c.database_id,
                b.c.serial_number,
                fy.c.description,
                b.c.year_id,
                b.c.date_created,
                b.c.imported_at,
                b.c.client_id,
            )
            .join(fy, fy.c.id == b.c.year_id)
            .order_by(b.c.id)
        )
    ).all()
    rows = (await conn.execute(sa.select(ba).order_by(ba.c.id))).all()
    by_budget: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        entry: dict[str, Any] = {
            "allocation": row.section,
            "position": row.position,
            "ledger_code": row.ledger_code,
        }
        if row.fund_code is not None:
            entry["fund_code"] = row.fund_code
            entry["cfr_code"] = row.cfr_code
        if row.cost_centre is not None:
            entry["cost_centre"] = row.cost_centre
        entry["amount"] = row.amount
        entry["profile"] = row.profile
        by_budget.setdefault(row.budget_id, []).append(entry)
    return [
        {
            "database_id": head.database_id,
            "serial_number": head.serial_number,
            "financial_year": head.description,
            "financial_year_id": head.year_id,
            "date_created": head.date_created,
            "imported_at": head.imported_at,
            "client_id": head.client_id,
            "allocations": by_budget.get(head.id, []),
        }
        for head in heads
    ]
