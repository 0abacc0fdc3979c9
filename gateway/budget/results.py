"""The answer to ImportBudget: ``BudgetImportResult`` (schemas/budget/BudgetResult.xsd)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from gateway.soap.results import ResultProblem, result_document


@dataclass(frozen=True, slots=True)
class BudgetProblem(ResultProblem):
    allocation: str | None = None
    position: int | None = None
    ledger_code: str | None = None
    fund_code: str | None = None
    cfr_code: str | None = None
    cost_centre: str | None = None
    expected: str | None = None
    sent: str | None = None

    ATTRIBUTES: ClassVar[tuple[tuple[str, str], ...]] = (
        ("allocation", "allocation"),
        ("position", "position"),
        ("ledger_code", "ledgerCode"),
        ("fund_code", "fundCode"),
        ("cfr_code", "cfrCode"),
        ("cost_centre", "costCentre"),
        ("expected", "expected"),
        ("sent", "sent"),
    )


def budget_result(
    success: bool, errors: Sequence[BudgetProblem] = (), *, serial_number: str | None = None
) -> bytes:
    return result_document("BudgetImportResult", success, errors, serialNumber=serial_number)
