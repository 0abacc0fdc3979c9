"""FNG's journal interface, as the sandbox emulates it (``schemas/fng/openapi.yaml``).

The journal rules are FMS 6's, applied by :mod:`gateway.sandbox.fng.journal_rules` inside
one database transaction.
"""

from __future__ import annotations

import hashlib
from typing import Final

from aiohttp import web

from gateway.sandbox import responses
from gateway.sandbox.appkeys import SANDBOX_STATE, SCHEMAS
from gateway.sandbox.errors import DocumentRefused
from gateway.sandbox.fng import journal_documents
from gateway.sandbox.fng.access import LIMITS, authorize, refusal, xml_body, xml_document
from gateway.sandbox.fng.journal_rules import RuleError, header_attributes, read_journal
from gateway.sandbox.parsing import read_xml

CONTROL_ACCOUNTS_XSD: Final = "ejournal/ControlAccounts.xsd"
AUDIT_MESSAGE_LIMIT: Final = 4000


async def get_banks(request: web.Request) -> web.Response:
    """``GET /api/JournalInterface/GetBanks?systemIdentifier=…``."""
    state = request.app[SANDBOX_STATE]
    state.stats.requests["GetBanks"] += 1
    database_id, _ = await authorize(request, "GetBanks")
    system_identifier = request.query.get("systemIdentifier", "")
    if not system_identifier:
        raise refusal(web.HTTPBadRequest, "the systemIdentifier query parameter is required")
    banks = await state.journals.banks(database_id, system_identifier)
    if banks is None:
        raise refusal(
            web.HTTPNotFound,
            "no payment system with that identifier is set up in this database",
        )
    return responses.xml_response(journal_documents.banks_document(system_identifier, banks))


async def post_journals(request: web.Request) -> web.Response:
    """``POST /api/JournalInterface/PostJournals`` with a ``ControlAccounts`` document."""
    state = request.app[SANDBOX_STATE]
    state.stats.requests["PostJournals"] += 1
    database_id, _ = await authorize(request, "PostJournals")
    body, root = await xml_document(request)
    state.stats.last_journal_sha256 = hashlib.sha256(body).hexdigest()
    system_identifier, submission_id = header_attributes(root)
    issues = request.app[SCHEMAS].issues(CONTROL_ACCOUNTS_XSD, root)
    if issues:
        errors = [RuleError("SCHEMA", f"The document breaks the schema at {i}.") for i in issues]
        result = journal_documents.journal_result(
            success=False,
            system_identifier=system_identifier,
            submission_id=submission_id,
            errors=errors,
        )
        return responses.xml_response(result)
    journal = read_journal(root)
    outcome = await state.journals.post(database_id, journal)
    result = journal_documents.journal_result(
        success=outcome.posted,
        system_identifier=journal.system_identifier,
        submission_id=journal.submission_id,
        line_count=journal.lines if outcome.posted else None,
        errors=outcome.errors,
    )
    return responses.xml_response(result)


async def post_audit_message(request: web.Request) -> web.Response:
    """``POST /api/JournalInterface/PostAuditMessage`` with ``<AuditMessage>text</…>``."""
    state = request.app[SANDBOX_STATE]
    state.stats.requests["PostAuditMessage"] += 1
    database_id, client_id = await authorize(request, "PostAuditMessage")
    body = await xml_body(request)
    try:
        root = read_xml(body, LIMITS)
    except DocumentRefused as exc:
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
        return responses.xml_response(journal_documents.audit_result([error]))
    await state.journals.add_audit_message(database_id, client_id, message)
    return responses.xml_response(journal_documents.audit_result())


def add_routes(app: web.Application, prefix: str = "/fng") -> None:
    base = f"{prefix}/api/JournalInterface"
    app.router.add_get(f"{base}/GetBanks", get_banks, allow_head=False)
    app.router.add_post(f"{base}/PostJournals", post_journals)
    app.router.add_post(f"{base}/PostAuditMessage", post_audit_message)
