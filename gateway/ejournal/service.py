"""The E-Journal operations: GetBanks, PostJournals (exactly once), PostAuditMessage."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Final

from lxml import etree

from gateway.ejournal.journal import (
    ROW_VERSION_ATTRIBUTES,
    Journal,
    read_journal,
    read_journal_source,
)
from gateway.ejournal.results import (
    JournalProblem,
    audit_result,
    empty_banks,
    journal_result,
    serialize,
)
from gateway.errors import (
    GatewayError,
    NotPermitted,
    ReconciliationFailed,
    UpstreamError,
)
from gateway.fng import FngClient
from gateway.fng.submissions import post_once
from gateway.soap.results import replayed
from gateway.store.ledger import Ledger, LedgerKey, Reconciled, SubmissionConflict
from gateway.tenancy.model import Caller, Interface
from gateway.xmlsafe import Limits, SchemaRegistry

log = logging.getLogger(__name__)


MAX_AUDIT_MESSAGE: Final = 4000


class EJournalService:
    def __init__(
        self, fng: FngClient, ledger: Ledger, schemas: SchemaRegistry, limits: Limits
    ) -> None:
        self._fng = fng
        self._ledger = ledger
        self._schemas = schemas
        self._limits = limits

    @staticmethod
    def _check_system(caller: Caller, system_identifier: str) -> None:
        if system_identifier not in caller.system_identifiers:
            raise NotPermitted(
                f"the account may not use payment system {system_identifier!r} for this database"
            )

    async def get_banks(self, caller: Caller, system_identifier: str) -> tuple[bytes, bool]:
        """The Banks document and isSuccess (false when FNG does not know the system)."""
        self._check_system(caller, system_identifier)
        banks = await self._fng.get_banks(caller.target, system_identifier)
        if banks is None:
            return empty_banks(system_identifier, datetime.now(UTC)), False
        return serialize(banks), True

    async def post_journals(
        self, caller: Caller, document: etree._Element | None, source: bytes | None = None
    ) -> bytes:
        """Post a journal once: ``document`` when it came as XML inside xmlData, or ``source``,
        the UTF-8 bytes of one that came escaped as text, which is streamed and goes to FNG
        as it is (never serialized again)."""
        if source is not None:
            reading = read_journal_source(source, self._schemas, self._limits)
        elif document is not None:
            reading = read_journal(document, self._schemas)
        else:
            return journal_result(
                False, [JournalProblem("SCHEMA", "xmlData holds no journal document")]
            )
        journal = reading.accepted
        if journal is None:
            errors = reading.errors
            if (
                reading.journal is not None
                and reading.journal.system_identifier in caller.system_identifiers
            ):
                errors = errors + await self._against_fng_banks(caller, reading.journal, errors)
            return journal_result(
                False,
                errors,
                system_identifier=reading.system_identifier,
                submission_id=reading.submission_id,
            )
        self._check_system(caller, journal.system_identifier)
        key = LedgerKey(
            caller.target.database_id,
            Interface.EJOURNAL.value,
            journal.system_identifier,
            journal.submission_id,
        )
        if source is not None and not journal.rewritten:
            payload = source  # as it came, streamed or read whole
        else:
            # Sent inline, or its namespace stripped: the tree is what FNG gets.
            assert journal.element is not None
            payload = etree.tostring(journal.element, encoding="utf-8", xml_declaration=True)

        async def reconcile(expectations: str) -> Reconciled:
            return await self._reconcile(caller, journal, json.loads(expectations))

        try:
            submitted = await post_once(
                self._ledger,
                key,
                lambda: self._fng.post_journals(caller.target, payload),
                payload_hash=journal.payload_hash(),
                expectations=journal.expectations(),
                reconcile=reconcile,
                duplicate_code="DUPLICATE_SUBMISSION",
                landed=lambda: _landed(journal),
            )
        except SubmissionConflict as exc:
            return journal_result(
                False,
                [
                    JournalProblem(
                        "SUBMISSION_CONFLICT",
                        exc.message,
                        section="Header",
                        sent=journal.submission_id,
                    )
                ],
                system_identifier=journal.system_identifier,
                submission_id=journal.submission_id,
            )
        return replayed(submitted.result) if submitted.replay else submitted.result

    async def _against_fng_banks(
        self, caller: Caller, journal: Journal, found: list[JournalProblem]
    ) -> list[JournalProblem]:
        """For a journal already refused, what FNG's banks tell besides (a read, nothing
        posted): banks not mapped for the payment system, and row versions that do not
        continue FNG's. So one answer lists what the gateway can find; the codes mapped
        for products, VAT and charges only FNG knows, and it checks them once the journal
        passes the gateway's own checks. Nothing is added when FNG cannot be asked."""
        system = journal.system_identifier
        try:
            banks = await self._fng.get_banks(caller.target, system)
            if banks is None:
                return [
                    JournalProblem(
                        "UNKNOWN_SYSTEM",
                        f"FNG has no payment system {system!r} for this database",
                        section="Header",
                        sent=system,
                    )
                ]
            reported = {
                bank.get("externalReference"): bank for bank in banks.iterfind("Banks/Bank")
            }
        except GatewayError as exc:
            log.info("FNG's banks could not be read to check a refused journal: %s", exc.message)
            return []
        flagged = {(error.bank, error.section) for error in found if error.code == "ROW_VERSION"}
        errors: list[JournalProblem] = []
        for bank in journal.banks:
            fng_bank = reported.get(bank.reference)
            if fng_bank is None:
                if not any(e.code == "UNMAPPED_BANK" and e.bank == bank.reference for e in errors):
                    errors.append(
                        JournalProblem(
                            "UNMAPPED_BANK",
                            f"bank {bank.reference} is not mapped for payment system {system}",
                            bank=bank.reference,
                            expected=f"a bank mapped for {system}: "
                            + (", ".join(sorted(str(r) for r in reported)) or "none"),
                            sent=bank.reference,
                        )
                    )
                continue
            for section in bank.sections:
                current = fng_bank.get(ROW_VERSION_ATTRIBUTES[section.name])
                sent = section.last_row_version.strip()
                if current is None or (bank.reference, section.name) in flagged:
                    continue
                expected = int(current or "0") + len(section.ids)
                number = sent.isascii() and sent.isdigit()
                if (number and int(sent) == expected) or (not sent and not expected):
                    continue
                errors.append(
                    JournalProblem(
                        "ROW_VERSION",
                        f"lastRowVersion of {section.name} in bank {bank.reference} must be "
                        f"{expected} (FNG's last row version, {int(current or '0')}, plus "
                        f"{len(section.ids)} transactions)",
                        bank=bank.reference,
                        section=section.name,
                        expected=str(expected),
                        sent=section.last_row_version,
                    )
                )
        return errors

    async def _reconcile(
        self, caller: Caller, journal: Journal, expected: dict[str, dict[str, int]]
    ) -> Reconciled:
        """Did a submission whose answer was lost land? FNG posts a journal whole, so it
        landed only if every section it carried has reached its row version."""
        try:
            document = await self._fng.get_banks(caller.target, journal.system_identifier)
        except UpstreamError as exc:
            raise ReconciliationFailed(
                f"an earlier attempt of submission {journal.submission_id} has no known outcome "
                f"and FNG cannot be asked about it now ({exc.message}); send it again later"
            ) from None
        if document is None:
            raise ReconciliationFailed(
                f"an earlier attempt of submission {journal.submission_id} has no known outcome "
                "and GetBanks answered HTTP 404; send it again later"
            )
        banks = {bank.get("externalReference"): bank for bank in document.iterfind("Banks/Bank")}
        checked = 0
        for reference, sections in expected.items():
            bank = banks.get(reference)
            for section, version in sections.items():
                reported = bank.get(ROW_VERSION_ATTRIBUTES[section]) if bank is not None else None
                if reported is None:
                    continue  # FNG does not report this section: it proves nothing either way
                if int(reported or "0") < version:
                    log.info(
                        "reconciled: the earlier attempt did not land",
                        extra={"submission_id": journal.submission_id},
                    )
                    return Reconciled(landed=False)
                checked += 1
        if not checked:
            return Reconciled(landed=None)  # nothing to tell by: FNG refuses a duplicate id
        log.info(
            "reconciled: the earlier attempt landed", extra={"submission_id": journal.submission_id}
        )
        return Reconciled(landed=True, result=_landed(journal))

    async def post_audit_message(self, caller: Caller, message: str | None) -> bytes:
        text = (message or "").strip()
        if not text:
            return audit_result(False, [JournalProblem("MESSAGE", "the audit message is empty")])
        if len(text) > MAX_AUDIT_MESSAGE:
            return audit_result(
                False,
                [
                    JournalProblem(
                        "MESSAGE",
                        f"the audit message is longer than {MAX_AUDIT_MESSAGE} characters",
                        expected=f"at most {MAX_AUDIT_MESSAGE}",
                        sent=str(len(text)),
                    )
                ],
            )
        document = etree.Element("AuditMessage")
        document.text = text
        result = await self._fng.post_audit_message(
            caller.target, etree.tostring(document, encoding="utf-8", xml_declaration=True)
        )
        return serialize(result)


def _landed(journal: Journal) -> bytes:
    return journal_result(
        True,
        system_identifier=journal.system_identifier,
        submission_id=journal.submission_id,
        lines=journal.lines,
    )
