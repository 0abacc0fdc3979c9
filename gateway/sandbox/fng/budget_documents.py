"""The budget planning documents the sandbox answers with (``schemas/budget/``).

Dates are written as ``xs:date`` and export times as UTC ``xs:dateTime``, both of which
FMS's readers take. School names are cut to the 50 characters FMS holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Final

from lxml import etree

from gateway.sandbox.fng.budget_rules import (
    BudgetProblem,
    Chart,
    FinancialYear,
    FiscalYears,
    School,
)
from gateway.sandbox.fng.journal_documents import FMS_VERSION

#: The chart of accounts is encoded as FMS encoded it.
CHART_ENCODING: Final = "iso-8859-1"
SCHOOL_NAME_LENGTH: Final = 50


def _add(parent: etree._Element, tag: str, text: str) -> etree._Element:
    element = etree.SubElement(parent, tag)
    element.text = text
    return element


def _school_name(school: School) -> str:
    return school.name[:SCHOOL_NAME_LENGTH]


def chart_document(chart: Chart, *, exported: date | None = None) -> etree._Element:
    """The ``GLAccounts`` document of ``GLAccounts.xsd``, cost centres last."""
    exported = exported or datetime.now(UTC).date()
    root = etree.Element("GLAccounts", Version="1.0")
    header = etree.SubElement(root, "Header")
    _add(header, "LANumber", chart.school.la_number)
    _add(header, "SchoolNumber", chart.school.school_number)
    _add(header, "SchoolName", _school_name(chart.school))
    _add(header, "ExportDate", exported.isoformat())
    _add(header, "FinancialYearID", str(chart.year.id))
    _add(header, "FinancialYearDescription", chart.year.description)
    _add(header, "FinancialYearStartDate", chart.year.starts.isoformat())
    codes = etree.SubElement(root, "LedgerCodes")
    for ledger in chart.ledger_codes:
        entry = etree.SubElement(codes, "LedgerCode")
        _add(entry, "LedgerType", ledger.ledger_type)
        _add(entry, "LedgerCode", ledger.code)
        _add(entry, "LedgerDescription", ledger.description)
        _add(entry, "LedgerGroup", ledger.group)
        _add(entry, "ShortCode", ledger.short_code)
        _add(entry, "NormalProfile", ledger.normal_profile)
        _add(entry, "NormalVAT", ledger.normal_vat)
        _add(entry, "Services", "True" if ledger.services else "False")
        funds = etree.SubElement(entry, "Funds")
        for fund in ledger.funds:
            fund_el = etree.SubElement(funds, "Fund")
            _add(fund_el, "FundCode", fund.fund_code)
            _add(fund_el, "CFRCode", fund.cfr_code)
    centres = etree.SubElement(root, "CostCentres")
    for centre in chart.cost_centres:
        centre_el = etree.SubElement(centres, "CostCentre")
        _add(centre_el, "CostCentreCode", centre.code)
        _add(centre_el, "CostCentreDescription", centre.description)
    return root


def fiscal_year_document(
    found: FiscalYears, *, user: str, exported: datetime | None = None
) -> etree._Element:
    """The ``FiscalYear`` document of ``FiscalYear.xsd``: every year, earliest first."""
    exported = exported or datetime.now(UTC)
    root = etree.Element("FiscalYear", VersionNumber="1.0")
    header = etree.SubElement(root, "Header")
    _add(header, "SchoolName", _school_name(found.school))
    _add(header, "SchoolNumber", found.school.school_number)
    _add(header, "LANumber", found.school.la_number)
    _add(header, "ExportDateTime", exported.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    _add(header, "SoftwareVersion", FMS_VERSION)
    _add(header, "User", user)
    definitions = etree.SubElement(root, "YearDefinitions")
    for year in found.years:
        _year_definition(definitions, year)
    return root


def _year_definition(parent: etree._Element, year: FinancialYear) -> None:
    definition = etree.SubElement(parent, "YearDefinition")
    _add(definition, "YearDescription", year.description)
    _add(definition, "YearState", year.state)
    _add(definition, "NumberofPeriods", str(len(year.periods)))
    _add(definition, "LowestOpenPeriod", str(year.lowest_open_period))
    _add(definition, "ThisYearStarts", year.starts.isoformat())
    _add(definition, "NextYearStarts", year.next_starts.isoformat())
    _add(definition, "DualPeriodClose", "False")
    periods = etree.SubElement(definition, "Periods")
    for period in year.periods:
        period_el = etree.SubElement(periods, "PeriodDefinitions")
        _add(period_el, "PeriodNumber", str(period.number))
        _add(period_el, "PeriodName", period.name)
        _add(period_el, "PeriodState", period.state)
        _add(period_el, "PeriodStartDate", period.starts.isoformat())


def budget_result(
    *, success: bool, serial_number: str | None, errors: Iterable[BudgetProblem] = ()
) -> etree._Element:
    """The ``BudgetImportResult`` document of ``BudgetResult.xsd``."""
    root = etree.Element("BudgetImportResult", isSuccess="true" if success else "false")
    if serial_number is not None:
        root.set("serialNumber", serial_number)
    errors_el: etree._Element | None = None
    for error in errors:
        if errors_el is None:
            errors_el = etree.SubElement(root, "Errors")
        element = etree.SubElement(errors_el, "Error", code=error.code)
        for name, value in (
            ("allocation", error.allocation),
            ("position", None if error.position is None else str(error.position)),
            ("ledgerCode", error.ledger_code),
            ("fundCode", error.fund_code),
            ("cfrCode", error.cfr_code),
            ("costCentre", error.cost_centre),
            ("expected", error.expected),
            ("sent", error.sent),
        ):
            if value is not None:
                element.set(name, value)
        element.text = error.message
    return root
