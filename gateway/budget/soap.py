"""The budget planning service's SOAP and plain XML bindings (schemas/budget/budget.wsdl)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from gateway import ns
from gateway.budget.documents import now_date, parse_date
from gateway.budget.service import BudgetService
from gateway.errors import MalformedRequest
from gateway.soap.security import Credentials
from gateway.soap.service import Call, Operation, SoapService, response_element
from gateway.tenancy.model import Caller
from gateway.xmlsafe import Limits


def budget_soap_service(
    service: BudgetService,
    authenticate: Callable[[Credentials], Awaitable[Caller]],
    *,
    schemas_dir: Path,
    limits: Limits,
    trusted_proxies: Sequence[str],
    observe: Callable[[str, str, str, float], None] | None = None,
) -> SoapService[Caller]:
    async def get_chart_of_accounts(call: Call[Caller]) -> bytes:
        text = (call.text("date") or "").strip()
        try:
            day = parse_date(text) if text else now_date()
        except ValueError:
            raise MalformedRequest(
                f"the date {text!r} is not a date (send yyyy-mm-dd)", code="INVALID_DATE"
            ) from None
        document = await service.chart_of_accounts(call.caller, day)
        return response_element(
            ns.BUDGET, "GetChartOfAccounts", [("GetChartOfAccountsResult", document)]
        )

    async def get_financial_years(call: Call[Caller]) -> bytes:
        document = await service.financial_years(call.caller)
        return response_element(
            ns.BUDGET, "GetFinancialYears", [("GetFinancialYearsResult", document)]
        )

    async def import_budget(call: Call[Caller]) -> bytes:
        result = await service.import_budget(call.caller, call.document("xmlData"))
        return response_element(ns.BUDGET, "ImportBudget", [("ImportBudgetResult", result)])

    return SoapService(
        name="budget",
        namespace=ns.BUDGET,
        wsdl_template=schemas_dir / "budget" / "budget.wsdl",
        operations=[
            Operation("GetChartOfAccounts", get_chart_of_accounts),
            Operation("GetFinancialYears", get_financial_years),
            Operation("ImportBudget", import_budget, document_parameter="xmlData"),
        ],
        authenticate=authenticate,
        limits=limits,
        trusted_proxies=trusted_proxies,
        observe=observe,
    )
