"""The documents the sandbox answers with: FMS's XML results and HTTP problems."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Final

from aiohttp import web
from lxml import etree

from gateway.sandbox.journal import BankLedger, RuleError

XML_CONTENT_TYPE: Final = "application/xml"
PROBLEM_CONTENT_TYPE: Final = "application/problem+json"

#: What GetBanks reports as ``fmsVersion``: the sandbox's own version of the interface.
FMS_VERSION: Final = "6.93.0-sandbox"


def xml_response(
    root: etree._Element, *, status: int = 200, encoding: str = "utf-8"
) -> web.Response:
    """An XML document in ``encoding``, with a declaration saying so (characters the
    encoding lacks are written as character references)."""
    if encoding == "utf-8":
        body = etree.tostring(root, xml_declaration=True, encoding="utf-8")
    else:
        # Written by hand, in double quotes as FMS wrote it.
        declaration = f'<?xml version="1.0" encoding="{encoding}"?>\n'.encode("ascii")
        serialized = etree.tostring(root, xml_declaration=False, encoding=encoding)
        assert isinstance(serialized, bytes)  # only encoding="unicode" gives text
        body = declaration + serialized
    return web.Response(body=body, status=status, content_type=XML_CONTENT_TYPE, charset=encoding)


def problem_text(status: int, detail: str, *, title: str | None = None) -> str:
    """The JSON of an RFC 9457 problem document."""
    body = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    return json.dumps(body)


def problem(status: int, detail: str, *, headers: Mapping[str, str] | None = None) -> web.Response:
    """An RFC 9457 problem response."""
    return web.Response(
        status=status,
        text=problem_text(status, detail),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


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
