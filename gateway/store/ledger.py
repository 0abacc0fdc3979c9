"""The submission ledger: each write reaches FNG at most once.

An entry is keyed by (database, interface, scope, submission id) and holds a hash of the
payload. Its state moves:

    (new) ─claim─▶ in_progress ─┬─ FNG posted it ─────────▶ posted  (final: replays get its result)
                                ├─ refused, or never sent ▶ open    (may be tried again)
                                └─ no answer (timeout…) ──▶ unknown (reconciled before a repost)

An ``in_progress`` entry is leased to one gateway process; an identical request that finds
it waits for the outcome (or gets :class:`SubmissionInProgress`), and a lapsed lease (the
process died) is taken over and reconciled like ``unknown``. Every transition is a
compare-and-set on the row, so two processes, or two replicas, never both post.
The interface supplies how to post, and how to tell from FNG's state whether an entry
whose outcome is unknown landed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from gateway.errors import CallerError, GatewayError, OutcomeUnknown, SubmissionInProgress
from gateway.store.engine import Store
from gateway.store.tables import ledger

log = logging.getLogger(__name__)

#: What the caller of a submission whose outcome is unknown should do.
SEND_AGAIN: Final = (
    "send the same submission again, unchanged: the gateway finds out whether it was "
    "posted before it posts anything, so it is never posted twice"
)


class EntryState(StrEnum):
    IN_PROGRESS = "in_progress"
    POSTED = "posted"
    OPEN = "open"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class LedgerKey:
    database_id: int
    interface: str
    scope: str
    submission_id: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What FNG answered: ``posted`` when the submission is now in FNG, else refused.
    ``earlier`` when what FNG holds came from an earlier attempt whose answer was lost."""

    result: bytes
    posted: bool
    earlier: bool = False


@dataclass(frozen=True, slots=True)
class Submitted:
    """The result of a submission, and whether it is a ``replay``: the submission was in FNG
    already (posted by an earlier request, or by an attempt whose answer was lost), so
    nothing was posted for this request."""

    result: bytes
    replay: bool


class SubmissionConflict(CallerError):
    """The submission id is taken by different content (posted, or being posted)."""

    exception_type = "SubmissionConflictException"
    code = "SUBMISSION_CONFLICT"
    http_status = 409

    def __init__(self, message: str, *, posted: bool) -> None:
        super().__init__(message)
        self.posted = posted


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What FNG's state says of an earlier attempt whose answer was lost: it ``landed``
    (True, with the ``result`` to record), it did not (False), or it cannot tell (None)."""

    landed: bool | None
    result: bytes | None = None


#: Post the submission. ``after_unknown`` is true when an earlier attempt of this same
#: content has an outcome FNG's state could not tell: if FNG now refuses the submission
#: as a duplicate, that attempt landed.
Post = Callable[[bool], Awaitable[Outcome]]
#: Given the entry's stored expectations, whether the earlier attempt landed.
Reconcile = Callable[[str], Awaitable[Reconciled]]


#: The statements of every post, built once (a statement built per call costs more than
#: SQLite takes to run it).
_INSERT: Final = ledger.insert()
_RECORD: Final = (
    ledger.update()
    .where(
        ledger.c.id == sa.bindparam("entry_id"),
        ledger.c.owner == sa.bindparam("entry_owner"),
        ledger.c.state == EntryState.IN_PROGRESS.value,
    )
    .values(
        state=sa.bindparam("new_state"),
        result=sa.bindparam("result"),
        lease_until=sa.bindparam("now"),
        updated_at=sa.bindparam("now"),
    )
)


@dataclass(frozen=True, slots=True)
class _Claimed:
    entry_id: int
    reconcile: str | None  # expectations to reconcile against first, if the outcome was unknown
    previous_hash: str


class Ledger:
    def __init__(self, store: Store, *, lease_seconds: float, wait_seconds: float) -> None:
        self._store = store
        self._lease = timedelta(seconds=lease_seconds)
        self._wait = wait_seconds
        self.owner = uuid.uuid4().hex
        self._finished: dict[LedgerKey, asyncio.Event] = {}

    async def submit(
        self,
        key: LedgerKey,
        payload_hash: str,
        expectations: str,
        post: Post,
        reconcile: Reconcile,
    ) -> Submitted:
        """Post once and return the result; replays return the stored result."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        delay = 0.02
        while True:
            decision = await self._claim(key, payload_hash, expectations)
            if isinstance(decision, bytes):
                return Submitted(decision, replay=True)
            if isinstance(decision, _Claimed):
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise SubmissionInProgress(
                    f"submission {key.submission_id} is being posted by another request; "
                    "send it again shortly for its result"
                )
            event = self._finished.setdefault(key, asyncio.Event())
            try:
                async with asyncio.timeout(min(delay, remaining)):
                    await event.wait()
            except TimeoutError:
                pass
            delay = min(delay * 2, 0.5)
        return await self._run(key, decision, payload_hash, expectations, post, reconcile)

    async def _run(
        self,
        key: LedgerKey,
        claim: _Claimed,
        payload_hash: str,
        expectations: str,
        post: Post,
        reconcile: Reconcile,
    ) -> Submitted:
        """Reconcile if needed, post, record. Anything unexpected (cancellation, the store
        failing) leaves the lease to lapse, and whoever takes the entry over reconciles."""
        try:
            after_unknown = False
            same = claim.previous_hash == payload_hash
            if claim.reconcile is not None:
                try:
                    found = await reconcile(claim.reconcile)
                except GatewayError:
                    await self._finish(claim.entry_id, EntryState.UNKNOWN, None)
                    raise
                if found.landed:
                    assert found.result is not None
                    await self._finish(claim.entry_id, EntryState.POSTED, found.result)
                    if not same:
                        raise SubmissionConflict(
                            f"submission {key.submission_id} was already posted with "
                            "different content",
                            posted=True,
                        )
                    return Submitted(found.result, replay=True)
                if found.landed is None:
                    if not same:
                        # The earlier content may be in FNG: nothing else may take its id.
                        await self._finish(claim.entry_id, EntryState.UNKNOWN, None)
                        raise SubmissionConflict(
                            f"an earlier attempt of submission {key.submission_id} with "
                            "different content has an unknown outcome; send that content "
                            "again to settle it",
                            posted=False,
                        )
                    after_unknown = True
                elif not same:
                    await self._adopt(claim.entry_id, payload_hash, expectations)
            try:
                outcome = await post(after_unknown)
            except OutcomeUnknown as exc:
                await self._finish(claim.entry_id, EntryState.UNKNOWN, None)
                raise OutcomeUnknown(f"{exc.message}; {SEND_AGAIN}", status=exc.status) from None
            except GatewayError:
                # Certainly not posted: FNG refused, or was never reached.
                await self._finish(claim.entry_id, EntryState.OPEN, None)
                raise
            state = EntryState.POSTED if outcome.posted else EntryState.OPEN
            await self._finish(claim.entry_id, state, outcome.result)
            return Submitted(outcome.result, replay=outcome.earlier)
        finally:
            event = self._finished.pop(key, None)
            if event is not None:
                event.set()

    async def _claim(
        self, key: LedgerKey, payload_hash: str, expectations: str
    ) -> _Claimed | bytes | None:
        """Take the entry (a :class:`_Claimed`), or a stored result, or None to wait."""
        now = datetime.now(UTC)
        try:
            return await self._store.transact(
                functools.partial(self._insert, key, payload_hash, expectations, now),
                single_statement=True,
            )
        except IntegrityError:
            pass
        return await self._store.transact(
            functools.partial(self._take, key, payload_hash, expectations, now)
        )

    def _insert(
        self, key: LedgerKey, payload_hash: str, expectations: str, now: datetime, conn: Connection
    ) -> _Claimed:
        """A new entry, in progress under this process's lease."""
        result = conn.execute(
            _INSERT,
            {
                "database_id": key.database_id,
                "interface": key.interface,
                "scope": key.scope,
                "submission_id": key.submission_id,
                "payload_hash": payload_hash,
                "state": EntryState.IN_PROGRESS.value,
                "owner": self.owner,
                "lease_until": now + self._lease,
                "attempts": 1,
                "expectations": expectations,
                "created_at": now,
                "updated_at": now,
            },
        )
        assert result.inserted_primary_key is not None
        return _Claimed(int(result.inserted_primary_key[0]), None, payload_hash)

    def _take(
        self, key: LedgerKey, payload_hash: str, expectations: str, now: datetime, conn: Connection
    ) -> _Claimed | bytes | None:
        """The entry exists: its stored result, None to wait, or the entry taken over."""
        row = conn.execute(
            sa.select(ledger).where(
                ledger.c.database_id == key.database_id,
                ledger.c.interface == key.interface,
                ledger.c.scope == key.scope,
                ledger.c.submission_id == key.submission_id,
            )
        ).one()
        state = EntryState(row.state)
        same = row.payload_hash == payload_hash
        if state is EntryState.POSTED:
            if not same:
                raise SubmissionConflict(
                    f"submission {key.submission_id} was already posted with different content",
                    posted=True,
                )
            assert row.result is not None
            return bytes(row.result)
        leased = state is EntryState.IN_PROGRESS and row.lease_until > now
        if leased:
            if not same:
                raise SubmissionConflict(
                    f"submission {key.submission_id} is being posted with different content",
                    posted=False,
                )
            return None
        # open, unknown, or in_progress with a lapsed lease: take it over.
        needs_reconcile = state is not EntryState.OPEN
        values: dict[str, object] = {
            "state": EntryState.IN_PROGRESS.value,
            "owner": self.owner,
            "lease_until": now + self._lease,
            "attempts": row.attempts + 1,
            "updated_at": now,
        }
        if not needs_reconcile:
            values.update(payload_hash=payload_hash, expectations=expectations, result=None)
        taken = conn.execute(
            ledger.update()
            .where(
                ledger.c.id == row.id,
                ledger.c.state == row.state,
                ledger.c.owner == row.owner,
                ledger.c.attempts == row.attempts,
            )
            .values(**values)
        )
        if taken.rowcount != 1:
            return None  # someone else moved first; look again
        if needs_reconcile:
            log.info(
                "taking over a submission whose outcome is unknown",
                extra={"submission_id": key.submission_id, "ledger_id": row.id},
            )
            return _Claimed(row.id, row.expectations, row.payload_hash)
        return _Claimed(row.id, None, payload_hash)

    async def _adopt(self, entry_id: int, payload_hash: str, expectations: str) -> None:
        """An entry that never landed now carries this request's content."""
        async with self._store.write() as conn:
            await conn.execute(
                ledger.update()
                .where(ledger.c.id == entry_id, ledger.c.owner == self.owner)
                .values(
                    payload_hash=payload_hash,
                    expectations=expectations,
                    updated_at=datetime.now(UTC),
                )
            )

    async def _finish(self, entry_id: int, state: EntryState, result: bytes | None) -> None:
        now = datetime.now(UTC)

        def record(conn: Connection) -> int:
            values = {"entry_id": entry_id, "entry_owner": self.owner, "new_state": state.value}
            return conn.execute(_RECORD, {**values, "result": result, "now": now}).rowcount

        # Not waiting for the disk: the claim was, before anything was sent. Should the machine
        # fail before a later flush, the entry is found in progress, and the next attempt
        # reconciles it with FNG like any lost answer.
        done = await self._store.transact(record, single_statement=True, durable=False)
        if done != 1:
            log.error(
                "a ledger entry's lease was lost before its outcome was recorded",
                extra={"ledger_id": entry_id, "state": state.value},
            )
