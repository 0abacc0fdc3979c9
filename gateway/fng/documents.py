"""FNG's XML answers, parsed with the same guards as any outside document and checked
against their schemas before anything uses them; and the errors that say FNG's answer was
not one to use."""

from __future__ import annotations

from typing import Final

from lxml import etree

from gateway.errors import UpstreamError, XmlRejected
from gateway.xmlsafe import Limits, SchemaRegistry, parse

#: The schemas FNG's answers are checked against (names in the gateway's schema registry).
BANKS_SCHEMA: Final = "ejournal/Banks.xsd"
RESULTS_SCHEMA: Final = "ejournal/Results.xsd"
CHART_SCHEMA: Final = "budget/GLAccounts.xsd"
YEARS_SCHEMA: Final = "budget/FiscalYear.xsd"
BUDGET_RESULT_SCHEMA: Final = "budget/BudgetResult.xsd"
EPROC_SCHEMA: Final = "eproc/FngEProcurement.xsd"


class FngDeclined(UpstreamError):
    """FNG answered a call with a status that is neither success nor a fault of its own (a
    4xx other than its refusal of the token or keys): it did not do what was asked."""

    def __init__(self, operation: str, status: int, body: bytes) -> None:
        super().__init__(f"FNG answered {operation} with HTTP {status}", status=status)
        #: The start of what FNG said, for a person to read.
        self.reason = body.decode("utf-8", "replace")[:500]


class FngAnswerUnusable(UpstreamError):
    """FNG's answer is broken XML or not the document its schema describes. After a write,
    FNG may have done what was asked all the same."""


def answer_document(
    body: bytes, schemas: SchemaRegistry, schema: str, limits: Limits, what: str
) -> etree._Element:
    """The document FNG answered ``what`` with, or :class:`FngAnswerUnusable`."""
    try:
        root = parse(body, limits)
    except XmlRejected as exc:
        raise FngAnswerUnusable(
            f"FNG answered {what} with a broken document: {exc.message}"
        ) from None
    issues = schemas.issues(schema, root)
    if issues:
        raise FngAnswerUnusable(f"FNG answered {what} with an unexpected document: {issues[0]}")
    return root
