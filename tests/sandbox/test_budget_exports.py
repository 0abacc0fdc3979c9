"""FNG's budget planning reads: the chart of accounts and the financial years."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta

import pytest
from lxml import etree

from gateway.sandbox import SandboxState, seed_demo
from gateway.xmlsafe import SchemaRegistry
from tests.sandbox.budgets import fmt, year_start
from tests.sandbox.conftest import BUDGET, Sandbox

MONTHS = [
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
    "January",
    "February",
    "March",
]


async def _chart(
    sandbox: Sandbox, schemas: SchemaRegistry, day: str, **keys: str
) -> etree._Element:
    response = await sandbox.export_chart(day, **keys)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/xml"
    assert response.charset == "iso-8859-1"
    body = await response.read()
    assert body.startswith(b'<?xml version="1.0" encoding="iso-8859-1"?>\n<GLAccounts')
    root = etree.fromstring(body)
    assert schemas.issues("budget/GLAccounts.xsd", root) == []
    return root


async def _years(sandbox: Sandbox, schemas: SchemaRegistry, **keys: str) -> etree._Element:
    response = await sandbox.export_years(**keys)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/xml"
    root = etree.fromstring(await response.read())
    assert schemas.issues("budget/FiscalYear.xsd", root) == []
    return root


def _texts(element: etree._Element | None) -> dict[str, str]:
    assert element is not None
    return {str(child.tag): child.text or "" for child in element}


async def _other_database(sandbox: Sandbox, school_name: str) -> tuple[int, dict[str, str]]:
    """A second database of the demo's client; returns it and the keys that reach it."""
    keys = {"psk": str(uuid.uuid4()), "client_key": str(uuid.uuid4())}
    database_id = await sandbox.state.databases.add(
        "Non-public funds",
        school_name=school_name,
        la_number="123",
        establishment_number="0042",
        client_id=sandbox.demo.client_id,
        fng_key=keys["psk"],
        partner_key=keys["client_key"],
    )
    return database_id, keys


class TestExportGlAccount:
    async def test_open_year_chart(self, sandbox: Sandbox, schemas: SchemaRegistry) -> None:
        """The chart for a day of the open year names the school and year, then every ledger
        code with its funds, then the cost centres."""
        demo = sandbox.demo
        start = year_start(demo.open_year)
        root = await _chart(sandbox, schemas, fmt(start + timedelta(days=100)))
        assert root.get("Version") == "1.0"
        header = _texts(root.find("Header"))
        assert int(header.pop("FinancialYearID")) > 0
        assert date.fromisoformat(header.pop("ExportDate"))
        assert header == {
            "LANumber": "123",
            "SchoolNumber": "4567",
            "SchoolName": "Demo Primary School",
            "FinancialYearDescription": demo.open_year,
            "FinancialYearStartDate": start.isoformat(),
        }
        entries = {e.findtext("LedgerCode"): e for e in root.iterfind("LedgerCodes/LedgerCode")}
        assert sorted(entries) == sorted(demo.ledger_codes)
        assert {code: e.findtext("LedgerType") for code, e in entries.items()} == {
            "5004": "EX",
            "5100": "EX",
            "5300": "EX",
            "5500": "EX",
            "5610": "ES",
            "5620": "ES",
            "1000": "IN",
            "1100": "IN",
            "1400": "IN",
        }
        teaching = _texts(entries["5004"])
        assert teaching["LedgerDescription"] == "Teaching staff"
        assert teaching["NormalProfile"] == "Twelfths"
        assert teaching["Services"] == "False"
        assert _texts(entries["5610"])["Services"] == "True"
        funds = {
            (code, fund.findtext("FundCode"), fund.findtext("CFRCode"))
            for code, entry in entries.items()
            for fund in entry.iterfind("Funds/Fund")
        }
        assert funds == set(demo.fund_allocations)
        assert ("5300", "02", "E19") in funds
        assert ("1400", "02", "I08") in funds
        centres = [c.findtext("CostCentreCode") for c in root.iterfind("CostCentres/CostCentre")]
        assert centres == list(demo.cost_centres) == ["ADM", "ENG", "MAT", "SEN"]

    @pytest.mark.parametrize("which", ["open_year", "closed_year"])
    @pytest.mark.parametrize("offset", [0, 200, 364])
    async def test_each_year_is_found_by_its_days(
        self, sandbox: Sandbox, schemas: SchemaRegistry, which: str, offset: int
    ) -> None:
        """Its first day, a day inside and its last day (31 March) all name the year."""
        description = getattr(sandbox.demo, which)
        day = year_start(description) + timedelta(days=offset)
        root = await _chart(sandbox, schemas, fmt(day))
        header = _texts(root.find("Header"))
        assert header["FinancialYearDescription"] == description
        assert header["FinancialYearStartDate"] == year_start(description).isoformat()

    async def test_years_have_their_own_ids(
        self, sandbox: Sandbox, schemas: SchemaRegistry
    ) -> None:
        """The open and the closed year's charts carry different FinancialYearIDs."""
        ids = set()
        for description in sandbox.demo.financial_years:
            root = await _chart(sandbox, schemas, fmt(year_start(description)))
            ids.add(root.findtext("Header/FinancialYearID"))
        assert len(ids) == 2

    async def test_days_outside_every_year_are_404(self, sandbox: Sandbox) -> None:
        """The day before the closed year and the first day after the open one are 404."""
        before = year_start(sandbox.demo.closed_year) - timedelta(days=1)
        after = date(year_start(sandbox.demo.open_year).year + 1, 4, 1)
        for day in (before, after):
            response = await sandbox.export_chart(fmt(day))
            assert response.status == 404
            assert response.content_type == "application/problem+json"
            assert fmt(day) in (await response.json(content_type=None))["detail"]

    @pytest.mark.parametrize(
        "day", ["2026-04-01", "1/4/2026", "31/02/2026", "00/01/2026", "01/13/2026", "", "x" * 10]
    )
    async def test_malformed_date_is_400(self, sandbox: Sandbox, day: str) -> None:
        """A date that is not a real dd/MM/yyyy day is 400 problem+json."""
        response = await sandbox.export_chart(day)
        assert response.status == 400
        assert response.content_type == "application/problem+json"

    async def test_missing_date_is_400(self, sandbox: Sandbox) -> None:
        """ExportGlAccount without its date is 400."""
        token = await sandbox.token()
        response = await sandbox.client.get(
            f"{BUDGET}/ExportGlAccount", headers=sandbox.headers(token)
        )
        assert response.status == 400

    async def test_latin1_and_beyond(self, sandbox: Sandbox, schemas: SchemaRegistry) -> None:
        """Latin-1 text is written as bytes, the rest as character references, and the school
        name is cut to FMS's 50 characters."""
        name = "Ysgol Gynradd Gymraeg Llanfair - Église Saint-Étienne"
        database_id, keys = await _other_database(sandbox, name)
        state = sandbox.state
        await state.planning.add_financial_year(
            database_id, "2030/31", date(2030, 4, 1), closed=False
        )
        await state.planning.add_ledger_code(
            database_id, "2030/31", "EX", "5310", "Café supplies € ŵ", {"01": "E25"}
        )
        await state.planning.add_cost_centre(database_id, "ART", "Art & design")
        response = await sandbox.export_chart("15/06/2030", **keys)
        body = await response.read()
        assert b"Caf\xe9 supplies &#8364; &#373;" in body
        root = await _chart(sandbox, schemas, "15/06/2030", **keys)
        assert root.findtext("Header/SchoolName") == name[:50]
        assert root.findtext("Header/SchoolNumber") == "0042"
        assert root.findtext("LedgerCodes/LedgerCode/LedgerDescription") == "Café supplies € ŵ"
        assert root.findtext("CostCentres/CostCentre/CostCentreDescription") == "Art & design"


class TestExportFinancialYears:
    async def test_demo_years(self, sandbox: Sandbox, schemas: SchemaRegistry) -> None:
        """Both demo years, earliest first: the closed one all closed, the open one open from
        the current month's period, each with twelve periods April to March."""
        demo = sandbox.demo
        root = await _years(sandbox, schemas)
        assert root.get("VersionNumber") == "1.0"
        header = _texts(root.find("Header"))
        assert header["SchoolName"] == "Demo Primary School"
        assert (header["LANumber"], header["SchoolNumber"]) == ("123", "4567")
        assert header["User"] == demo.client_id
        assert header["SoftwareVersion"]
        closed, opened = root.iterfind("YearDefinitions/YearDefinition")
        today = date.today()
        current_period = (today.month - 4) % 12 + 1
        for definition, description, lowest in (
            (closed, demo.closed_year, 13),
            (opened, demo.open_year, current_period),
        ):
            start = year_start(description)
            assert definition.findtext("YearDescription") == description
            assert definition.findtext("NumberofPeriods") == "12"
            assert definition.findtext("LowestOpenPeriod") == str(lowest)
            assert definition.findtext("ThisYearStarts") == start.isoformat()
            assert definition.findtext("NextYearStarts") == date(start.year + 1, 4, 1).isoformat()
            periods = list(definition.iterfind("Periods/PeriodDefinitions"))
            assert [p.findtext("PeriodNumber") for p in periods] == [str(n) for n in range(1, 13)]
            assert [p.findtext("PeriodName") for p in periods] == MONTHS
            assert periods[9].findtext("PeriodStartDate") == f"{start.year + 1}-01-01"
            states = [p.findtext("PeriodState") for p in periods]
            assert states == ["Closed"] * (lowest - 1) + ["Open"] * (13 - lowest)
        assert closed.findtext("YearState") == "Closed"
        assert opened.findtext("YearState") == "Open"

    async def test_database_without_years(self, sandbox: Sandbox, schemas: SchemaRegistry) -> None:
        """A database with no years answers an empty, valid list, and its chart is 404."""
        _, keys = await _other_database(sandbox, "Empty School")
        root = await _years(sandbox, schemas, **keys)
        assert root.findtext("Header/SchoolNumber") == "0042"
        assert list(root.iterfind("YearDefinitions/YearDefinition")) == []
        assert (await sandbox.export_chart(fmt(date.today()), **keys)).status == 404


class TestDemoYears:
    @pytest.mark.parametrize(
        ("today", "open_year", "closed_year", "lowest"),
        [
            (date(2026, 9, 15), "2026/27", "2025/26", 6),
            (date(2027, 1, 10), "2026/27", "2025/26", 10),
            (date(2026, 4, 1), "2026/27", "2025/26", 1),
            (date(2026, 3, 31), "2025/26", "2024/25", 12),
            (date(2099, 12, 31), "2099/00", "2098/99", 9),
        ],
    )
    async def test_years_follow_the_seeding_day(
        self, state: SandboxState, today: date, open_year: str, closed_year: str, lowest: int
    ) -> None:
        """The open year holds the day the demo is seeded, from that month's period on."""
        demo = await seed_demo(state, today=today)
        assert (demo.open_year, demo.closed_year) == (open_year, closed_year)
        assert demo.financial_years == (open_year, closed_year)
        found = await state.planning.financial_years(demo.database_id)
        assert [(y.description, y.state, y.lowest_open_period) for y in found.years] == [
            (closed_year, "Closed", 13),
            (open_year, "Open", lowest),
        ]

    async def test_seeding_again_changes_nothing(self, state: SandboxState) -> None:
        """A second seeding, even on another day, returns the same demo and adds nothing."""
        first = await seed_demo(state, today=date(2026, 9, 15))
        again = await seed_demo(state, today=date(2031, 1, 1))
        assert again == first
        assert len((await state.planning.financial_years(first.database_id)).years) == 2

    async def test_older_demo_gains_budget_planning(self, state: SandboxState) -> None:
        """A demo stored before budget planning existed gains its years, chart and centres."""
        await state.simsid.add_client("fng-gateway-demo", secret="s")
        fng_key, partner_key = str(uuid.uuid4()), str(uuid.uuid4())
        database_id = await state.databases.add(
            "Public funds",
            school_name="Demo Primary School",
            la_number="123",
            establishment_number="4567",
            client_id="fng-gateway-demo",
            fng_key=fng_key,
            partner_key=partner_key,
        )
        ps_id = await state.journals.add_payment_system(database_id, "TPPCS", "Demo", {})
        old = {
            "client_id": "fng-gateway-demo",
            "client_secret": "s",
            "fng_key": fng_key,
            "partner_key": partner_key,
            "database_id": database_id,
            "payment_system_id": ps_id,
        }
        await state.store.put_setting("demo", json.dumps(old))
        demo = await seed_demo(state, today=date(2026, 9, 15))
        assert demo.open_year == "2026/27"
        assert demo.fng_key == fng_key
        chart = await state.planning.chart(database_id, date(2026, 9, 15))
        assert chart is not None
        assert len(chart.ledger_codes) == len(demo.ledger_codes)
        assert await seed_demo(state) == demo
