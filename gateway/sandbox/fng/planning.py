"""Budget planning in FNG (``state.planning``): each database's financial years with their
periods, a chart of accounts per year, and its cost centres; and the exports of them.

The functions below the class run inside a transaction their caller holds, so that a
document is read from one snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.sandbox import tables as t
from gateway.sandbox.fng import databases
from gateway.sandbox.fng.budget_rules import (
    ALL_CLOSED,
    CLOSED,
    LEDGER_TYPES,
    OPEN,
    Chart,
    CostCentre,
    FinancialYear,
    FiscalYears,
    Fund,
    LedgerCode,
    Period,
    add_months,
    collapse,
    monthly_periods,
)
from gateway.sandbox.fng.databases import require_database
from gateway.sandbox.store import SandboxStore

#: The longest code FMS keeps (ledger, fund, CFR and cost-centre codes).
CODE_LENGTH: Final = 20


class Planning:
    """What a budget is planned against, set up and exported."""

    def __init__(self, store: SandboxStore) -> None:
        self._store = store

    async def add_financial_year(
        self,
        database_id: int,
        description: str,
        start: date,
        *,
        closed: bool,
        lowest_open_period: int = 1,
    ) -> int:
        """Add a year of twelve monthly periods from ``start`` (the first of a month).

        A closed year has every period closed (LowestOpenPeriod 13); an open one has the
        periods before ``lowest_open_period`` closed. Returns the FinancialYearID.
        """
        if not 1 <= len(description) <= 9 or description != collapse(description):
            raise ValueError("a year description has 1 to 9 characters, such as 2026/27")
        if start.day != 1:
            raise ValueError("a financial year starts on the first of a month")
        if not 1 <= lowest_open_period <= 12:
            raise ValueError("the lowest open period of an open year is 1 to 12")
        async with self._store.write() as conn:
            return await _add_year(
                conn,
                database_id,
                description,
                start,
                ALL_CLOSED if closed else lowest_open_period,
                closed=closed,
            )

    async def add_ledger_code(
        self,
        database_id: int,
        year_description: str,
        ledger_type: str,
        code: str,
        description: str,
        funds: Mapping[str, str],
        *,
        group: str = "",
        short_code: str = "",
        normal_profile: str = "Twelfths",
        normal_vat: str = "",
        services: bool = False,
    ) -> None:
        """Add a ledger code to a year's chart, with its funds (fund code → CFR code)."""
        entry = LedgerCode(
            ledger_type=ledger_type,
            code=code,
            description=description,
            group=group,
            short_code=short_code,
            normal_profile=normal_profile,
            normal_vat=normal_vat,
            services=services,
            funds=tuple(Fund(fund_code, cfr_code) for fund_code, cfr_code in funds.items()),
        )
        await self.add_chart(database_id, year_description, [entry])

    async def add_chart(
        self, database_id: int, year_description: str, entries: Iterable[LedgerCode]
    ) -> None:
        """Add ledger codes to a year's chart at once (all of them, or none)."""
        entries = list(entries)
        for entry in entries:
            if entry.ledger_type not in LEDGER_TYPES:
                raise ValueError(f"a ledger type is one of {', '.join(LEDGER_TYPES)}")
            _require_code(entry.code, "a ledger code")
            for fund in entry.funds:
                _require_code(fund.fund_code, "a fund code")
                _require_code(fund.cfr_code, "a CFR code")
        async with self._store.write() as conn:
            await _add_ledger_codes(conn, database_id, year_description, entries)

    async def add_cost_centre(self, database_id: int, code: str, description: str) -> None:
        await self.add_cost_centres(database_id, {code: description})

    async def add_cost_centres(self, database_id: int, centres: Mapping[str, str]) -> None:
        """Add cost centres (code → description) at once (all of them, or none)."""
        for code in centres:
            _require_code(code, "a cost centre code")
        async with self._store.write() as conn:
            await _add_cost_centres(
                conn, database_id, [CostCentre(code, text) for code, text in centres.items()]
            )

    async def financial_years(self, database_id: int) -> FiscalYears:
        """The database's school and financial years, read at one moment."""
        async with self._store.read() as conn:
            found = await databases.school(conn, database_id)
            found_years = await years(conn, database_id)
        if found is None:
            raise LookupError(f"no database {database_id}")
        return FiscalYears(found, found_years)

    async def chart(self, database_id: int, day: date) -> Chart | None:
        """The chart of accounts of the year that contains ``day``; None if no year does."""
        async with self._store.read() as conn:
            found = await databases.school(conn, database_id)
            if found is None:
                raise LookupError(f"no database {database_id}")
            year = next((y for y in await years(conn, database_id) if y.contains(day)), None)
            if year is None:
                return None
            codes = await ledger_codes(conn, year.id)
            centres = await cost_centres(conn, database_id)
        return Chart(found, year, codes, centres)


def _require_code(value: str, what: str) -> None:
    if not 1 <= len(value) <= CODE_LENGTH or value != collapse(value):
        raise ValueError(f"{what} has 1 to {CODE_LENGTH} characters, without surrounding spaces")


# -- set-up, inside a transaction the caller holds ---------------------------------------


async def _add_year(
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


async def _add_ledger_codes(
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


async def _add_cost_centres(
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


# -- reading, inside a transaction the caller holds ---------------------------------------


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
