"""The budget planning documents: what the gateway reads from charts, years and budgets."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

from lxml import etree

from gateway.budget.results import BudgetProblem
from gateway.store.tables import SUBMISSION_ID_LENGTH
from gateway.xmlsafe import SchemaRegistry

IMPORT_SCHEMA: Final = "budget/BudgetImport.xsd"

_UK_DATE: Final = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")


def parse_date(text: str) -> date:
    """A date as SOAP clients send it (``2026-11-27``, with a zone or a time) or as FNG
    writes it (``27/11/2026``). Raises ValueError."""
    text = text.strip()
    uk = _UK_DATE.match(text)
    if uk:
        return date(int(uk.group(3)), int(uk.group(2)), int(uk.group(1)))
    return date.fromisoformat(text[:10])


def fng_date(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def _text(element: etree._Element, path: str) -> str:
    return (element.findtext(path) or "").strip()


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart of accounts: each ledger code's funds and their CFR codes, the cost centres."""

    la_number: str
    school_number: str
    year: str
    funds: dict[str, dict[str, str]]  # ledger code -> fund code -> CFR code
    cost_centres: frozenset[str] | None  # None when the chart has no cost centre section


def read_chart(root: etree._Element) -> Chart:
    funds: dict[str, dict[str, str]] = {}
    for entry in root.iterfind("LedgerCodes/LedgerCode"):
        code = _text(entry, "LedgerCode")
        funds[code] = {
            _text(fund, "FundCode"): _text(fund, "CFRCode") for fund in entry.iterfind("Funds/Fund")
        }
    section = root.find("CostCentres")
    cost_centres = (
        frozenset(_text(item, "CostCentreCode") for item in section.iterfind("CostCentre"))
        if section is not None
        else None
    )
    return Chart(
        la_number=_text(root, "Header/LANumber"),
        school_number=_text(root, "Header/SchoolNumber"),
        year=_text(root, "Header/FinancialYearDescription"),
        funds=funds,
        cost_centres=cost_centres,
    )


@dataclass(frozen=True, slots=True)
class Year:
    description: str
    state: str
    starts: date


def read_years(root: etree._Element) -> dict[str, Year]:
    years = {}
    for entry in root.iterfind("YearDefinitions/YearDefinition"):
        description = _text(entry, "YearDescription")
        years[description] = Year(
            description=description,
            state=_text(entry, "YearState"),
            starts=parse_date(_text(entry, "ThisYearStarts")),
        )
    return years


@dataclass(frozen=True, slots=True)
class Allocation:
    kind: str  # FundAllocation | CostCentreAllocation
    position: int
    ledger_code: str
    fund_code: str | None = None
    cfr_code: str | None = None
    cost_centre: str | None = None

    def error(self, code: str, message: str, **values: str) -> BudgetProblem:
        return BudgetProblem(
            code,
            message,
            allocation=self.kind,
            position=self.position,
            ledger_code=self.ledger_code,
            fund_code=self.fund_code,
            cfr_code=self.cfr_code if self.kind == "FundAllocation" else None,
            cost_centre=self.cost_centre,
            **values,
        )


@dataclass(frozen=True, slots=True)
class Budget:
    element: etree._Element
    la_number: str
    school_number: str
    serial_number: str
    year: str
    allocations: tuple[Allocation, ...]

    def payload_hash(self) -> str:
        """What makes two imports the same: the school, the serial number and the budget
        itself in canonical form; DateCreated does not count, so a regenerated file with the
        same content still matches."""
        digest = hashlib.sha256()
        for part in (self.la_number, self.school_number, self.serial_number):
            digest.update(part.encode())
            digest.update(b"\0")
        budget = self.element.find("Budget")
        assert budget is not None
        digest.update(etree.tostring(budget, method="c14n", exclusive=True, with_comments=False))
        return digest.hexdigest()


def read_budget(
    element: etree._Element, schemas: SchemaRegistry
) -> tuple[Budget | None, list[BudgetProblem]]:
    if element.tag != "Message":
        return None, [BudgetProblem("SCHEMA", f"expected a Message document, not {element.tag}")]
    issues = schemas.issues(IMPORT_SCHEMA, element)
    if issues:
        return None, [BudgetProblem("SCHEMA", str(issue)) for issue in issues]
    # An xs:positiveInteger, normalized as int() would without its limit of 4,300 digits.
    serial = _text(element, "Header/SerialNumber").lstrip("+").lstrip("0")
    if len(serial) > SUBMISSION_ID_LENGTH:
        return None, [
            BudgetProblem(
                "SCHEMA",
                f"the SerialNumber has more than {SUBMISSION_ID_LENGTH} digits",
                allocation="Header",
                expected=f"at most {SUBMISSION_ID_LENGTH} digits",
                sent=f"{len(serial)} digits",
            )
        ]
    allocations: list[Allocation] = []
    for position, item in enumerate(element.iterfind("Budget/FundAllocations/FundAllocation"), 1):
        allocations.append(
            Allocation(
                "FundAllocation",
                position,
                _text(item, "LedgerCode"),
                fund_code=_text(item, "FundCode"),
                cfr_code=_text(item, "CFRCode"),
            )
        )
    for position, item in enumerate(
        element.iterfind("Budget/CostCentreAllocations/CostCentreAllocation"), 1
    ):
        allocations.append(
            Allocation(
                "CostCentreAllocation",
                position,
                _text(item, "LedgerCode"),
                cost_centre=_text(item, "CostCentre"),
            )
        )
    return Budget(
        element=element,
        la_number=_text(element, "Header/LANo"),
        school_number=_text(element, "Header/SchoolNo"),
        serial_number=serial,
        year=_text(element, "Budget/FinancialYear"),
        allocations=tuple(allocations),
    ), []


def check_budget(budget: Budget, chart: Chart) -> list[BudgetProblem]:
    """Every ledger code, fund, CFR heading and cost centre must be in the year's chart."""
    errors: list[BudgetProblem] = []
    for allocation in budget.allocations:
        funds = chart.funds.get(allocation.ledger_code)
        if funds is None:
            errors.append(
                allocation.error(
                    "UNKNOWN_LEDGER_CODE",
                    f"ledger code {allocation.ledger_code} is not in the {chart.year} "
                    "chart of accounts",
                    expected=f"a ledger code of the {chart.year} chart",
                    sent=allocation.ledger_code,
                )
            )
            continue
        if allocation.kind == "FundAllocation":
            assert allocation.fund_code is not None
            cfr = funds.get(allocation.fund_code)
            if cfr is None:
                errors.append(
                    allocation.error(
                        "UNKNOWN_FUND",
                        f"fund {allocation.fund_code} is not a fund of ledger code "
                        f"{allocation.ledger_code}",
                        expected=" or ".join(sorted(funds)) or "no fund",
                        sent=allocation.fund_code,
                    )
                )
            elif cfr != allocation.cfr_code:
                errors.append(
                    allocation.error(
                        "WRONG_CFR",
                        f"the CFR heading of ledger code {allocation.ledger_code} fund "
                        f"{allocation.fund_code} is {cfr}",
                        expected=cfr,
                        sent=allocation.cfr_code or "",
                    )
                )
        elif chart.cost_centres is not None and allocation.cost_centre not in chart.cost_centres:
            errors.append(
                allocation.error(
                    "UNKNOWN_COST_CENTRE",
                    f"cost centre {allocation.cost_centre} is not in the chart of accounts",
                    expected="a cost centre of the chart",
                    sent=allocation.cost_centre or "",
                )
            )
    return errors


def now_date() -> date:
    """Today in England, where the schools are."""
    return datetime.now(ZoneInfo("Europe/London")).date()
