"""FNG's journal and budget planning interfaces, as the sandbox emulates them.

The contract is ``schemas/fng/openapi.yaml``. Every call is checked as FNG checks it: a
SIMS ID bearer token (signature, issuer, audience, expiry, not revoked) or 401; then the
``fngapi`` scope, the ``scope`` header and the two keys of a database set up for the
token's client, or 403. The journal rules are FMS 6's, applied by
:mod:`gateway.sandbox.journal`, and the Budget Import checks are applied by
:mod:`gateway.sandbox.budget`, each inside one database transaction.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Final

from aiohttp import web
from lxml import etree

from gateway.errors import PayloadTooLarge, XmlRejected
from gateway.sandbox import budget_documents, documents, tokens
from gateway.sandbox.appkeys import SANDBOX_STATE, SCHEMAS, SIMSID
from gateway.sandbox.budget import BudgetError, read_budget, serial_number_of
from gateway.sandbox.journal import RuleError, header_attributes, read_journal
from gateway.xmlsafe import Limits, parse

CONTROL_ACCOUNTS_XSD: Final = "ejournal/ControlAccounts.xsd"
BUDGET_IMPORT_XSD: Final = "budget/BudgetImport.xsd"
AUDIT_MESSAGE_LIMIT: Final = 4000

#: Generous: the sandbox must take whatever a real payment system could send.
LIMITS: Final = Limits(
    max_bytes=32 * 1024 * 1024,
    max_depth=64,
    max_elements=2_000_000,
    max_attributes=40_000_000,
)

_XML_TYPES: Final = frozenset({"application/xml", "text/xml"})
_QUERY_DATE: Final = re.compile(r"[0-9]{2}/[0-9]{2}/[0-9]{4}")


def refusal(
    exc_class: type[web.HTTPException], detail: str, *, challenge: str | None = None
) -> web.HTTPException:
    headers = {"WWW-Authenticate": challenge} if challenge else None
    return exc_class(
        text=documents.problem_text(exc_class.status_code, detail),
        content_type=documents.PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def _invalid_token(detail: str) -> web.HTTPException:
    quoted = detail.replace("\\", "").replace('"', "'")
    challenge = f'Bearer error="invalid_token", error_description="{quoted}"'
    return refusal(web.HTTPUnauthorized, detail, challenge=challenge)


async def authorize(request: web.Request, operation: str) -> tuple[int, str]:
    """The database and client a call is for, counted as the database's ``operation``;
    raises 401 or 403 otherwise."""
    state = request.app[SANDBOX_STATE]
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _invalid_token("a SIMS ID bearer token is required")
    try:
        claims = await state.verify_token(
            token.strip(), issuer=request.app[SIMSID].issuer_for(request)
        )
    except tokens.TokenError as exc:
        raise _invalid_token(str(exc)) from None
    if tokens.FNG_SCOPE not in claims.scopes:
        raise refusal(
            web.HTTPForbidden,
            f"the token lacks the {tokens.FNG_SCOPE} scope",
            challenge=f'Bearer error="insufficient_scope", scope="{tokens.FNG_SCOPE}"',
        )
    if request.headers.get("scope", "").strip() != tokens.FNG_SCOPE:
        raise refusal(web.HTTPForbidden, f"the scope header must be {tokens.FNG_SCOPE}")
    psk = request.headers.get("X-PSK", "")
    client_key = request.headers.get("X-Client-Id", "")
    database_id = await state.database_for(claims.client_id, psk, client_key)
    if database_id is None:
        raise refusal(
            web.HTTPForbidden,
            "X-PSK and X-Client-Id do not name a database set up for this client",
        )
    state.stats.reached(database_id, operation)
    return database_id, claims.client_id


async def xml_body(request: web.Request) -> bytes:
    content_type = request.content_type
    if content_type not in _XML_TYPES and not content_type.endswith("+xml"):
        raise refusal(web.HTTPUnsupportedMediaType, "the body must be application/xml")
    return await request.read()


async def _xml_document(request: web.Request) -> etree._Element:
    """The request's XML body, parsed safely; 415, 413 or 400 problems otherwise."""
    body = await xml_body(request)
    try:
        return parse(body, LIMITS)
    except PayloadTooLarge as exc:
        raise refusal(web.HTTPRequestEntityTooLarge, exc.message) from None
    except XmlRejected as exc:
        raise refusal(web.HTTPBadRequest, exc.message) from None


async def get_banks(request: web.Request) -> web.Response:
    """``GET /api/JournalInterface/GetBanks?systemIdentifier=…``."""
    state = request.app[SANDBOX_STATE]
    state.stats.requests["GetBanks"] += 1
    database_id, _ = await authorize(request, "GetBanks")
    system_identifier = request.query.get("systemIdentifier", "")
    if not system_identifier:
        raise refusal(web.HTTPBadRequest, "the systemIdentifier query parameter is required")
    banks = await state.banks(database_id, system_identifier)
    if banks is None:
        raise refusal(
            web.HTTPNotFound,
            "no payment system with that identifier is set up in this database",
        )
    return documents.xml_response(documents.banks_document(system_identifier, banks))


async def post_journals(request: web.Request) -> web.Response:
    """``POST /api/JournalInterface/PostJournals`` with a ``ControlAccounts`` document."""
    state = request.app[SANDBOX_STATE]
    state.stats.requests["PostJournals"] += 1
    database_id, _ = await authorize(request, "PostJournals")
    root = await _xml_document(request)
    system_identifier, submission_id = header_attributes(root)
    issues = request.app[SCHEMAS].issues(CONTROL_ACCOUNTS_XSD, root)
    if issues:
        errors = [RuleError("SCHEMA", f"The document breaks the schema at {i}.") for i in issues]
        result = documents.journal_result(
            success=False,
            system_identifier=system_identifier,
            submission_id=submission_id,
            errors=errors,
        )
        return documents.xml_response(result)
    journal = read_journal(root)
    outcome = await state.post_journal(database_id, journal)
    result = documents.journal_result(
        success=outcome.posted,
        system_identifier=journal.system_identifier,
        submission_id=journal.submission_id,
        line_count=journal.lines if outcome.posted else None,
        errors=outcome.errors,
    )
    return documents.xml_response(result)


async def post_audit_message(request: web.Request) -> web.Response:
    """``POST /api/JournalInterface/PostAuditMessage`` with ``<AuditMessage>text</…>``."""
    state = request.app[SANDBOX_STATE]
    state.stats.requests["PostAuditMessage"] += 1
    database_id, client_id = await authorize(request, "PostAuditMessage")
    body = await xml_body(request)
    try:
        root = parse(body, LIMITS)
    except XmlRejected as exc:
        raise refusal(web.HTTPBadRequest, exc.message) from None
    if root.tag != "AuditMessage" or len(root) or root.attrib:
        raise refusal(web.HTTPBadRequest, "the body must be <AuditMessage>text</AuditMessage>")
    message = root.text or ""
    if len(message) > AUDIT_MESSAGE_LIMIT:
        error = RuleError(
            "MESSAGE_TOO_LONG",
            f"An audit message holds at most {AUDIT_MESSAGE_LIMIT} characters; "
            f"this one has {len(message)}.",
            expected=f"at most {AUDIT_MESSAGE_LIMIT} characters",
            sent=f"{len(message)} characters",
        )
        return documents.xml_response(documents.audit_result([error]))
    await state.add_audit_message(database_id, client_id, message)
    return documents.xml_response(documents.audit_result())


def _query_date(text: str) -> date | None:
    """A ``dd/MM/yyyy`` date; None if the text is not one."""
    if not _QUERY_DATE.fullmatch(text):
        return None
    try:
        return datetime.strptime(text, "%d/%m/%Y").date()
    except ValueError:
        return None


async def export_gl_account(request: web.Request) -> web.Response:
    """``GET /api/BudgetInterface/ExportGlAccount?date=dd/MM/yyyy``: a year's chart."""
    state = request.app[SANDBOX_STATE]
    state.stats.requests["ExportGlAccount"] += 1
    database_id, _ = await authorize(request, "ExportGlAccount")
    text = request.query.get("date", "")
    day = _query_date(text)
    if day is None:
        raise refusal(web.HTTPBadRequest, f"the date must be dd/MM/yyyy; {text!r} is not")
    chart = await state.chart(database_id, day)
    if chart is None:
        raise refusal(
            web.HTTPNotFound, f"no financial year of this database contains {day:%d/%m/%Y}"
        )
    return documents.xml_response(
        budget_documents.chart_document(chart), encoding=budget_documents.CHART_ENCODING
    )


async def export_financial_years(request: web.Request) -> web.Response:
    """``GET /api/BudgetInterface/ExportFinancialYears``: the years and their periods."""
    state = request.app[SANDBOX_STATE]
    state.stats.requests["ExportFinancialYears"] += 1
    database_id, client_id = await authorize(request, "ExportFinancialYears")
    found = await state.financial_years(database_id)
    return documents.xml_response(budget_documents.fiscal_year_document(found, user=client_id))


async def import_budget(request: web.Request) -> web.Response:
    """``POST /api/BudgetInterface/ImportBudget`` with a budget ``Message`` document."""
    state = request.app[SANDBOX_STATE]
    state.stats.requests["ImportBudget"] += 1
    database_id, client_id = await authorize(request, "ImportBudget")
    root = await _xml_document(request)
    issues = request.app[SCHEMAS].issues(BUDGET_IMPORT_XSD, root)
    if issues:
        errors = [BudgetError("SCHEMA", f"The document breaks the schema at {i}.") for i in issues]
        result = budget_documents.budget_result(
            success=False, serial_number=serial_number_of(root), errors=errors
        )
        return documents.xml_response(result)
    budget = read_budget(root)
    outcome = await state.import_budget(database_id, client_id, budget)
    result = budget_documents.budget_result(
        success=outcome.imported, serial_number=budget.serial_number, errors=outcome.errors
    )
    return documents.xml_response(result)


def add_routes(app: web.Application, prefix: str = "/fng") -> None:
    base = f"{prefix}/api/JournalInterface"
    app.router.add_get(f"{base}/GetBanks", get_banks, allow_head=False)
    app.router.add_post(f"{base}/PostJournals", post_journals)
    app.router.add_post(f"{base}/PostAuditMessage", post_audit_message)
    base = f"{prefix}/api/BudgetInterface"
    app.router.add_get(f"{base}/ExportGlAccount", export_gl_account, allow_head=False)
    app.router.add_get(f"{base}/ExportFinancialYears", export_financial_years, allow_head=False)
    app.router.add_post(f"{base}/ImportBudget", import_budget)
