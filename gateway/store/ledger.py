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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from gateway.errors import CallerError, GatewayError, OutcomeUnknown, SubmissionInProgress
from gateway.store.engine import (
    BatchCounts,
    Batched,
    Store,
    driver_execute,
    sqlite_datetime,
)
from gateway.store.tables import ledger

log = logging.getLogger(__name__)

#: What the caller of a submission whose outcome is unknown should do.
SEND_AGAIN: Final = (
    "send the same submission again, unchanged: the gateway finds out whether it was "
    "posted before it posts anything, so it is never posted twice"
)


#: What the sender of different content under a submission id already taken should do.
NEW_ID: Final = "different content needs a submission id of its own"


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


#: The same two on SQLite, run on the driver's connection (:func:`driver_execute`): what
#: SQLAlchemy spends executing a statement is several times what SQLite takes to run it.
_SQLITE_INSERT: Final = """
    INSERT INTO ledger (database_id, interface, scope, submission_id, payload_hash, state,
                        owner, lease_until, attempts, expectations, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, 'in_progress', ?, ?, 1, ?, ?, ?)
    """
_SQLITE_RECORD: Final = """
    UPDATE ledger SET state = ?, result = ?, lease_until = ?, updated_at = ?
    WHERE id = ? AND owner = ? AND state = 'in_progress'
    """

#: PostgreSQL: the claims of concurrent posts as one statement, each item's columns an
#: array; a submission id already taken is skipped, and claimed with :meth:`Ledger._take`.
_INSERT_MANY: Final = sa.text(
    """
    INSERT INTO ledger (database_id, interface, scope, submission_id, payload_hash,
                        expectations, state, owner, lease_until, attempts, created_at,
                        updated_at)
    SELECT v.database_id, v.interface, v.scope, v.submission_id, v.payload_hash,
           v.expectations, 'in_progress', :owner, :lease_until, 1, :now, :now
    FROM unnest(CAST(:database_ids AS integer[]), CAST(:interfaces AS text[]),
                CAST(:scopes AS text[]), CAST(:submission_ids AS text[]),
                CAST(:payload_hashes AS text[]), CAST(:expectations AS text[]))
         AS v(database_id, interface, scope, submission_id, payload_hash, expectations)
    ON CONFLICT ON CONSTRAINT uq_ledger_submission DO NOTHING
    RETURNING id, database_id, interface, scope, submission_id
    """
)
#: PostgreSQL: the outcomes of concurrent posts as one statement; an entry whose lease
#: was lost is left alone and missing from what is returned.
_RECORD_MANY: Final = sa.text(
    """
    UPDATE ledger SET state = v.state, result = v.result, lease_until = :now,
                      updated_at = :now
    FROM unnest(CAST(:entry_ids AS integer[]), CAST(:states AS text[]),
                CAST(:results AS bytea[])) AS v(id, state, result)
    WHERE ledger.id = v.id AND ledger.owner = :owner AND ledger.state = 'in_progress'
    RETURNING ledger.id
    """
)


@dataclass(frozen=True, slots=True)
class _Claim:
    key: LedgerKey
    payload_hash: str
    expectations: str


@dataclass(frozen=True, slots=True)
class _Outcome:
    entry_id: int
    state: EntryState
    result: bytes | None


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
        # On PostgreSQL the claims and outcomes of concurrent posts go as one statement
        # each; SQLite shares their transactions instead (the store's group commit).
        self._claims: Batched[_Claim, _Claimed | None] | None = None
        self._outcomes: Batched[_Outcome, int] | None = None
        self._sqlite = store.sqlite_driver
        if store.dialect == "postgresql":
            self._claims = Batched(store, self._insert_many, self._insert_one)
            self._outcomes = Batched(store, self._record_many, self._record_one)

    @property
    def batches(self) -> tuple[BatchCounts, BatchCounts] | None:
        """How many claims and outcomes went in how many statements (PostgreSQL; None on
        SQLite, where the store's group commit shares transactions instead)."""
        if self._claims is None or self._outcomes is None:
            return None
        return self._claims.counts, self._outcomes.counts

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
                            f"different content; {NEW_ID}",
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
        claim = _Claim(key, payload_hash, expectations)
        claimed = await (self._insert_one if self._claims is None else self._claims)(claim)
        if claimed is not None:
            return claimed
        return await self._store.transact(
            functools.partial(self._take, key, payload_hash, expectations, datetime.now(UTC))
        )

    async def _insert_one(self, claim: _Claim) -> _Claimed | None:
        """A new entry claimed, or None if the submission id is taken already."""
        try:
            return await self._store.transact(
                functools.partial(
                    self._insert,
                    claim.key,
                    claim.payload_hash,
                    claim.expectations,
                    datetime.now(UTC),
                ),
                single_statement=True,
            )
        except IntegrityError:
            return None

    def _insert_many(self, conn: Connection, claims: Sequence[_Claim]) -> list[_Claimed | None]:
        """New entries claimed in one statement (PostgreSQL), None for each submission id
        taken already, or named twice (the second waits for the first, as one process)."""
        now = datetime.now(UTC)
        first: dict[LedgerKey, _Claim] = {}
        for claim in claims:
            first.setdefault(claim.key, claim)
        sent = list(first.values())
        rows = conn.execute(
            _INSERT_MANY,
            {
                "owner": self.owner,
                "lease_until": now + self._lease,
                "now": now,
                "database_ids": [claim.key.database_id for claim in sent],
                "interfaces": [claim.key.interface for claim in sent],
                "scopes": [claim.key.scope for claim in sent],
                "submission_ids": [claim.key.submission_id for claim in sent],
                "payload_hashes": [claim.payload_hash for claim in sent],
                "expectations": [claim.expectations for claim in sent],
            },
        ).all()
        inserted = {
            LedgerKey(row.database_id, row.interface, row.scope, row.submission_id): row.id
            for row in rows
        }
        return [
            _Claimed(inserted[claim.key], None, claim.payload_hash)
            if first[claim.key] is claim and claim.key in inserted
            else None
            for claim in claims
        ]

    def _insert(
        self, key: LedgerKey, payload_hash: str, expectations: str, now: datetime, conn: Connection
    ) -> _Claimed:
        """A new entry, in progress under this process's lease."""
        if self._sqlite:
            stamp = sqlite_datetime(now)
            cursor = driver_execute(
                conn,
                _SQLITE_INSERT,
                (
                    key.database_id,
                    key.interface,
                    key.scope,
                    key.submission_id,
                    payload_hash,
                    self.owner,
                    sqlite_datetime(now + self._lease),
                    expectations,
                    stamp,
                    stamp,
                ),
            )
            return _Claimed(int(cursor.lastrowid), None, payload_hash)
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
                    f"submission {key.submission_id} was already posted with different "
                    f"content; {NEW_ID}",
                    posted=True,
                )
            assert row.result is not None
            return bytes(row.result)
        leased = state is EntryState.IN_PROGRESS and row.lease_until > now
        if leased:
            if not same:
                raise SubmissionConflict(
                    f"submission {key.submission_id} is being posted with different content; "
                    f"{NEW_ID}",
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
        outcome = _Outcome(entry_id, state, result)
        done = await (self._record_one if self._outcomes is None else self._outcomes)(outcome)
        if done != 1 and not await self._holds(outcome):
            log.error(
                "a ledger entry's lease was lost before its outcome was recorded",
                extra={"ledger_id": entry_id, "state": state.value},
            )

    async def _holds(self, outcome: _Outcome) -> bool:
        """Whether the entry already holds this outcome, recorded by this process: a
        statement whose answer was lost had been committed, and was sent again."""
        async with self._store.read() as conn:
            row = (
                await conn.execute(
                    sa.select(ledger.c.state, ledger.c.owner, ledger.c.result).where(
                        ledger.c.id == outcome.entry_id
                    )
                )
            ).one_or_none()
        return (
            row is not None
            and row.owner == self.owner
            and row.state == outcome.state.value
            and (None if row.result is None else bytes(row.result)) == outcome.result
        )

    async def _record_one(self, outcome: _Outcome) -> int:
        """An entry's outcome recorded; 0 if its lease was lost."""
        now = datetime.now(UTC)

        def record(conn: Connection) -> int:
            if self._sqlite:
                stamp = sqlite_datetime(now)
                return int(
                    driver_execute(
                        conn,
                        _SQLITE_RECORD,
                        (
                            outcome.state.value,
                            outcome.result,
                            stamp,
                            stamp,
                            outcome.entry_id,
                            self.owner,
                        ),
                    ).rowcount
                )
            return conn.execute(
                _RECORD,
                {
                    "entry_id": outcome.entry_id,
                    "entry_owner": self.owner,
                    "new_state": outcome.state.value,
                    "result": outcome.result,
                    "now": now,
                },
            ).rowcount

        # Not waiting for the disk: the claim was, before anything was sent. Should the machine
        # fail before a later flush, the entry is found in progress, and the next attempt
        # reconciles it with FNG like any lost answer.
        return await self._store.transact(record, single_statement=True, durable=False)

    def _record_many(self, conn: Connection, outcomes: Sequence[_Outcome]) -> list[int]:
        """Entries' outcomes recorded in one statement (PostgreSQL): 1 for each recorded."""
        recorded = set(
            conn.execute(
                _RECORD_MANY,
                {
                    "owner": self.owner,
                    "now": datetime.now(UTC),
                    "entry_ids": [outcome.entry_id for outcome in outcomes],
                    "states": [outcome.state.value for outcome in outcomes],
                    "results": [outcome.result for outcome in outcomes],
                },
            ).scalars()
        )
        return [int(outcome.entry_id in recorded) for outcome in outcomes]
