"""Building budget Message documents (BudgetImport.xsd) for the sandbox's tests."""

from __future__ import annotations

from datetime import date
from xml.sax.saxutils import escape

from gateway.sandbox import DemoSeed


def _element(tag: str, value: str | None) -> str:
    return "" if value is None else f"<{tag}>{escape(value)}</{tag}>"


def fund(
    ledger: str, fund_code: str, cfr: str, amount: str = "1000.00", profile: str | None = None
) -> str:
    """A FundAllocation."""
    return (
        "<FundAllocation>"
        f"{_element('LedgerCode', ledger)}{_element('FundCode', fund_code)}"
        f"{_element('CFRCode', cfr)}{_element('Amount', amount)}{_element('Profile', profile)}"
        "</FundAllocation>"
    )


def centre(
    ledger: str,
    cost_centre: str,
    amount: str = "250.00",
    *,
    cfr: str | None = None,
    profile: str | None = None,
) -> str:
    """A CostCentreAllocation."""
    return (
        "<CostCentreAllocation>"
        f"{_element('LedgerCode', ledger)}{_element('CostCentre', cost_centre)}"
        f"{_element('CFRCode', cfr)}{_element('Amount', amount)}{_element('Profile', profile)}"
        "</CostCentreAllocation>"
    )


def message(
    year: str,
    funds: list[str] | None = None,
    centres: list[str] | None = None,
    *,
    serial: str = "1",
    la: str = "123",
    school: str = "4567",
    created: str = "2026-03-02T09:30:00",
) -> bytes:
    """A Message; sections given as None are left out."""
    sections = ""
    if funds is not None:
        sections += f"<FundAllocations>{''.join(funds)}</FundAllocations>"
    if centres is not None:
        sections += f"<CostCentreAllocations>{''.join(centres)}</CostCentreAllocations>"
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        "<Message><Header>"
        f"{_element('LANo', la)}{_element('SchoolNo', school)}"
        f"{_element('DateCreated', created)}{_element('SerialNumber', serial)}"
        "</Header><Budget>"
        f"{_element('FinancialYear', year)}{sections}"
        "</Budget></Message>"
    ).encode()


def demo_budget(demo: DemoSeed, *, serial: str = "1", year: str | None = None) -> bytes:
    """A valid budget for the demo's open year: every fund allocation, two cost centres."""
    return message(
        year or demo.open_year,
        [fund(ledger, fund_code, cfr) for ledger, fund_code, cfr in demo.fund_allocations],
        [centre("5300", "ENG", profile="Twelfths"), centre("5300", "MAT", "125.50")],
        serial=serial,
        la=demo.la_number,
        school=demo.establishment_number,
    )


def year_start(description: str) -> date:
    """The 1 April that begins the year ``2026/27``."""
    return date(int(description[:4]), 4, 1)


def fmt(day: date) -> str:
    """A date as ExportGlAccount takes it, dd/MM/yyyy."""
    return day.strftime("%d/%m/%Y")
