"""FMS 6's budget planning model and its Budget Import checks, as the sandbox's FNG has them.

Financial years with their periods, a chart of accounts per year, and cost centres are
read from the database into the frozen values below. A ``Message`` document that has
passed its schema is read into a :class:`Budget`; :func:`check` compares it with what
the database holds (a :class:`BudgetView`) and returns every broken rule, not only the
first. Nothing here touches the database: :class:`gateway.sandbox.fng.budgets.Budgets`
reads the view and imports the budget in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Final

from lxml import etree

LEDGER_TYPES: Final = ("EX", "ES", "IN")
OPEN: Final = "Open"
CLOSED: Final = "Closed"
#: What LowestOpenPeriod says when every period is closed.
ALL_CLOSED: Final = 13

#: The sections an error can concern (``allocation`` in BudgetResult.xsd).
HEADER: Final = "Header"
FUND_ALLOCATION: Final = "FundAllocation"
COST_CENTRE_ALLOCATION: Final = "CostCentreAllocation"

#: Period names, by calendar month (not the locale's: FMS's are English).
MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

_LISTED_CODES: Final = 10


def add_months(day: date, months: int) -> date:
    """The first-of-month ``day`` moved by whole months."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, day.day)


def collapse(text: str | None) -> str:
    """A value as XSD's ``whiteSpace="collapse"`` reads it."""
    return " ".join((text or "").split())


@dataclass(frozen=True, slots=True)
class School:
    """The school of a database, as the documents' headers name it."""

    name: str
    la_number: str
    school_number: str


@dataclass(frozen=True, slots=True)
class Period:
    number: int
    name: str
    state: str
    starts: date


@dataclass(frozen=True, slots=True)
class FinancialYear:
    #: The FinancialYearID of the chart's header.
    id: int
    #: The YearDescription, such as ``2026/27``; a budget names its year by it.
    description: str
    state: str
    starts: date
    next_starts: date
    lowest_open_period: int
    periods: tuple[Period, ...]

    @property
    def closed(self) -> bool:
        return self.state == CLOSED

    def contains(self, day: date) -> bool:
        return self.starts <= day < self.next_starts


def monthly_periods(starts: date, lowest_open_period: int) -> tuple[Period, ...]:
    """Twelve calendar-month periods from ``starts``; those before the lowest open are closed."""
    periods = []
    for number in range(1, 13):
        begins = add_months(starts, number - 1)
        state = CLOSED if number < lowest_open_period else OPEN
        periods.append(Period(number, MONTHS[begins.month - 1], state, begins))
    return tuple(periods)


def period_of(starts: date, day: date) -> int:
    """The number of the monthly period of a year beginning ``starts`` that holds ``day``."""
    return (day.year - starts.year) * 12 + day.month - starts.month + 1


@dataclass(frozen=True, slots=True)
class Fund:
    fund_code: str
    cfr_code: str


@dataclass(frozen=True, slots=True)
class LedgerCode:
    ledger_type: str
    code: str
    description: str
    group: str
    short_code: str
    normal_profile: str
    normal_vat: str
    services: bool
    funds: tuple[Fund, ...]

    def cfr_code(self, fund_code: str) -> str | None:
        """The CFR code of one of this ledger code's funds; None if it has no such fund."""
        for fund in self.funds:
            if fund.fund_code == fund_code:
                return fund.cfr_code
        return None


@dataclass(frozen=True, slots=True)
class CostCentre:
    code: str
    description: str


@dataclass(frozen=True, slots=True)
class Chart:
    """What ExportGlAccount answers: a year's chart of accounts and the cost centres."""

    school: School
    year: FinancialYear
    ledger_codes: tuple[LedgerCode, ...]
    cost_centres: tuple[CostCentre, ...]


@dataclass(frozen=True, slots=True)
class FiscalYears:
    """What ExportFinancialYears answers: the school and its years, earliest first."""

    school: School
    years: tuple[FinancialYear, ...]


@dataclass(frozen=True, slots=True)
class Allocation:
    """One FundAllocation or CostCentreAllocation of a budget."""

    section: str
    #: Counted from 1 within its section.
    position: int
    ledger_code: str
    amount: Decimal
    fund_code: str | None = None
    #: The CFR heading of a fund allocation (a cost-centre allocation's is ignored).
    cfr_code: str | None = None
    cost_centre: str | None = None
    profile: str | None = None


@dataclass(frozen=True, slots=True)
class Budget:
    la_number: str
    school_number: str
    date_created: str
    #: Canonical decimal text of the SerialNumber (no sign, no leading zeros).
    serial_number: str
    financial_year: str
    allocations: tuple[Allocation, ...]


@dataclass(frozen=True, slots=True)
class BudgetView:
    """The database as a budget sees it: its school, years, chart and cost centres."""

    school: School
    serial_taken: bool
    years: tuple[FinancialYear, ...]
    #: The ledger codes of the budget's year (empty when the year is unknown).
    chart: Mapping[str, LedgerCode]
    cost_centres: frozenset[str]

    def year(self, description: str) -> FinancialYear | None:
        for year in self.years:
            if year.description == description:
                return year
        return None


@dataclass(frozen=True, slots=True)
class BudgetProblem:
    """One broken rule, as a BudgetImportResult ``Error`` reports it."""

    code: str
    message: str
    allocation: str | None = None
    position: int | None = None
    ledger_code: str | None = None
    fund_code: str | None = None
    cfr_code: str | None = None
    cost_centre: str | None = None
    expected: str | None = None
    sent: str | None = None


def canonical_serial(text: str) -> str:
    """An xs:positiveInteger as plain digits (``+007`` is ``7``), however long it is."""
    return text.lstrip("+").lstrip("0") or "0"


def serial_number_of(root: etree._Element) -> str | None:
    """The SerialNumber a document states, if it has one where a Message would (any shape)."""
    element = root.find("Header/SerialNumber")
    if element is None or not collapse(element.text):
        return None
    return collapse(element.text)


def read_budget(root: etree._Element) -> Budget:
    """Read a ``Message`` document that has been validated against BudgetImport.xsd."""
    header = root.find("Header")
    budget = root.find("Budget")
    assert header is not None and budget is not None
    allocations = [
        Allocation(
            FUND_ALLOCATION,
            position,
            collapse(element.findtext("LedgerCode")),
            Decimal(collapse(element.findtext("Amount"))),
            fund_code=collapse(element.findtext("FundCode")),
            cfr_code=collapse(element.findtext("CFRCode")),
            profile=element.findtext("Profile"),
        )
        for position, element in enumerate(
            budget.iterfind("FundAllocations/FundAllocation"), start=1
        )
    ]
    allocations.extend(
        Allocation(
            COST_CENTRE_ALLOCATION,
            position,
            collapse(element.findtext("LedgerCode")),
            Decimal(collapse(element.findtext("Amount"))),
            cost_centre=collapse(element.findtext("CostCentre")),
            profile=element.findtext("Profile"),
        )
        for position, element in enumerate(
            budget.iterfind("CostCentreAllocations/CostCentreAllocation"), start=1
        )
    )
    return Budget(
        la_number=header.findtext("LANo") or "",
        school_number=header.findtext("SchoolNo") or "",
        date_created=collapse(header.findtext("DateCreated")),
        serial_number=canonical_serial(collapse(header.findtext("SerialNumber"))),
        financial_year=collapse(budget.findtext("FinancialYear")),
        allocations=tuple(allocations),
    )


def check(budget: Budget, view: BudgetView) -> list[BudgetProblem]:
    """Every rule the budget breaks: the header's first, then each allocation's in order."""
    errors: list[BudgetProblem] = []
    school = view.school
    expected_school = f"{school.la_number}/{school.school_number}"
    sent_school = f"{budget.la_number}/{budget.school_number}"
    if sent_school != expected_school:
        errors.append(
            BudgetProblem(
                "WRONG_SCHOOL",
                f"The budget is for school {sent_school}, but this database is "
                f"{school.name}'s, {expected_school}.",
                allocation=HEADER,
                expected=expected_school,
                sent=sent_school,
            )
        )
    if view.serial_taken:
        errors.append(
            BudgetProblem(
                "DUPLICATE_SERIAL",
                f"A budget with serial number {budget.serial_number} has already been "
                "imported into this database.",
                allocation=HEADER,
                expected="a serial number not imported before",
                sent=budget.serial_number,
            )
        )
    year = view.year(budget.financial_year)
    if year is None:
        errors.append(
            BudgetProblem(
                "UNKNOWN_YEAR",
                f"There is no financial year {budget.financial_year!r} in this database.",
                allocation=HEADER,
                expected=_one_of("a financial year of this database", _descriptions(view.years)),
                sent=budget.financial_year,
            )
        )
    elif year.closed:
        open_years = _descriptions(y for y in view.years if not y.closed)
        errors.append(
            BudgetProblem(
                "YEAR_CLOSED",
                f"The financial year {year.description} is closed; budgets can only be "
                "imported into an open year.",
                allocation=HEADER,
                expected=_one_of("an open financial year", open_years),
                sent=year.description,
            )
        )
    if not budget.allocations:
        errors.append(
            BudgetProblem(
                "NO_ALLOCATIONS",
                "The budget holds no fund allocations and no cost-centre allocations.",
                allocation=HEADER,
                expected="at least one FundAllocation or CostCentreAllocation",
                sent="0",
            )
        )
    for allocation in budget.allocations:
        errors.extend(_check_allocation(allocation, year, view))
    return errors


def _check_allocation(
    allocation: Allocation, year: FinancialYear | None, view: BudgetView
) -> list[BudgetProblem]:
    where = f"{allocation.section} {allocation.position}"
    errors: list[BudgetProblem] = []
    ledger = view.chart.get(allocation.ledger_code)
    if year is not None and ledger is None:
        errors.append(
            _allocation_error(
                "UNKNOWN_LEDGER_CODE",
                f"{where}: ledger code {allocation.ledger_code!r} is not in the chart of "
                f"accounts of {year.description}.",
                allocation,
                expected=f"a ledger code of the chart of {year.description}",
                sent=allocation.ledger_code,
            )
        )
    if ledger is not None and allocation.section == FUND_ALLOCATION:
        fund_code = allocation.fund_code or ""
        cfr_code = ledger.cfr_code(fund_code)
        if cfr_code is None:
            funds = sorted(f.fund_code for f in ledger.funds)
            errors.append(
                _allocation_error(
                    "UNKNOWN_FUND",
                    f"{where}: fund {fund_code!r} is not one of ledger code "
                    f"{ledger.code}'s funds ({', '.join(funds) or 'none'}).",
                    allocation,
                    expected=_one_of(f"a fund of ledger code {ledger.code}", funds),
                    sent=fund_code,
                )
            )
        elif cfr_code != allocation.cfr_code:
            errors.append(
                _allocation_error(
                    "WRONG_CFR",
                    f"{where}: ledger code {ledger.code} in fund {fund_code} is reported "
                    f"under CFR code {cfr_code}, not {allocation.cfr_code!r}.",
                    allocation,
                    expected=cfr_code,
                    sent=allocation.cfr_code,
                )
            )
    if allocation.section == COST_CENTRE_ALLOCATION:
        cost_centre = allocation.cost_centre or ""
        if cost_centre not in view.cost_centres:
            errors.append(
                _allocation_error(
                    "UNKNOWN_COST_CENTRE",
                    f"{where}: there is no cost centre {cost_centre!r} in this database.",
                    allocation,
                    expected=_one_of("a cost centre of this database", sorted(view.cost_centres)),
                    sent=cost_centre,
                )
            )
    return errors


def _allocation_error(
    code: str, message: str, allocation: Allocation, *, expected: str, sent: str | None
) -> BudgetProblem:
    return BudgetProblem(
        code,
        message,
        allocation=allocation.section,
        position=allocation.position,
        ledger_code=allocation.ledger_code,
        fund_code=allocation.fund_code,
        cfr_code=allocation.cfr_code,
        cost_centre=allocation.cost_centre,
        expected=expected,
        sent=sent,
    )


def _descriptions(years: Iterable[FinancialYear]) -> list[str]:
    return [year.description for year in years]


def _one_of(words: str, known: list[str]) -> str:
    if known and len(known) <= _LISTED_CODES:
        return f"{words} ({', '.join(known)})"
    return words
