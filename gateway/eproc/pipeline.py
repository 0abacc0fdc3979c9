"""One poll of one supplier portal: documents in, authorised orders out, the password kept fresh.

Documents move through the document ledger (``eproc_documents``), one step at a time, each
step recorded before the next begins, so a poll that dies anywhere is resumed by the next:

    FetchDoc ─▶ fetched ─┬─ breaks a rule ──────────────▶ quarantined (never acknowledged)
                         └─ delivered to FNG ─▶ delivered ─ UpdateDocumentStatus ─▶ acknowledged

FNG keeps one copy per (portal, document id), so delivering again after a crash is harmless;
acknowledging again is too. Nothing is acknowledged that FNG has not accepted. Operators may
retry a quarantined document (it goes back to ``fetched`` and is checked again) or release it
(``releasing``: acknowledged to the portal without reaching FNG, then ``released``).

Orders authorised in FNG for the portal's supplier are sent with SendOrder once: an order
whose SendOrder may have reached the portal without an answer is quarantined for an operator
rather than sent again, since a supplier may act on an order twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

import sqlalchemy as sa
from lxml import etree
from pydantic import SecretStr
from sqlalchemy.exc import IntegrityError

from gateway.config import EprocSettings
from gateway.eproc.checksum import ChecksumPolicy
from gateway.eproc.exports import check_authorised_order
from gateway.eproc.origins import content_order, origin_of
from gateway.eproc.portal import UNREACHABLE, IndexEntry, Portal, PortalClient
from gateway.eproc.rules import (
    Expectations,
    Problem,
    Verdict,
    check_content_order,
    check_invoice,
)
from gateway.errors import (
    GatewayError,
    PortalDocumentMissing,
    PortalError,
    PortalRejectedXml,
    UpstreamError,
    XmlRejected,
)
from gateway.fng import FngClient
from gateway.fng.documents import answer_document
from gateway.observability.metrics import Metrics
from gateway.store import Store
from gateway.store.tables import eproc_documents, eproc_orders, portals
from gateway.tenancy.model import DatabaseTarget
from gateway.tenancy.registry import Registry
from gateway.tenancy.secrets import SecretBox
from gateway.xmlsafe import Limits, SchemaRegistry, parse

log = logging.getLogger(__name__)

FNG_SCHEMA: Final = "eproc/FngEProcurement.xsd"
COLLECTED: Final = frozenset({"order", "invoice", "creditnote"})
PASSWORD_MINIMUM_DAYS: Final = 60
#: Ids per ``IN (...)`` list, well under every backend's limit on bound parameters.
_IN_CHUNK: Final = 500


class DocState(StrEnum):
    FETCHED = "fetched"
    DELIVERED = "delivered"
    ACKNOWLEDGED = "acknowledged"
    QUARANTINED = "quarantined"
    RELEASING = "releasing"
    RELEASED = "released"


class OrderState(StrEnum):
    SENDING = "sending"
    DELIVERED = "delivered"
    SENT = "sent"
    QUARANTINED = "quarantined"
    RELEASED = "released"


@dataclass(frozen=True, slots=True)
class PortalJob:
    """A portal due for a poll, with what the poll needs to know about its school."""

    portal_id: int
    database_id: int
    name: str
    url: str
    username: str
    password: SecretStr
    supplier_duns: str
    password_days: int | None
    password_changed_at: datetime
    last_success_at: datetime | None
    expect: Expectations

    @property
    def label(self) -> str:
        return f"{self.database_id}:{self.name}"


@dataclass(frozen=True, slots=True)
class _Doc:
    """A row of the document ledger, as far as a step needs it."""

    id: int
    document_id: str
    doc_type: str
    state: DocState
    content: bytes


def _now() -> datetime:
    return datetime.now(UTC)


class Pipeline:
    def __init__(
        self,
        *,
        store: Store,
        box: SecretBox,
        registry: Registry,
        fng: FngClient,
        client: PortalClient,
        schemas: SchemaRegistry,
        limits: Limits,
        metrics: Metrics,
        settings: EprocSettings,
    ) -> None:
        self._store = store
        self._box = box
        self._registry = registry
        self._fng = fng
        self._client = client
        self._schemas = schemas
        self._limits = limits
        self._metrics = metrics
        self._settings = settings
        #: Passwords a portal has issued that could not yet be stored.
        self._unsaved: dict[int, str] = {}

    # -- the poll --------------------------------------------------------------------------

    async def poll(self, job: PortalJob) -> None:
        """Everything due for one portal. Raises :class:`PortalError` when the portal fails."""
        target = await self._registry.database_target(job.database_id)
        if target is None:
            raise PortalError(f"database {job.database_id} has no active key", code="NO_TARGET")
        portal = Portal(
            job.name,
            job.url,
            job.username,
            self._unsaved.get(job.portal_id) or job.password.get_secret_value(),
        )
        await self._store_unsaved_password(job)
        await self._change_password_if_due(job, portal)
        entries = await self._index(job, portal)
        for row_id in await self._pending(job.portal_id):
            await self._advance(job, portal, target, await self._load(row_id))
        known = await self._known(job.portal_id, [entry.document_id for entry in entries])
        for entry in entries:
            if entry.doc_type not in COLLECTED:
                continue  # quotes are not FMS's business
            state = known.get(entry.document_id)
            if state is None:
                collected = await self._collect(job, portal, entry)
                if collected is not None:
                    await self._advance(job, portal, target, collected)
            elif state is DocState.ACKNOWLEDGED:
                # Still offered: the acknowledgement did not take; make it again.
                await self._client.update_document_status(portal, entry.document_id, True)
        await self._send_orders(job, portal, target)

    async def _index(self, job: PortalJob, portal: Portal) -> list[IndexEntry]:
        recover_after = timedelta(seconds=self._settings.recover_after_seconds)
        if job.last_success_at is not None and _now() - job.last_success_at > recover_after:
            since = job.last_success_at - timedelta(hours=1)
            log.info(
                "recovering a portal after an outage",
                extra={"portal": job.label, "since": since.isoformat()},
            )
            return await self._client.fetch_index_from_date(portal, since)
        return await self._client.fetch_index(portal)

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
                            eproc_documents.c.next_attempt_at <= _now(),
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

    async def _collect(self, job: PortalJob, portal: Portal, entry: IndexEntry) -> _Doc | None:
        """FetchDoc, and record the document before doing anything else with it."""
        try:
            content = await self._client.fetch_doc(portal, entry.document_id)
        except PortalDocumentMissing:
            log.info(
                "a listed document was gone when fetched",
                extra={"portal": job.label, "document_id": entry.document_id},
            )
            return None
        now = _now()
        try:
            async with self._store.write() as conn:
                result = await conn.execute(
                    eproc_documents.insert().values(
                        portal_id=job.portal_id,
                        document_id=entry.document_id,
                        doc_type=entry.doc_type,
                        state=DocState.FETCHED.value,
                        content=content,
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            return None  # another replica collected it first
        key = result.inserted_primary_key
        assert key is not None
        self._metrics.documents.labels("collected").inc()
        return _Doc(int(key[0]), entry.document_id, entry.doc_type, DocState.FETCHED, content)

    # -- one document, one step at a time ----------------------------------------------------

    async def _advance(
        self, job: PortalJob, portal: Portal, target: DatabaseTarget, doc: _Doc
    ) -> None:
        state = doc.state
        if state is DocState.FETCHED:
            verdict = self._check(job, doc.doc_type, doc.content)
            if verdict.problems:
                await self._quarantine(job, doc.id, doc.document_id, list(verdict.problems))
                return
            if not await self._deliver(job, target, doc, verdict):
                return
            self._let_through(job, "in", doc.document_id, verdict.warnings)
            state = DocState.DELIVERED
        if state is DocState.DELIVERED:
            await self._client.update_document_status(portal, doc.document_id, True)
            await self._set_state(doc.id, DocState.DELIVERED, DocState.ACKNOWLEDGED)
            self._metrics.documents.labels("acknowledged").inc()
            log.info(
                "document delivered and acknowledged",
                extra={"portal": job.label, "document_id": doc.document_id},
            )
        elif state is DocState.RELEASING:
            await self._client.update_document_status(portal, doc.document_id, True)
            await self._set_state(doc.id, DocState.RELEASING, DocState.RELEASED)
            self._metrics.documents.labels("released").inc()

    def _checksum_policy(self, job: PortalJob) -> ChecksumPolicy:
        """The portal's checksum policy (for now, every portal has the global one)."""
        return ChecksumPolicy(self._settings.checksum_policy)

    def _require_handshake_codes(self, job: PortalJob) -> bool:
        """Whether the portal's content orders need FMS's handshake codes (for now, the
        global setting)."""
        return self._settings.require_handshake_codes

    def _check(self, job: PortalJob, doc_type: str, content: bytes) -> Verdict:
        try:
            root = parse(content, self._limits)
        except XmlRejected as exc:
            return Verdict((Problem("not_xml", f"the document is not usable XML: {exc.message}"),))
        if doc_type == "order":
            return check_content_order(
                root,
                job.expect,
                self._schemas,
                require_handshake_codes=self._require_handshake_codes(job),
                checksum_policy=self._checksum_policy(job),
            )
        return check_invoice(root, job.expect, self._schemas)

    def _let_through(
        self, job: PortalJob, direction: str, reference: str, warnings: tuple[Problem, ...]
    ) -> None:
        """Log and count what a warn policy let through (``in``: a content order collected;
        ``out``: an authorised order sent)."""
        for warning in warnings:
            self._metrics.checksum_mismatches.labels(job.label, direction).inc()
            log.warning(
                "an order went through with a checksum FMS would refuse (checksum policy warn)",
                extra={
                    "portal": job.label,
                    "direction": direction,
                    "reference": reference,
                    "reason": str(warning),
                },
            )

    async def _deliver(
        self, job: PortalJob, target: DatabaseTarget, row: _Doc, verdict: Verdict
    ) -> bool:
        """Deliver to FNG, as FMS read it and with its own type; True once FNG holds it.
        FNG's failures are retried later."""
        try:
            response = await self._fng.post_document(
                target,
                source=job.name,
                document_id=row.document_id,
                doc_type=verdict.doc_type or row.doc_type,
                body=verdict.body or row.content,
            )
            if response.status in (200, 201):
                # Only FNG's receipt for this very document says FNG holds it: a success
                # status over anything else (a proxy's page, a broken answer) says nothing,
                # and the document is delivered again (FNG keeps one copy) rather than
                # acknowledged to the portal on a guess.
                receipt = answer_document(
                    response, self._schemas, FNG_SCHEMA, self._limits, "PostDocument"
                )
                if (receipt.tag, receipt.get("source"), receipt.get("documentId")) != (
                    "DocumentReceipt",
                    job.name,
                    row.document_id,
                ):
                    raise UpstreamError("FNG answered PostDocument with another document's receipt")
        except GatewayError as exc:
            await self._retry_later(row.id, exc.message)
            log.warning(
                "FNG did not take a document; it will be delivered again",
                extra={"portal": job.label, "error": exc.message},
            )
            return False
        if response.status in (200, 201):
            await self._set_state(row.id, DocState.FETCHED, DocState.DELIVERED)
            self._metrics.documents.labels("delivered").inc()
            return True
        rule = "fng_conflict" if response.status == 409 else "fng_refused"
        reason = response.body.decode("utf-8", "replace")[:500]
        await self._quarantine(
            job,
            row.id,
            row.document_id,
            [Problem(rule, f"FNG answered HTTP {response.status}: {reason}")],
        )
        return False

    async def _quarantine(
        self, job: PortalJob, row_id: int, document_id: str, problems: list[Problem]
    ) -> None:
        reason = "; ".join(str(problem) for problem in problems)
        async with self._store.write() as conn:
            await conn.execute(
                eproc_documents.update()
                .where(eproc_documents.c.id == row_id)
                .values(
                    state=DocState.QUARANTINED.value,
                    rule=problems[0].rule,
                    reason=reason,
                    updated_at=_now(),
                )
            )
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

    async def _set_state(self, row_id: int, old: DocState, new: DocState) -> None:
        async with self._store.write() as conn:
            await conn.execute(
                eproc_documents.update()
                .where(eproc_documents.c.id == row_id, eproc_documents.c.state == old.value)
                .values(state=new.value, updated_at=_now())
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
                    next_attempt_at=_now() + timedelta(seconds=delay),
                    updated_at=_now(),
                )
            )

    # -- authorised orders -------------------------------------------------------------------

    async def _send_orders(self, job: PortalJob, portal: Portal, target: DatabaseTarget) -> None:
        try:
            response = await self._fng.authorised_orders(target)
            if response.status != 200:
                raise PortalError(f"FNG answered AuthorisedOrders with HTTP {response.status}")
            document = answer_document(
                response, self._schemas, FNG_SCHEMA, self._limits, "AuthorisedOrders"
            )
        except GatewayError as exc:
            log.warning(
                "authorised orders could not be read from FNG",
                extra={"portal": job.label, "error": exc.message},
            )
            return
        for item in document.iterfind("AuthorisedOrder"):
            if (item.get("supplierDuns") or "").strip() != job.supplier_duns:
                continue
            order = next((child for child in item if isinstance(child.tag, str)), None)
            if order is not None:
                await self._send_order(job, portal, target, item.get("id", ""), order, item)

    async def _send_order(
        self,
        job: PortalJob,
        portal: Portal,
        target: DatabaseTarget,
        order_id: str,
        order: etree._Element,
        item: etree._Element,
    ) -> None:
        content = etree.tostring(order, encoding="utf-8")
        now = _now()
        async with self._store.read() as conn:
            existing = (
                await conn.execute(
                    sa.select(
                        eproc_orders.c.id, eproc_orders.c.state, eproc_orders.c.updated_at
                    ).where(
                        eproc_orders.c.database_id == job.database_id,
                        eproc_orders.c.order_id == order_id,
                    )
                )
            ).one_or_none()
        if existing is not None:
            state = OrderState(existing.state)
            if state in (OrderState.DELIVERED, OrderState.SENT):
                await self._mark_sent(job, target, existing.id, order_id)
            elif state is OrderState.SENDING and now - existing.updated_at > timedelta(
                seconds=self._settings.poll_timeout_seconds
            ):
                await self._quarantine_order(
                    job,
                    existing.id,
                    order_id,
                    Problem(
                        "outcome_unknown",
                        "SendOrder may have reached the portal but no "
                        "answer was recorded; confirm with the supplier, then release it",
                    ),
                )
            return
        try:
            async with self._store.write() as conn:
                result = await conn.execute(
                    eproc_orders.insert().values(
                        database_id=job.database_id,
                        order_id=order_id,
                        portal_id=job.portal_id,
                        state=OrderState.SENDING.value,
                        content=content,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            return  # another replica is sending it
        key = result.inserted_primary_key
        assert key is not None
        row_id = int(key[0])
        verdict = await self._check_order(job, order, item)
        if verdict.problems:
            await self._quarantine_order(job, row_id, order_id, *verdict.problems)
            return
        try:
            await self._client.send_order(portal, content.decode("utf-8"))
        except PortalRejectedXml as exc:
            await self._quarantine_order(
                job, row_id, order_id, Problem("portal_rejected", exc.message)
            )
            return
        except PortalError as exc:
            if exc.code == UNREACHABLE:
                async with self._store.write() as conn:  # nothing was sent: try again next poll
                    await conn.execute(eproc_orders.delete().where(eproc_orders.c.id == row_id))
                raise
            await self._quarantine_order(
                job,
                row_id,
                order_id,
                Problem(
                    "outcome_unknown",
                    f"SendOrder got no answer ({exc.message}); confirm "
                    "with the supplier, then release it",
                ),
            )
            raise
        async with self._store.write() as conn:
            await conn.execute(
                eproc_orders.update()
                .where(eproc_orders.c.id == row_id)
                .values(state=OrderState.DELIVERED.value, updated_at=_now())
            )
        self._metrics.orders.labels("delivered").inc()
        self._let_through(job, "out", order_id, verdict.warnings)
        await self._mark_sent(job, target, row_id, order_id)

    async def _check_order(
        self, job: PortalJob, order: etree._Element, item: etree._Element
    ) -> Verdict:
        """FMS's export rules, against the content order FNG says it was made from."""
        origin = origin_of(item)
        original = None
        if origin is not None:
            original = await content_order(self._store, self._limits, job.database_id, origin)
            if original is None:
                return Verdict(
                    (
                        Problem(
                            "content_order",
                            f"FNG made it from content order {origin}, which the gateway "
                            "never collected, so its edits cannot be checked",
                        ),
                    )
                )
        return check_authorised_order(
            order,
            job.expect,
            self._schemas,
            checksum_policy=self._checksum_policy(job),
            content_order=original,
        )

    async def _mark_sent(
        self, job: PortalJob, target: DatabaseTarget, row_id: int, order_id: str
    ) -> None:
        try:
            response = await self._fng.mark_order_sent(target, order_id)
        except GatewayError as exc:
            log.warning(
                "an order sent to its supplier could not be marked sent in FNG yet",
                extra={"portal": job.label, "order_id": order_id, "error": exc.message},
            )
            return
        if response.status not in (200, 204):
            log.warning(
                "FNG refused to mark an order sent",
                extra={"portal": job.label, "order_id": order_id, "status": response.status},
            )
            return
        async with self._store.write() as conn:
            await conn.execute(
                eproc_orders.update()
                .where(eproc_orders.c.id == row_id)
                .values(state=OrderState.SENT.value, updated_at=_now())
            )
        self._metrics.orders.labels("sent").inc()
        log.info("authorised order sent", extra={"portal": job.label, "order_id": order_id})

    async def _quarantine_order(
        self, job: PortalJob, row_id: int, order_id: str, *problems: Problem
    ) -> None:
        reason = "; ".join(str(problem) for problem in problems)
        async with self._store.write() as conn:
            await conn.execute(
                eproc_orders.update()
                .where(eproc_orders.c.id == row_id)
                .values(
                    state=OrderState.QUARANTINED.value,
                    rule=problems[0].rule,
                    reason=reason,
                    updated_at=_now(),
                )
            )
        self._metrics.orders.labels("quarantined").inc()
        log.warning(
            "authorised order quarantined",
            extra={"portal": job.label, "order_id": order_id, "reason": reason},
        )

    # -- passwords ---------------------------------------------------------------------------

    async def _change_password_if_due(self, job: PortalJob, portal: Portal) -> None:
        if job.password_days is None or job.portal_id in self._unsaved:
            return
        days = max(job.password_days, PASSWORD_MINIMUM_DAYS)
        if _now() - job.password_changed_at < timedelta(days=days):
            return
        password = await self._client.change_password(portal)
        # From here the portal accepts only the new password: keep it before anything else.
        self._unsaved[job.portal_id] = password
        portal.password = password
        await self._store_unsaved_password(job)

    async def _store_unsaved_password(self, job: PortalJob) -> None:
        password = self._unsaved.get(job.portal_id)
        if password is None:
            return
        try:
            async with self._store.write() as conn:
                await conn.execute(
                    portals.update()
                    .where(portals.c.id == job.portal_id)
                    .values(password_enc=self._box.encrypt(password), password_changed_at=_now())
                )
        except GatewayError as exc:
            self._metrics.password_store_failures.inc()
            log.critical(
                "a portal changed its password and the new one could not be stored; it is held "
                "in this process only until the store answers again",
                extra={"portal": job.label, "error": exc.message},
            )
            return
        del self._unsaved[job.portal_id]
        log.info("portal password changed and stored", extra={"portal": job.label})
