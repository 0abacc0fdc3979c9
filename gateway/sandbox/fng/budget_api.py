"""FNG's budget planning interface, as the sandbox emulates it (``schemas/fng/openapi.yaml``).

The Budget Import checks are FMS 6's, applied by :mod:`gateway.sandbox.fng.budget_rules`
inside one database transaction.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Final

from aiohttp import web

from gateway.sandbox import responses
from gateway.sandbox.appkeys import SANDBOX_STATE, SCHEMAS
from gateway.sandbox.fng import budget_documents
from gateway.sandbox.fng.access import authorize, refusal, xml_document
from gateway.sandbox.fng.budget_rules import BudgetProblem, read_budget, serial_number_of

BUDGET_IMPORT_XSD: Final = "budget/BudgetImport.xsd"

_QUERY_DATE: Final = re.compile(r"[0-9]{2}/[0-9]{2}/[0-9]{4}")


def _query_date(text: str) -> date | None:
    """A ``dd/MM/yyyy`` date; None if the text is not one."""
    if not _QUERY_DATE.fullmatch(text):
        return None
    try:
        return datetime.strptime(text, "%d/%m/%Y").date()
    except ValueError:
        return None


async def export_gl_account(request: web.Request) -> web.Response:
    """``GET /api/BudgetInterface/ExportGlAccount?date=dd/MM/yyyy``: a year's chart."""
    state = request.app[SANDBOX_STATE]
    state.stats.requests["ExportGlAccount"] += 1
    database_id, _ = await authorize(request, "ExportGlAccount")
    text = request.query.get("date", "")
    day = _query_date(text)
    if day is None:
        raise refusal(web.HTTPBadRequest, f"the date must be dd/MM/yyyy; {text!r} is not")
    chart = await state.planning.chart(database_id, day)
    if chart is None:
        raise refusal(
            web.HTTPNotFound, f"no financial year of this database contains {day:%d/%m/%Y}"
        )
    return responses.xml_response(
        budget_documents.chart_document(chart), encoding=budget_documents.CHART_ENCODING
    )


async def export_financial_years(request: web.Request) -> web.Response:
    """``GET /api/BudgetInterface/ExportFinancialYears``: the years and their periods."""
    state = request.app[SANDBOX_STATE]
    state.stats.requests["ExportFinancialYears"] += 1
    database_id, client_id = await authorize(request, "ExportFinancialYears")
    found = await state.planning.financial_years(database_id)
    return responses.xml_response(budget_documents.fiscal_year_document(found, user=client_id))


async def import_budget(request: web.Request) -> web.Response:
    """``POST /api/BudgetInterface/ImportBudget`` with a budget ``Message`` document."""
    state = request.app[SANDBOX_STATE]
    state.stats.requests["ImportBudget"] += 1
    database_id, client_id = await authorize(request, "ImportBudget")
    _, root = await xml_document(request)
    issues = request.app[SCHEMAS].issues(BUDGET_IMPORT_XSD, root)
    if issues:
        errors = [
            BudgetProblem("SCHEMA", f"The document breaks the schema at {i}.") for i in issues
        ]
        result = budget_documents.budget_result(
            success=False, serial_number=serial_number_of(root), errors=errors
        )
        return responses.xml_response(result)
    budget = read_budget(root)
    outcome = await state.budgets.import_budget(database_id, client_id, budget)
    result = budget_documents.budget_result(
        success=outcome.imported, serial_number=budget.serial_number, errors=outcome.errors
    )
    return responses.xml_response(result)


def add_routes(app: web.Application, prefix: str = "/fng") -> None:
    base = f"{prefix}/api/BudgetInterface"
    app.router.add_get(f"{base}/ExportGlAccount", export_gl_account, allow_head=False)
    app.router.add_get(f"{base}/ExportFinancialYears", export_financial_years, allow_head=False)
    app.router.add_post(f"{base}/ImportBudget", import_budget)
