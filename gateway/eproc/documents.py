"""Documents in: content orders, invoices and credit notes from a portal's index to FNG.

Documents move through the document ledger (``eproc_documents``), one step at a time, each
step recorded before the next begins, so a poll that dies anywhere is resumed by the next:

    FetchDoc ─▶ fetched ─┬─ breaks a rule ──────────────▶ quarantined (never acknowledged)
                         └─ delivered to FNG ─▶ delivered ─ UpdateDocumentStatus ─▶ acknowledged

FNG keeps one copy per (portal, document id), so delivering again after a crash is harmless;
acknowledging again is too. Nothing is acknowledged that FNG has not accepted. Operators may
retry a quarantined document (it goes back to ``fetched`` and is checked again) or release it
(``releasing``: acknowledged to the portal without reaching FNG, then ``released``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum
from typing import Final

import sqlalchemy as sa
from lxml import etree

from gateway.eproc.job import (
    PortalJob,
    Step,
    insert_once,
    now,
    set_aside,
    supplier_of,
)
from gateway.eproc.portal import IndexEntry, Portal
from gateway.eproc.rules import (
    Problem,
    Verdict,
    check_content_order,
    check_invoice,
)
from gateway.eproc.verdicts import ebis_document
from gateway.errors import GatewayError, PortalDocumentMissing, UpstreamError, XmlRejected
from gateway.fng import FngDeclined
from gateway.store.tables import eproc_documents
from gateway.tenancy.model import DatabaseTarget
from gateway.xmlsafe import parse

log = logging.getLogger(__name__)

COLLECTED: Final = frozenset({"order", "invoice", "creditnote"})
#: The rule of an index entry that breaks the standard (its id, its type, its date).
INDEX_ENTRY: Final = "index_entry"
#: Ids per ``IN (...)`` list, well under every backend's limit on bound parameters.
_IN_CHUNK: Final = 500


class DocState(StrEnum):
    FETCHED = "fetched"
    DELIVERED = "delivered"
    ACKNOWLEDGED = "acknowledged"
    QUARANTINED = "quarantined"
    RELEASING = "releasing"
    RELEASED = "released"


@dataclass(frozen=True, slots=True)
class _Doc:
    """A row of the document ledger, as far as a step needs it."""

    id: int
    document_id: str
    doc_type: str
    state: DocState
    content: bytes


class Documents(Step):
    """Collects a portal's new documents and carries each through the ledger."""

    async def collect(self, job: PortalJob, portal: Portal, target: DatabaseTarget) -> None:
        """Read the index, finish what earlier polls left under way, then take in what is new.
        Raises :class:`~gateway.errors.PortalError` when the portal fails."""
        entries = await self._index(job, portal)
        for row_id in await self._pending(job.portal_id):
            await self._advance(job, portal, target, await self._load(row_id))
        known = await self._known(job.portal_id, [entry.ledger_id for entry in entries])
        for entry in entries:
            state = known.get(entry.ledger_id)
            if entry.problem is not None:
                if state is None:
                    await self._set_aside_entry(job, entry)
                continue  # one bad entry holds up none of the others
            if entry.doc_type not in COLLECTED:
                continue  # quotes are not FMS's business
            if state is None:
                collected = await self._fetch(job, portal, entry)
                if collected is not None:
                    await self._advance(job, portal, target, collected)
            elif state is DocState.ACKNOWLEDGED:
                # Still offered: the acknowledgement did not take; make it again.
                await self._acknowledge(job, portal, entry.document_id)

    async def _index(self, job: PortalJob, portal: Portal) -> list[IndexEntry]:
        """FetchIndex: every document "not processed and awaiting collection", however long
        the portal was away. After an outage longer than ``recover_after_seconds``, the
        gateway also asks FetchIndexFromDate, which "will return documents that have and have
        not been processed", only to warn of documents another client processed meanwhile:
        FMS imported what FetchIndex listed, so those are never collected."""
        entries = await self._client.fetch_index(portal)
        recover_after = timedelta(seconds=self._settings.recover_after_seconds)
        if job.last_success_at is not None and now() - job.last_success_at > recover_after:
            since = job.last_success_at - timedelta(hours=1)
            listed = {entry.ledger_id for entry in entries}
            dated = [
                entry.ledger_id
                for entry in await self._client.fetch_index_from_date(portal, since)
                if entry.ledger_id not in listed and entry.doc_type in COLLECTED
            ]
            known = await self._known(job.portal_id, dated)
            elsewhere = sorted(set(dated) - known.keys())
            if elsewhere:
                log.warning(
                    "another client collected documents of this portal while the gateway was "
                    "away; they are processed there and not imported",
                    extra={
                        "portal": job.label,
                        "count": len(elsewhere),
                        "document_ids": ", ".join(elsewhere[:20]),
                        "since": since.isoformat(),
                    },
                )
        return entries

    # -- the ledger --------------------------------------------------------------------------

    async def _known(self, portal_id: int, document_ids: list[str]) -> dict[str, DocState]:
        """The ledger's state of the documents the index lists (not of all the portal's)."""
        known: dict[str, DocState] = {}
        async with self._store.read() as conn:
            for start in range(0, len(document_ids), _IN_CHUNK):
                rows = await conn.execute(
                    sa.select(eproc_documents.c.document_id, eproc_documents.c.state).where(
                        eproc_documents.c.portal_id == portal_id,
                        eproc_documents.c.document_id.in_(document_ids[start : start + _IN_CHUNK]),
                    )
                )
                known.update((row.document_id, DocState(row.state)) for row in rows)
        return known

    async def _pending(self, portal_id: int) -> list[int]:
        async with self._store.read() as conn:
            return list(
                (
                    await conn.execute(
                        sa.select(eproc_documents.c.id)
                        .where(
                            eproc_documents.c.portal_id == portal_id,
                            eproc_documents.c.state.in_(
                                [DocState.FETCHED, DocState.DELIVERED, DocState.RELEASING]
                            ),
                            eproc_documents.c.next_attempt_at <= now(),
                        )
                        .order_by(eproc_documents.c.id)
                    )
                ).scalars()
            )

    async def _load(self, row_id: int) -> _Doc:
        async with self._store.read() as conn:
            row = (
                await conn.execute(
                    sa.select(
                        eproc_documents.c.document_id,
                        eproc_documents.c.doc_type,
                        eproc_documents.c.state,
                        eproc_documents.c.content,
                    ).where(eproc_documents.c.id == row_id)
                )
            ).one()
        return _Doc(row_id, row.document_id, row.doc_type, DocState(row.state), bytes(row.content))

    async def _record(
        self,
        job: PortalJob,
        document_id: str,
        doc_type: str,
        content: bytes,
        state: DocState,
        problem: Problem | None = None,
    ) -> int | None:
        """A new row of the ledger; None when another replica recorded it first."""
        moment = now()
        return await insert_once(
            self._store,
            eproc_documents.insert().values(
                portal_id=job.portal_id,
                document_id=document_id,
                doc_type=doc_type,
                state=state.value,
                content=content,
                rule=None if problem is None else problem.rule,
                reason=None if problem is None else problem.reason,
                attempts=0,
                next_attempt_at=moment,
                created_at=moment,
                updated_at=moment,
            ),
        )

    async def _fetch(self, job: PortalJob, portal: Portal, entry: IndexEntry) -> _Doc | None:
        """FetchDoc, and record the document before doing anything else with it."""
        try:
            content = await self._client.fetch_doc(portal, entry.document_id)
        except PortalDocumentMissing:
            log.info(
                "a listed document was gone when fetched",
                extra={"portal": job.label, "document_id": entry.document_id},
            )
            return None
        row_id = await self._record(
            job, entry.document_id, entry.doc_type, content, DocState.FETCHED
        )
        if row_id is None:
            return None
        self._metrics.documents.labels("collected").inc()
        return _Doc(row_id, entry.document_id, entry.doc_type, DocState.FETCHED, content)

    async def _set_aside_entry(self, job: PortalJob, entry: IndexEntry) -> None:
        """Quarantine an index entry that breaks the standard, as it was listed; it is never
        fetched, and the rest of the index is collected."""
        assert entry.problem is not None
        problem = Problem(INDEX_ENTRY, entry.problem)
        doc_type = entry.doc_type[:16] or "-"
        if await self._record(
            job, entry.ledger_id, doc_type, entry.listed, DocState.QUARANTINED, problem
        ):
            self._metrics.documents.labels("quarantined").inc()
            log.warning(
                "index entry quarantined",
                extra={"portal": job.label, "rule": INDEX_ENTRY, "reason": entry.problem},
            )

    async def _set_state(self, row_id: int, old: DocState, new: DocState) -> None:
        async with self._store.write() as conn:
            await conn.execute(
                eproc_documents.update()
                .where(eproc_documents.c.id == row_id, eproc_documents.c.state == old.value)
                .values(state=new.value, updated_at=now())
            )

    async def _retry_later(self, row_id: int, error: str) -> None:
        async with self._store.write() as conn:
            attempts = (
                int(
                    await conn.scalar(
                        sa.select(eproc_documents.c.attempts).where(eproc_documents.c.id == row_id)
                    )
                    or 0
                )
                + 1
            )
            delay = min(self._settings.max_backoff_seconds, 5.0 * 2 ** min(attempts, 16))
            await conn.execute(
                eproc_documents.update()
                .where(eproc_documents.c.id == row_id)
                .values(
                    attempts=attempts,
                    reason=error[:500],
                    next_attempt_at=now() + timedelta(seconds=delay),
                    updated_at=now(),
                )
            )

    async def _quarantine(
        self, job: PortalJob, row_id: int, document_id: str, problems: list[Problem]
    ) -> None:
        reason = await set_aside(self._store, eproc_documents, row_id, problems)
        self._metrics.documents.labels("quarantined").inc()
        log.warning(
            "document quarantined",
            extra={
                "portal": job.label,
                "document_id": document_id,
                "rule": problems[0].rule,
                "reason": reason,
            },
        )

    # -- one document, one step at a time ----------------------------------------------------

    async def _advance(
        self, job: PortalJob, portal: Portal, target: DatabaseTarget, doc: _Doc
    ) -> None:
        state = doc.state
        if state is DocState.FETCHED:
            verdict = self.check(job, doc.doc_type, doc.content)
            if verdict.problems:
                await self._quarantine(job, doc.id, doc.document_id, list(verdict.problems))
                return
            if not await self._deliver(job, target, doc, verdict):
                return
            self._let_through(job, "in", doc.document_id, verdict.warnings)
            state = DocState.DELIVERED
        if state is DocState.DELIVERED:
            await self._acknowledge(job, portal, doc.document_id)
            await self._set_state(doc.id, DocState.DELIVERED, DocState.ACKNOWLEDGED)
            self._metrics.documents.labels("acknowledged").inc()
            log.info(
                "document delivered and acknowledged",
                extra={"portal": job.label, "document_id": doc.document_id},
            )
        elif state is DocState.RELEASING:
            await self._acknowledge(job, portal, doc.document_id)
            await self._set_state(doc.id, DocState.RELEASING, DocState.RELEASED)
            self._metrics.documents.labels("released").inc()

    async def _acknowledge(self, job: PortalJob, portal: Portal, document_id: str) -> None:
        """UpdateDocumentStatus(id, true). A portal that answers DocumentNotExistException
        no longer offers the document to this login ("Documents that are not downloaded
        should expire after a designated period and then be removed"): there is nothing
        left to mark, and the rest of the portal's documents go on."""
        try:
            await self._client.update_document_status(portal, document_id, True)
        except PortalDocumentMissing as exc:
            log.warning(
                "the portal no longer has a document to acknowledge; nothing left to mark",
                extra={"portal": job.label, "document_id": document_id, "error": exc.message},
            )

    def check(self, job: PortalJob, doc_type: str, content: bytes) -> Verdict:
        """FMS's import rules for one document; no problem means it may go to FNG."""
        try:
            sent = parse(content, self._limits)
        except XmlRejected as exc:
            return Verdict((Problem("not_xml", f"the document is not usable XML: {exc.message}"),))
        root = ebis_document(sent)
        expect = supplier_of(job, root)
        if doc_type == "order":
            verdict = check_content_order(
                root,
                expect,
                self._schemas,
                require_handshake_codes=self._require_handshake_codes(job),
                checksum_policy=self._checksum_policy(job),
            )
        else:
            verdict = check_invoice(root, expect, self._schemas, sent=sent)
        if root is not sent and verdict.body is None:
            # FNG gets every document in one form: the profiles', without a namespace.
            body = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
            verdict = replace(verdict, body=body)
        return verdict

    async def _deliver(
        self, job: PortalJob, target: DatabaseTarget, row: _Doc, verdict: Verdict
    ) -> bool:
        """Deliver to FNG, as FMS read it and with its own type; True once FNG holds it.
        FNG's failures are retried later."""
        try:
            # Only FNG's receipt for this very document says FNG holds it: a success status
            # over anything else (a proxy's page, a broken answer) says nothing, and the
            # document is delivered again (FNG keeps one copy) rather than acknowledged to
            # the portal on a guess.
            receipt = await self._fng.post_document(
                target,
                source=job.name,
                document_id=row.document_id,
                doc_type=verdict.doc_type or row.doc_type,
                body=verdict.body or row.content,
            )
            if (receipt.tag, receipt.get("source"), receipt.get("documentId")) != (
                "DocumentReceipt",
                job.name,
                row.document_id,
            ):
                raise UpstreamError("FNG answered PostDocument with another document's receipt")
        except FngDeclined as exc:
            rule = "fng_conflict" if exc.status == 409 else "fng_refused"
            await self._quarantine(
                job,
                row.id,
                row.document_id,
                [Problem(rule, f"FNG answered HTTP {exc.status}: {exc.reason}")],
            )
            return False
        except GatewayError as exc:
            await self._retry_later(row.id, exc.message)
            log.warning(
                "FNG did not take a document; it will be delivered again",
                extra={"portal": job.label, "error": exc.message},
            )
            return False
        await self._set_state(row.id, DocState.FETCHED, DocState.DELIVERED)
        self._metrics.documents.labels("delivered").inc()
        return True
