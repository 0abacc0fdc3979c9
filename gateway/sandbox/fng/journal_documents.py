"""The documents FNG's journal interface answers with (``schemas/ejournal/``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

from lxml import etree

from gateway.sandbox.fng.journal_rules import BankLedger, RuleError

#: What GetBanks reports as ``fmsVersion``: the sandbox's own version of the interface.
FMS_VERSION: Final = "6.93.0-sandbox"


def banks_document(
    system_identifier: str, banks: Iterable[tuple[str, BankLedger]]
) -> etree._Element:
    """The ``Request`` document of ``Banks.xsd``: each bank with its last row versions."""
    root = etree.Element("Request")
    etree.SubElement(
        root,
        "Header",
        requestDateTime=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-4] + "Z",
        systemIdentifier=system_identifier,
        fmsVersion=FMS_VERSION,
    )
    banks_el = etree.SubElement(root, "Banks")
    for code, ledger in banks:
        etree.SubElement(
            banks_el,
            "Bank",
            externalReference=code,
            lastOrderRowVersion=_row_version(ledger, "Orders"),
            lastSettlementRowVersion=_row_version(ledger, "Settlements"),
            lastOrderReversalRowVersion=_row_version(ledger, "OrderReversals"),
            lastSettlementReversalRowVersion=_row_version(ledger, "SettlementReversals"),
        )
    return root


def _row_version(ledger: BankLedger, section: str) -> str:
    value = ledger.row_version(section)
    return str(value) if value else ""


def journal_result(
    *,
    success: bool,
    system_identifier: str | None,
    submission_id: str | None,
    line_count: int | None = None,
    errors: Iterable[RuleError] = (),
) -> etree._Element:
    """The ``JournalResult`` document of ``Results.xsd``."""
    root = etree.Element("JournalResult", isSuccess="true" if success else "false")
    if system_identifier is not None:
        root.set("systemIdentifier", system_identifier)
    if submission_id is not None:
        root.set("submissionID", submission_id)
    if line_count is not None:
        root.set("transactionLineCount", str(line_count))
    _add_errors(root, errors)
    return root


def audit_result(errors: Iterable[RuleError] = ()) -> etree._Element:
    """The ``AuditResult`` document of ``Results.xsd``."""
    errors = list(errors)
    root = etree.Element("AuditResult", isSuccess="false" if errors else "true")
    _add_errors(root, errors)
    return root


def _add_errors(root: etree._Element, errors: Iterable[RuleError]) -> None:
    errors_el: etree._Element | None = None
    for error in errors:
        if errors_el is None:
            errors_el = etree.SubElement(root, "Errors")
        element = etree.SubElement(errors_el, "Error", code=error.code)
        for name, value in (
            ("bank", error.bank),
            ("section", error.section),
            ("transactionId", error.transaction_id),
            ("expected", error.expected),
            ("sent", error.sent),
        ):
            if value is not None:
                element.set(name, value)
        element.text = error.message
