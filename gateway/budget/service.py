"""The budget planning operations: two reads through a short cache, and an import posted once."""

from __future__ import annotations

from datetime import date

from lxml import etree

from gateway.budget.documents import (
    Budget,
    Chart,
    Year,
    check_budget,
    fng_date,
    read_budget,
    read_chart,
    read_years,
)
from gateway.budget.results import BudgetProblem, budget_result
from gateway.errors import NotFound
from gateway.fng import FngClient
from gateway.fng.submissions import post_once
from gateway.soap.results import replayed
from gateway.store.cache import ReadThrough
from gateway.store.ledger import Ledger, LedgerKey, Reconciled, SubmissionConflict
from gateway.tenancy.model import Caller, Interface
from gateway.xmlsafe import Limits, SchemaRegistry


class BudgetService:
    def __init__(
        self,
        fng: FngClient,
        ledger: Ledger,
        schemas: SchemaRegistry,
        limits: Limits,
        reads: ReadThrough,
    ) -> None:
        self._fng = fng
        self._ledger = ledger
        self._schemas = schemas
        self._limits = limits
        self._reads = reads

    async def chart_of_accounts(self, caller: Caller, day: date) -> bytes:
        """The GLAccounts document of the financial year containing ``day``."""
        target = caller.target

        async def fetch() -> str:
            root = await self._fng.export_gl_account(target, fng_date(day))
            if root is None:
                raise NotFound(f"no financial year of the school contains {day.isoformat()}")
            return etree.tostring(root, encoding="unicode")

        text = await self._reads.get(f"{target.database_id}:chart:{day.isoformat()}", fetch)
        return text.encode()

    async def financial_years(self, caller: Caller) -> bytes:
        target = caller.target

        async def fetch() -> str:
            root = await self._fng.export_financial_years(target)
            return etree.tostring(root, encoding="unicode")

        text = await self._reads.get(f"{target.database_id}:years", fetch)
        return text.encode()

    async def _chart_for(self, caller: Caller, year: Year) -> Chart:
        return read_chart(etree.fromstring(await self.chart_of_accounts(caller, year.starts)))

    async def import_budget(self, caller: Caller, document: etree._Element | None) -> bytes:
        if document is None:
            return budget_result(
                False, [BudgetProblem("SCHEMA", "xmlData holds no budget document")]
            )
        budget, errors = read_budget(document, self._schemas)
        if budget is None:
            return budget_result(False, errors)
        errors = await self._check(caller, budget)
        if errors:
            return budget_result(False, errors, serial_number=budget.serial_number)
        payload = etree.tostring(budget.element, encoding="utf-8", xml_declaration=True)
        key = LedgerKey(caller.target.database_id, Interface.BUDGET.value, "", budget.serial_number)

        async def reconcile(_expectations: str) -> Reconciled:
            # FNG's exports do not show imported budgets; its refusal of a duplicate serial
            # number settles it when the same budget is sent again.
            return Reconciled(landed=None)

        try:
            submitted = await post_once(
                self._ledger,
                key,
                lambda: self._fng.import_budget(caller.target, payload),
                payload_hash=budget.payload_hash(),
                expectations="{}",
                reconcile=reconcile,
                duplicate_code="DUPLICATE_SERIAL",
                landed=lambda: budget_result(True, serial_number=budget.serial_number),
            )
        except SubmissionConflict as exc:
            return budget_result(
                False,
                [
                    BudgetProblem(
                        "SUBMISSION_CONFLICT",
                        exc.message,
                        allocation="Header",
                        sent=budget.serial_number,
                    )
                ],
                serial_number=budget.serial_number,
            )
        return replayed(submitted.result) if submitted.replay else submitted.result

    async def _check(self, caller: Caller, budget: Budget) -> list[BudgetProblem]:
        """The school must be the database's own, the year the school's, and every code in
        that year's chart of accounts."""
        school = caller.target
        errors: list[BudgetProblem] = []
        own = f"{school.la_number}/{school.establishment_number}"
        sent = f"{budget.la_number}/{budget.school_number}"
        if own != sent:
            errors.append(
                BudgetProblem(
                    "WRONG_SCHOOL",
                    f"the budget is for LA {budget.la_number} school {budget.school_number}, "
                    "but the "
                    f"database is {school.school_name}'s (LA {school.la_number} school "
                    f"{school.establishment_number})",
                    allocation="Header",
                    expected=own,
                    sent=sent,
                )
            )
        if not budget.allocations:
            errors.append(
                BudgetProblem(
                    "NO_ALLOCATIONS",
                    "the budget has no fund or cost-centre allocations",
                    allocation="Header",
                )
            )
        years = read_years(etree.fromstring(await self.financial_years(caller)))
        year = years.get(budget.year)
        if year is None:
            errors.append(
                BudgetProblem(
                    "UNKNOWN_YEAR",
                    f"the school has no financial year {budget.year}",
                    allocation="Header",
                    expected=" or ".join(years) or "none",
                    sent=budget.year,
                )
            )
            return errors
        errors.extend(check_budget(budget, await self._chart_for(caller, year)))
        return errors
