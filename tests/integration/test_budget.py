"""Budget planning end to end: reads through a short cache, budgets imported once."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import aiohttp
import pytest

from gateway import ns
from tests.conftest import Gateway, GatewayWith, Sandbox, add_school
from tests.support import Auth, SoapAnswer, budget_operation, budget_xml, soap_call


async def call(
    http: aiohttp.ClientSession, gateway: Gateway, body: str, auth: Auth | None = None
) -> SoapAnswer:
    return await soap_call(
        http, f"{gateway.url}/soap/budget", body, auth or gateway.auth, namespace=ns.BUDGET
    )


def import_body(document: str) -> str:
    return budget_operation(
        "ImportBudget", xmlData=document.replace("<Message>", '<Message xmlns="">', 1)
    )


def valid_budget(sandbox: Sandbox, serial: int, **kwargs: Any) -> str:
    ledger, fund, cfr = sandbox.demo.fund_allocations[0]
    return budget_xml(
        serial,
        sandbox.demo.open_year,
        [(ledger, fund, cfr, "12000.00")],
        [(ledger, sandbox.demo.cost_centres[0], "3000.00")],
        **kwargs,
    )


async def imported(sandbox: Sandbox) -> int:
    return int((await sandbox.stats())["budgets_imported"])


async def import_requests(sandbox: Sandbox) -> int:
    return int((await sandbox.stats())["requests"]["ImportBudget"])


def errors(answer: SoapAnswer) -> list[dict[str, str]]:
    result = answer.result()
    assert result.tag == "BudgetImportResult" and result.get("isSuccess") == "false", answer.raw
    return [
        dict(error.attrib, message=error.text or "") for error in result.iterfind("Errors/Error")
    ]


class TestReads:
    async def test_the_chart_of_accounts_is_the_schools_for_the_open_year(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        answer = await call(
            http, gateway, budget_operation("GetChartOfAccounts", date=date.today().isoformat())
        )
        chart = answer.result()
        assert chart.tag == "GLAccounts"
        assert (chart.findtext("Header/LANumber"), chart.findtext("Header/SchoolNumber")) == (
            "123",
            "4567",
        )
        assert chart.findtext("Header/FinancialYearDescription") == sandbox.demo.open_year
        codes = {entry.findtext("LedgerCode") for entry in chart.iterfind("LedgerCodes/LedgerCode")}
        assert codes == set(sandbox.demo.ledger_codes)
        assert {
            entry.findtext("LedgerType") for entry in chart.iterfind("LedgerCodes/LedgerCode")
        } == {"EX", "ES", "IN"}

    async def test_the_financial_years_are_listed_with_their_twelve_periods(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        years = (await call(http, gateway, budget_operation("GetFinancialYears"))).result()
        assert years.tag == "FiscalYear"
        definitions = years.findall("YearDefinitions/YearDefinition")
        assert {d.findtext("YearDescription") for d in definitions} == set(
            sandbox.demo.financial_years
        )
        assert all(len(d.findall("Periods/PeriodDefinitions")) == 12 for d in definitions)

    async def test_a_date_outside_every_year_is_not_found(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        answer = await call(
            http, gateway, budget_operation("GetChartOfAccounts", date="1999-01-01")
        )
        assert answer.fault_code == "NOT_FOUND"
        assert (
            answer.fault_string
            == "NotFoundException:no financial year of the school contains 1999-01-01"
        )

    async def test_date_that_is_not_a_date(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        answer = await call(http, gateway, budget_operation("GetChartOfAccounts", date="soon"))
        assert answer.fault_code == "INVALID_DATE"


class TestCache:
    async def test_many_reads_one_fetch(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        body = budget_operation("GetChartOfAccounts", date=date.today().isoformat())
        await asyncio.gather(*(call(http, gateway, body) for _ in range(20)))  # cold, together
        for _ in range(10):
            assert (await call(http, gateway, body)).result().tag == "GLAccounts"
        for _ in range(5):
            await call(http, gateway, budget_operation("GetFinancialYears"))
        stats = await sandbox.stats()
        assert (
            stats["requests"]["ExportGlAccount"],
            stats["requests"]["ExportFinancialYears"],
        ) == (1, 1)

    async def test_never_served_to_another_database(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        other = await add_school(
            sandbox, gateway, "Other School", la_number="321", establishment_number="7654"
        )
        body = budget_operation("GetChartOfAccounts", date=date.today().isoformat())
        mine = (await call(http, gateway, body)).result()
        theirs = (await call(http, gateway, body, other)).result()
        assert mine.findtext("Header/SchoolName") == "Demo Primary School"
        assert theirs.findtext("Header/SchoolName") == "Other School"
        assert (theirs.findtext("Header/LANumber"), theirs.findtext("Header/SchoolNumber")) == (
            "321",
            "7654",
        )
        assert (await sandbox.stats())["requests"]["ExportGlAccount"] == 2

    async def test_fetched_again_after_its_lifetime(
        self, gateway_with: GatewayWith, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        gateway = await gateway_with(budget={"cache_seconds": 1})
        body = budget_operation("GetFinancialYears")
        await call(http, gateway, body)
        await call(http, gateway, body)
        await asyncio.sleep(1.2)
        await call(http, gateway, body)
        assert (await sandbox.stats())["requests"]["ExportFinancialYears"] == 2


class TestImport:
    async def test_valid_budget_is_imported_once(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        body = import_body(valid_budget(sandbox, 7))
        first = (await call(http, gateway, body)).result()
        again = (await call(http, gateway, body)).result()
        assert first.get("isSuccess") == again.get("isSuccess") == "true"
        assert (first.get("replayed"), again.get("replayed")) == (None, "true")
        assert first.get("serialNumber") == "7"
        (budget,) = await sandbox.state.budgets.imported()
        assert str(budget["serial_number"]) == "7"
        assert await import_requests(sandbox) == 1

    async def test_another_schools_budget(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        """A budget naming another school is refused before FNG sees it."""
        answer = await call(
            http, gateway, import_body(valid_budget(sandbox, 8, school_number="9999"))
        )
        (error,) = errors(answer)
        assert (error["code"], error["expected"], error["sent"]) == (
            "WRONG_SCHOOL",
            "123/4567",
            "123/9999",
        )
        assert await import_requests(sandbox) == 0

    async def test_an_unknown_ledger_code_is_reported_and_nothing_is_imported(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        document = budget_xml(9, sandbox.demo.open_year, [("9999", "01", "E01", "1.00")])
        (error,) = errors(await call(http, gateway, import_body(document)))
        assert (error["code"], error["allocation"], error["position"], error["sent"]) == (
            "UNKNOWN_LEDGER_CODE",
            "FundAllocation",
            "1",
            "9999",
        )
        assert await import_requests(sandbox) == 0

    async def test_wrong_cfr_and_unknown_fund_and_cost_centre(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        ledger, fund, cfr = sandbox.demo.fund_allocations[0]
        document = budget_xml(
            10,
            sandbox.demo.open_year,
            [(ledger, fund, "Z99", "1.00"), (ledger, "77", cfr, "1.00")],
            [(ledger, "NOWHERE", "1.00")],
        )
        found = errors(await call(http, gateway, import_body(document)))
        assert [(e["code"], e["position"]) for e in found] == [
            ("WRONG_CFR", "1"),
            ("UNKNOWN_FUND", "2"),
            ("UNKNOWN_COST_CENTRE", "1"),
        ]
        assert found[0]["expected"] == cfr and found[0]["sent"] == "Z99"
        assert await import_requests(sandbox) == 0

    async def test_an_unknown_year_is_reported(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        ledger, fund, cfr = sandbox.demo.fund_allocations[0]
        document = budget_xml(11, "1999/00", [(ledger, fund, cfr, "1.00")])
        (error,) = errors(await call(http, gateway, import_body(document)))
        assert (error["code"], error["sent"]) == ("UNKNOWN_YEAR", "1999/00")

    async def test_closed_year_is_refused_by_fng(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        ledger, fund, cfr = sandbox.demo.fund_allocations[0]
        document = budget_xml(12, sandbox.demo.closed_year, [(ledger, fund, cfr, "1.00")])
        (error,) = errors(await call(http, gateway, import_body(document)))
        assert error["code"] == "YEAR_CLOSED"
        assert await imported(sandbox) == 0

    async def test_the_same_serial_with_other_content_is_a_conflict(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        await call(http, gateway, import_body(valid_budget(sandbox, 13)))
        changed = valid_budget(sandbox, 13).replace("12000.00", "12500.00")
        (error,) = errors(await call(http, gateway, import_body(changed)))
        assert error["code"] == "SUBMISSION_CONFLICT" and "different content" in error["message"]
        assert (await import_requests(sandbox), await imported(sandbox)) == (1, 1)

    async def test_regenerated_file_with_same_content_is_a_replay(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        await call(http, gateway, import_body(valid_budget(sandbox, 14)))
        regenerated = valid_budget(sandbox, 14, created="2026-03-02T10:30:00")
        assert (await call(http, gateway, import_body(regenerated))).result().get(
            "isSuccess"
        ) == "true"
        assert await import_requests(sandbox) == 1

    @pytest.mark.parametrize("kind", ["drop_after", "garbage"])
    async def test_lost_answer_is_not_imported_twice(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession, kind: str
    ) -> None:
        await sandbox.faults({"target": "fng", "path": "ImportBudget", "kind": kind, "count": 1})
        body = import_body(valid_budget(sandbox, 15))
        lost = await call(http, gateway, body)
        assert lost.fault_code == "OUTCOME_UNKNOWN"
        assert "send the same submission again" in lost.fault_string
        retried = (await call(http, gateway, body)).result()
        assert (retried.get("isSuccess"), retried.get("replayed")) == ("true", "true")
        assert await imported(sandbox) == 1

    async def test_interface_must_be_granted(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        account = await gateway.tenancy.add_account("journals-only")
        from gateway.tenancy.model import Interface

        await gateway.tenancy.grant(
            account.account_id, gateway.demo.database_id, [Interface.EJOURNAL]
        )
        auth = Auth("journals-only", account.password, gateway.demo.database_key)
        answer = await call(http, gateway, budget_operation("GetFinancialYears"), auth)
        assert answer.fault_code == "AUTHENTICATION_FAILED"
