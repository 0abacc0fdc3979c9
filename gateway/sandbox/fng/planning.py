"""Budget planning's side of the database: years, charts, cost centres, imported budgets.

Each function runs inside a transaction its caller holds, so that checking a budget and
importing it happen atomically, and a document is read from one snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.sandbox import tables as t
from gateway.sandbox.fng.budget_rules import (
    CLOSED,
    OPEN,
    Budget,
    BudgetView,
    CostCentre,
    FinancialYear,
    Fund,
    LedgerCode,
    Period,
    School,
    add_months,
    monthly_periods,
)
from gateway.sandbox.tables import now_iso

# -- set-up --------------------------------------------------------------------------------


async def require_database(conn: AsyncConnection, database_id: int) -> None:
    found = await conn.scalar(sa.select(t.databases.c.id).where(t.databases.c.id == database_id))
    if found is None:
        raise LookupError(f"no database {database_id}")


async def add_year(
    conn: AsyncConnection,
    database_id: int,
    description: str,
    start: date,
    lowest_open_period: int,
    *,
    closed: bool,
) -> int:
    """Add a year of twelve monthly periods; it may neither repeat nor overlap another."""
    await require_database(conn, database_id)
    fy = t.financial_years
    next_start = add_months(start, 12)
    clash = await conn.scalar(
        sa.select(fy.c.description)
        .where(fy.c.database_id == database_id)
        .where(
            (fy.c.description == description)
            | ((fy.c.starts < next_start.isoformat()) & (fy.c.next_starts > start.isoformat()))
        )
    )
    if clash is not None:
        raise ValueError(f"the year {description} repeats or overlaps {clash}")
    result = await conn.execute(
        sa.insert(fy).values(
            database_id=database_id,
            description=description,
            state=CLOSED if closed else OPEN,
            starts=start.isoformat(),
            next_starts=next_start.isoformat(),
            lowest_open_period=lowest_open_period,
        )
    )
    assert result.inserted_primary_key is not None
    year = int(result.inserted_primary_key[0])
    await conn.execute(
        sa.insert(t.periods),
        [
            {
                "year_id": year,
                "number": period.number,
                "name": period.name,
                "state": period.state,
                "starts": period.starts.isoformat(),
            }
            for period in monthly_periods(start, lowest_open_period)
        ],
    )
    return year


async def add_ledger_codes(
    conn: AsyncConnection, database_id: int, year_description: str, entries: list[LedgerCode]
) -> None:
    """Add ledger codes, new to the year and to each other, with their funds."""
    lc = t.ledger_codes
    year = await year_id(conn, database_id, year_description)
    if year is None:
        raise LookupError(f"no financial year {year_description} in database {database_id}")
    codes = [entry.code for entry in entries]
    taken = (
        await conn.scalars(
            sa.select(lc.c.code).where(lc.c.year_id == year).where(lc.c.code.in_(codes))
        )
    ).all()
    repeated = sorted({*taken, *(code for code in codes if codes.count(code) > 1)})
    if repeated:
        raise ValueError(
            f"ledger codes {', '.join(repeated)} would be twice in the chart of {year_description}"
        )
    if not entries:
        return
    await conn.execute(
        sa.insert(lc),
        [
            {
                "year_id": year,
                "ledger_type": entry.ledger_type,
                "code": entry.code,
                "description": entry.description,
                "ledger_group": entry.group,
                "short_code": entry.short_code,
                "normal_profile": entry.normal_profile,
                "normal_vat": entry.normal_vat,
                "services": entry.services,
            }
            for entry in entries
        ],
    )
    rows = await conn.execute(
        sa.select(lc.c.code, lc.c.id).where(lc.c.year_id == year).where(lc.c.code.in_(codes))
    )
    ids = {row.code: row.id for row in rows}
    funds = [
        {"ledger_code_id": ids[entry.code], "fund_code": f.fund_code, "cfr_code": f.cfr_code}
        for entry in entries
        for f in entry.funds
    ]
    if funds:
        await conn.execute(sa.insert(t.ledger_funds), funds)


async def add_cost_centres(
    conn: AsyncConnection, database_id: int, centres: list[CostCentre]
) -> None:
    await require_database(conn, database_id)
    cc = t.cost_centres
    codes = [centre.code for centre in centres]
    taken = (
        await conn.scalars(
            sa.select(cc.c.code).where(cc.c.database_id == database_id).where(cc.c.code.in_(codes))
        )
    ).all()
    repeated = sorted({*taken, *(code for code in codes if codes.count(code) > 1)})
    if repeated:
        raise ValueError(f"cost centres {', '.join(repeated)} would exist twice")
    if centres:
        await conn.execute(
            sa.insert(cc),
            [
                {"database_id": database_id, "code": c.code, "description": c.description}
                for c in centres
            ],
        )


# -- reading -------------------------------------------------------------------------------


async def school(conn: AsyncConnection, database_id: int) -> School | None:
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


async def years(conn: AsyncConnection, database_id: int) -> tuple[FinancialYear, ...]:
    """The database's financial years with their periods, earliest first."""
    fy, p = t.financial_years, t.periods
    rows = (
        await conn.execute(
            sa.select(fy).where(fy.c.database_id == database_id).order_by(fy.c.starts)
        )
    ).all()
    if not rows:
        return ()
    period_rows = (
        await conn.execute(
            sa.select(p)
            .where(p.c.year_id.in_([row.id for row in rows]))
            .order_by(p.c.year_id, p.c.number)
        )
    ).all()
    by_year: dict[int, list[Period]] = {}
    for row in period_rows:
        by_year.setdefault(row.year_id, []).append(
            Period(row.number, row.name, row.state, date.fromisoformat(row.starts))
        )
    return tuple(
        FinancialYear(
            id=row.id,
            description=row.description,
            state=row.state,
            starts=date.fromisoformat(row.starts),
            next_starts=date.fromisoformat(row.next_starts),
            lowest_open_period=row.lowest_open_period,
            periods=tuple(by_year.get(row.id, ())),
        )
        for row in rows
    )


async def year_id(conn: AsyncConnection, database_id: int, description: str) -> int | None:
    fy = t.financial_years
    found = await conn.scalar(
        sa.select(fy.c.id)
        .where(fy.c.database_id == database_id)
        .where(fy.c.description == description)
    )
    return None if found is None else int(found)


async def ledger_codes(conn: AsyncConnection, year: int) -> tuple[LedgerCode, ...]:
    """A year's chart of accounts, by ledger code."""
    lc, lf = t.ledger_codes, t.ledger_funds
    rows = (await conn.execute(sa.select(lc).where(lc.c.year_id == year).order_by(lc.c.code))).all()
    fund_rows = (
        await conn.execute(
            sa.select(lf.c.ledger_code_id, lf.c.fund_code, lf.c.cfr_code)
            .join(lc, lc.c.id == lf.c.ledger_code_id)
            .where(lc.c.year_id == year)
            .order_by(lf.c.ledger_code_id, lf.c.fund_code)
        )
    ).all()
    funds: dict[int, list[Fund]] = {}
    for row in fund_rows:
        funds.setdefault(row.ledger_code_id, []).append(Fund(row.fund_code, row.cfr_code))
    return tuple(
        LedgerCode(
            ledger_type=row.ledger_type,
            code=row.code,
            description=row.description,
            group=row.ledger_group,
            short_code=row.short_code,
            normal_profile=row.normal_profile,
            normal_vat=row.normal_vat,
            services=bool(row.services),
            funds=tuple(funds.get(row.id, ())),
        )
        for row in rows
    )


async def cost_centres(conn: AsyncConnection, database_id: int) -> tuple[CostCentre, ...]:
    cc = t.cost_centres
    rows = (
        await conn.execute(
            sa.select(cc.c.code, cc.c.description)
            .where(cc.c.database_id == database_id)
            .order_by(cc.c.code)
        )
    ).all()
    return tuple(CostCentre(row.code, row.description) for row in rows)


async def budget_view(
    conn: AsyncConnection, database_id: int, found_school: School, budget: Budget
) -> BudgetView:
    """What the rules compare a budget with."""
    all_years = await years(conn, database_id)
    chart: Mapping[str, LedgerCode] = {}
    for year in all_years:
        if year.description == budget.financial_year:
            chart = {code.code: code for code in await ledger_codes(conn, year.id)}
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
        cost_centres=frozenset(c.code for c in await cost_centres(conn, database_id)),
    )


async def import_budget(
    conn: AsyncConnection, database_id: int, client_id: str, budget: Budget, year: FinancialYear
) -> None:
    """Write a budget that broke no rule: its row, then its allocations."""
    result = await conn.execute(
        sa.insert(t.budgets).values(
            database_id=database_id,
            serial_number=budget.serial_number,
            year_id=year.id,
            date_created=budget.date_created,
            imported_at=now_iso(),
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


async def imported_budgets(conn: AsyncConnection) -> list[dict[str, Any]]:
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
