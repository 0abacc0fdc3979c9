"""The eProcurement scheduler: every replica runs one; portals are leased, never polled twice.

Each tick it leases the portals that are due: for their index (every portal's
``poll_seconds``) or for the authorised orders FNG holds for their suppliers (every
``orders_seconds``, whatever becomes of the index). A lease is a compare-and-set on the
portal's row, under ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so replicas share the work
without a leader. Each poll runs in its own task, at most ``max_concurrent_portals`` at a
time and each within ``poll_timeout_seconds``: a slow or broken portal holds up nobody else.
A failed poll's index is read again after a delay that doubles each time, up to
``max_backoff_seconds``; its orders keep their own clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from pydantic import SecretStr

from gateway.config import EprocSettings
from gateway.eproc.documents import DocState
from gateway.eproc.job import PortalJob
from gateway.eproc.orders import OrderState
from gateway.eproc.pipeline import Pipeline
from gateway.eproc.rules import Expectations
from gateway.errors import ConfigurationError, GatewayError, PollFailed, PollTimeout
from gateway.observability.metrics import Metrics
from gateway.store import Store
from gateway.store.tables import (
    UtcDateTime,
    databases,
    eproc_documents,
    eproc_orders,
    portal_suppliers,
    portals,
    schools,
)
from gateway.tenancy.identifiers import POLL_SECONDS
from gateway.tenancy.model import ChecksumPolicy
from gateway.tenancy.secrets import SecretBox

log = logging.getLogger(__name__)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    def __init__(
        self,
        store: Store,
        box: SecretBox,
        pipeline: Pipeline,
        metrics: Metrics,
        settings: EprocSettings,
    ) -> None:
        self._store = store
        self._box = box
        self._pipeline = pipeline
        self._metrics = metrics
        self._settings = settings
        self.owner = uuid.uuid4().hex
        self._running: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    def pause(self) -> None:
        """Take no more portals (polls under way go on); used when the process drains."""
        self._stopping.set()

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="eproc-scheduler")

    async def stop(self, grace: float = 30.0) -> None:
        """Take no more work; let running polls finish for ``grace`` seconds, then cancel."""
        self._stopping.set()
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        if self._running:
            _done, pending = await asyncio.wait(self._running, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._slot_freed.clear()
            full = True
            try:
                full = await self._fill() is None
            except GatewayError as exc:
                log.warning(
                    "the scheduler could not look for due portals", extra={"error": exc.message}
                )
            except Exception:
                # Whatever it was, the loop must outlive it: portals are polled by no one else.
                log.exception("the scheduler failed to look for due portals")
            # With every slot taken, more portals may be due: look again as soon as a poll
            # ends. Otherwise nothing is due before the next tick.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.tick_seconds):
                    await (self._slot_freed.wait() if full else self._stopping.wait())

    async def tick(self) -> int:
        """Lease and start polls of due portals, as many as there are free slots; the number
        started."""
        started = await self._fill()
        return self._settings.max_concurrent_portals if started is None else started

    async def run_once(self) -> None:
        """Poll every portal due now, once, ``max_concurrent_portals`` at a time, and wait
        for the polls (for tests, benchmarks and the CLI)."""
        polled: set[int] = set()
        while True:
            await self._fill(exclude=polled)
            if not self._running:
                return
            await asyncio.wait(set(self._running), return_when=asyncio.FIRST_COMPLETED)

    async def _fill(self, exclude: set[int] | None = None) -> int | None:
        """Start polls in the free slots: the number started, or None when every slot is
        taken (more may be due)."""
        free = self._settings.max_concurrent_portals - len(self._running)
        if free <= 0:
            return None
        jobs = await self._lease(free, exclude or set())
        for job in jobs:
            if exclude is not None:
                exclude.add(job.portal_id)
            task = asyncio.create_task(self._poll(job), name=f"eproc-poll-{job.label}")
            self._running.add(task)
            task.add_done_callback(self._finished)
        return None if len(jobs) == free else len(jobs)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._slot_freed.set()

    async def _lease(self, limit: int, exclude: set[int]) -> list[PortalJob]:
        now = _now()
        # Long enough for the poll, short enough that a dead replica's portals soon move on.
        timeout = self._settings.poll_timeout_seconds
        until = now + timedelta(seconds=timeout + min(30.0, timeout))
        # Due for its index, or for FNG's authorised orders, whichever comes first.
        orders_at = sa.func.coalesce(portals.c.next_orders_at, sa.literal(_EPOCH, UtcDateTime()))
        first_due = sa.case(
            (orders_at < portals.c.next_poll_at, orders_at), else_=portals.c.next_poll_at
        )
        due = (
            sa.select(portals.c.id)
            .where(
                portals.c.enabled.is_(True),
                sa.or_(portals.c.next_poll_at <= now, orders_at <= now),
                sa.or_(portals.c.lease_until.is_(None), portals.c.lease_until < now),
                *([portals.c.id.not_in(exclude)] if exclude else []),
            )
            .order_by(first_due)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self._store.write() as conn:
            ids = list((await conn.execute(due)).scalars())
            leased = []
            for portal_id in ids:
                taken = await conn.execute(
                    portals.update()
                    .where(
                        portals.c.id == portal_id,
                        sa.or_(portals.c.lease_until.is_(None), portals.c.lease_until < now),
                    )
                    .values(lease_owner=self.owner, lease_until=until)
                )
                if taken.rowcount == 1:
                    leased.append(portal_id)
            if not leased:
                return []
            rows = (
                await conn.execute(
                    sa.select(
                        portals,
                        schools.c.language,
                        schools.c.currency,
                        schools.c.duns.label("school_duns"),
                    )
                    .select_from(
                        portals.join(databases, portals.c.database_id == databases.c.id).join(
                            schools, databases.c.school_id == schools.c.id
                        )
                    )
                    .where(portals.c.id.in_(leased))
                )
            ).all()
            served: dict[int, set[str]] = {}
            for portal_id, duns in await conn.execute(
                sa.select(portal_suppliers.c.portal_id, portal_suppliers.c.duns).where(
                    portal_suppliers.c.portal_id.in_(leased)
                )
            ):
                served.setdefault(portal_id, set()).add(duns)
        return [self._job(row, frozenset(served.get(row.id, ())), now) for row in rows]

    def _job(self, row: Any, suppliers: frozenset[str], now: datetime) -> PortalJob:
        unusable = None
        try:
            password = self._box.decrypt(row.password_enc)
        except ConfigurationError:
            password = SecretStr("")
            unusable = (
                "its stored password cannot be decrypted with the configured master keys: "
                "configure the master key it was stored under, or record the password again "
                "(fng-gateway portals password ID --password-stdin)"
            )
        return PortalJob(
            portal_id=row.id,
            database_id=row.database_id,
            name=row.name,
            url=row.url,
            username=row.username,
            password=password,
            unusable=unusable,
            supplier_duns=suppliers,
            password_days=row.password_days,
            password_changed_at=row.password_changed_at,
            last_success_at=row.last_success_at,
            expect=Expectations(
                language=row.language,
                currency=row.currency,
                school_duns=row.school_duns,
                supplier_duns=" or ".join(sorted(suppliers)),
            ),
            allow_http=row.allow_http,
            require_handshake_codes=row.require_handshake_codes,
            checksum_policy=None
            if row.checksum_policy is None
            else ChecksumPolicy(row.checksum_policy),
            documents_due=row.next_poll_at <= now,
            orders_due=row.next_orders_at is None or row.next_orders_at <= now,
        )

    async def _poll(self, job: PortalJob) -> None:
        error: GatewayError | None = None
        try:
            if job.unusable is not None:
                raise ConfigurationError(job.unusable)
            async with asyncio.timeout(self._settings.poll_timeout_seconds):
                await self._pipeline.poll(job)
        except TimeoutError:
            error = PollTimeout("the poll took longer than allowed")
        except GatewayError as exc:
            error = exc
        except Exception:
            log.exception("a portal poll failed unexpectedly", extra={"portal": job.label})
            error = PollFailed("the poll failed unexpectedly")
        try:
            await self._release(job, error)
        except GatewayError as exc:
            log.error(
                "a portal's lease could not be released; it lapses by itself",
                extra={"portal": job.label, "error": exc.message},
            )

    async def _release(self, job: PortalJob, error: GatewayError | None) -> None:
        now = _now()
        async with self._store.write() as conn:
            row = (
                await conn.execute(
                    sa.select(portals.c.poll_seconds, portals.c.failures).where(
                        portals.c.id == job.portal_id
                    )
                )
            ).one()
            # One stored before its bounds were checked is read within them.
            poll_seconds = min(max(row.poll_seconds, POLL_SECONDS.low), POLL_SECONDS.high)
            values: dict[str, object] = {}
            if job.orders_due:
                values["next_orders_at"] = now + timedelta(seconds=self._settings.orders_seconds)
            if error is not None:
                values["last_error"] = f"{error.code}: {error.message}"[:500]
            if job.documents_due and error is None:
                values.update(
                    failures=0,
                    last_error=None,
                    last_success_at=now,
                    next_poll_at=now + timedelta(seconds=poll_seconds),
                )
            elif job.documents_due:
                # Only the index's clock backs off: orders keep theirs.
                failures = row.failures + 1
                delay = min(
                    self._settings.max_backoff_seconds, poll_seconds * 2 ** min(failures, 16)
                )
                values.update(failures=failures, next_poll_at=now + timedelta(seconds=delay))
            await conn.execute(
                portals.update()
                .where(portals.c.id == job.portal_id, portals.c.lease_owner == self.owner)
                .values(lease_owner=None, lease_until=None, **values)
            )
        outcome = "ok" if error is None else "failed"
        self._metrics.portal_polls.labels(job.label, outcome).inc()
        if error is not None:
            self._metrics.portal_errors.labels(job.label, error.code).inc()
            log.warning(
                "a portal poll failed",
                extra={"portal": job.label, "code": error.code, "error": error.message},
            )

    async def refresh_gauges(self) -> None:
        """The quarantine and queue gauges, from the store (called before each scrape)."""
        async with self._store.read() as conn:
            quarantined = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(eproc_documents)
                .where(eproc_documents.c.state == DocState.QUARANTINED.value)
            )
            orders = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(eproc_orders)
                .where(eproc_orders.c.state == OrderState.QUARANTINED.value)
            )
            queued = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(eproc_documents)
                .where(eproc_documents.c.state.in_([DocState.FETCHED, DocState.DELIVERED]))
            )
        self._metrics.quarantined.set(int(quarantined or 0) + int(orders or 0))
        self._metrics.queue_depth.set(int(queued or 0))
