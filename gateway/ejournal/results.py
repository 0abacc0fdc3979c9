"""The documents the E-Journal service answers with (schemas/ejournal/Results.xsd, Banks.xsd)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from lxml import etree

RESULTS_SCHEMA: Final = "ejournal/Results.xsd"
BANKS_SCHEMA: Final = "ejournal/Banks.xsd"


@dataclass(frozen=True, slots=True)
class JournalError:
    code: str
    message: str
    bank: str | None = None
    section: str | None = None
    transaction_id: str | None = None
    expected: str | None = None
    sent: str | None = None

    def element(self) -> etree._Element:
        error = etree.Element("Error", code=self.code)
        for name, value in (
            ("bank", self.bank),
            ("section", self.section),
            ("transactionId", self.transaction_id),
            ("expected", self.expected),
            ("sent", self.sent),
        ):
            if value is not None:
                error.set(name, value)
        error.text = self.message
        return error


def journal_result(
    success: bool,
    errors: Sequence[JournalError] = (),
    *,
    system_identifier: str | None = None,
    submission_id: str | None = None,
    lines: int | None = None,
) -> bytes:
    root = etree.Element("JournalResult", isSuccess="true" if success else "false")
    if system_identifier is not None:
        root.set("systemIdentifier", system_identifier)
    if submission_id is not None:
        root.set("submissionID", submission_id)
    if lines is not None:
        root.set("transactionLineCount", str(lines))
    if errors:
        holder = etree.SubElement(root, "Errors")
        holder.extend(error.element() for error in errors)
    return etree.tostring(root, encoding="utf-8")


def audit_result(success: bool, errors: Sequence[JournalError] = ()) -> bytes:
    root = etree.Element("AuditResult", isSuccess="true" if success else "false")
    if errors:
        holder = etree.SubElement(root, "Errors")
        holder.extend(error.element() for error in errors)
    return etree.tostring(root, encoding="utf-8")


def empty_banks(system_identifier: str, now: datetime) -> bytes:
    """The Banks document for a payment system FNG does not know (isSuccess is false)."""
    root = etree.Element("Request")
    etree.SubElement(
        root,
        "Header",
        requestDateTime=now.replace(tzinfo=None).isoformat(timespec="milliseconds"),
        systemIdentifier=system_identifier,
    )
    etree.SubElement(root, "Banks")
    return etree.tostring(root, encoding="utf-8")


def serialize(element: etree._Element) -> bytes:
    """A document element as UTF-8 without an XML declaration, to embed in a response."""
    return etree.tostring(element, encoding="utf-8")
