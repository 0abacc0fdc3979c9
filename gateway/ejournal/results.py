"""The documents the E-Journal service answers with (schemas/ejournal/Results.xsd, Banks.xsd)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from lxml import etree

from gateway.soap.results import ResultProblem, result_document


@dataclass(frozen=True, slots=True)
class JournalProblem(ResultProblem):
    bank: str | None = None
    section: str | None = None
    transaction_id: str | None = None
    expected: str | None = None
    sent: str | None = None

    ATTRIBUTES: ClassVar[tuple[tuple[str, str], ...]] = (
        ("bank", "bank"),
        ("section", "section"),
        ("transaction_id", "transactionId"),
        ("expected", "expected"),
        ("sent", "sent"),
    )


def journal_result(
    success: bool,
    errors: Sequence[JournalProblem] = (),
    *,
    system_identifier: str | None = None,
    submission_id: str | None = None,
    lines: int | None = None,
) -> bytes:
    return result_document(
        "JournalResult",
        success,
        errors,
        systemIdentifier=system_identifier,
        submissionID=submission_id,
        transactionLineCount=None if lines is None else str(lines),
    )


def audit_result(success: bool, errors: Sequence[JournalProblem] = ()) -> bytes:
    return result_document("AuditResult", success, errors)


def empty_banks(system_identifier: str, now: datetime) -> bytes:
    """The Banks document for a payment system FNG does not know (isSuccess is false)."""
    root = etree.Element("Request")
    etree.SubElement(
        root,
        "Header",
        requestDateTime=now.replace(tzinfo=None).isoformat(timespec="milliseconds"),
        systemIdentifier=system_identifier,
        fmsVersion="",  # the Header FMS wrote always had it; FNG gave none to copy here
    )
    etree.SubElement(root, "Banks")
    return etree.tostring(root, encoding="utf-8")


def serialize(element: etree._Element) -> bytes:
    """A document element as UTF-8 without an XML declaration, to embed in a response."""
    return etree.tostring(element, encoding="utf-8")
