"""The submission ledger on SQLite and PostgreSQL: one post per submission, whoever asks.

Posting and reconciling are the interface's business; here they are plain functions that
count their calls, and the ledger, its store and its leases are real.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from gateway.errors import OutcomeUnknown, SubmissionInProgress, UpstreamError
from gateway.store import Store, create_store
from gateway.store.engine import driver_execute
from gateway.store.ledger import (
    EntryState,
    Ledger,
    LedgerKey,
    Outcome,
    Reconciled,
    SubmissionConflict,
    Submitted,
)
from gateway.store.migrate import upgrade
from gateway.store.tables import ledger
from tests.support import seed_one_database

KEY = LedgerKey(database_id=1, interface="ejournal", scope="TPPCS", submission_id="0071")
#: A submission posted by the request that sent it.
OK = Submitted(b"<ok/>", replay=False)


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Store]:
    """A migrated store at ``url`` with database 1 to refer to."""
    await upgrade(url)
    store = create_store(url)
    await seed_one_database(store)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    async with opened(url) as store:
        yield store


@dataclass
class Fng:
    """Stands in for FNG: counts posts, and knows whether a post landed."""

    delay: float = 0.0
    landed: bool = False
    posts: int = 0
    after_unknown: list[bool] = field(default_factory=list)
    reconciliations: int = 0
    fail_with: Exception | None = None
    #: FNG's state cannot tell whether a post landed.
    undetermined: bool = False

    async def post(self, after_unknown: bool) -> Outcome:
        self.posts += 1
        self.after_unknown.append(after_unknown)
        await asyncio.sleep(self.delay)
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            if isinstance(error, OutcomeUnknown):
                self.landed = True  # it did post; only the answer was lost
            raise error
        self.landed = True
        return Outcome(b"<ok/>", posted=True)

    async def reconcile(self, expectations: str) -> Reconciled:
        self.reconciliations += 1
        if self.undetermined:
            return Reconciled(landed=None)
        return Reconciled(landed=True, result=b"<landed/>") if self.landed else Reconciled(False)


def make_ledger(store: Store, lease: float = 30.0, wait: float = 5.0) -> Ledger:
    return Ledger(store, lease_seconds=lease, wait_seconds=wait)


class TestOnce:
    async def test_concurrent_identical_submissions_post_once(self, store: Store) -> None:
        fng = Fng(delay=0.2)
        ledgers = [make_ledger(store) for _ in range(3)]  # as if three processes
        results = await asyncio.gather(
            *(ledgers[i % 3].submit(KEY, "h1", "{}", fng.post, fng.reconcile) for i in range(20))
        )
        assert [result.result for result in results] == [b"<ok/>"] * 20
        assert fng.posts == 1
        assert sorted(result.replay for result in results) == [False] + [True] * 19

    async def test_replay_returns_the_stored_result(self, store: Store) -> None:
        fng = Fng()
        ledger_ = make_ledger(store)
        assert await ledger_.submit(KEY, "h1", "{}", fng.post, fng.reconcile) == OK
        assert await make_ledger(store).submit(KEY, "h1", "{}", fng.post, fng.reconcile) == (
            Submitted(b"<ok/>", replay=True)
        )
        assert fng.posts == 1

    async def test_other_content_is_refused(self, store: Store) -> None:
        fng = Fng()
        await make_ledger(store).submit(KEY, "h1", "{}", fng.post, fng.reconcile)
        with pytest.raises(SubmissionConflict) as refused:
            await make_ledger(store).submit(KEY, "h2", "{}", fng.post, fng.reconcile)
        assert refused.value.posted and fng.posts == 1

    async def test_other_content_while_in_progress_is_refused(self, store: Store) -> None:
        fng = Fng(delay=0.3)
        first = asyncio.create_task(
            make_ledger(store).submit(KEY, "h1", "{}", fng.post, fng.reconcile)
        )
        await asyncio.sleep(0.1)
        with pytest.raises(SubmissionConflict) as refused:
            await make_ledger(store).submit(KEY, "h2", "{}", fng.post, fng.reconcile)
        assert not refused.value.posted
        await first

    async def test_waiting_is_bounded(self, store: Store) -> None:
        slow = Fng(delay=1.0)
        first = asyncio.create_task(
            make_ledger(store).submit(KEY, "h1", "{}", slow.post, slow.reconcile)
        )
        await asyncio.sleep(0.1)
        with pytest.raises(SubmissionInProgress):
            await make_ledger(store, wait=0.2).submit(KEY, "h1", "{}", slow.post, slow.reconcile)
        await first
        assert slow.posts == 1


class TestUnknownOutcomes:
    async def test_lost_answer_is_reconciled_not_reposted(self, store: Store) -> None:
        fng = Fng(fail_with=OutcomeUnknown("no answer"))
        with pytest.raises(OutcomeUnknown, match="no answer; send the same submission again"):
            await make_ledger(store).submit(KEY, "h1", "{}", fng.post, fng.reconcile)
        assert await make_ledger(store).submit(KEY, "h1", "{}", fng.post, fng.reconcile) == (
            Submitted(b"<landed/>", replay=True)
        )
        assert (fng.posts, fng.reconciliations) == (1, 1)

    async def test_not_landed_is_posted_again(self, store: Store) -> None:
        fng = Fng(fail_with=OutcomeUnknown("no answer"))
        with pytest.raises(OutcomeUnknown):
            await make_ledger(store).submit(KEY, "h1", "{}", fng.post, fng.reconcile)
        fng.landed = False  # FNG never committed it
        assert await make_ledger(store).submit(KEY, "h1", "{}", fng.post, fng.reconcile) == OK
        assert fng.after_unknown == [False, False]

    async def test_undetermined_same_content_is_posted_as_a_possible_duplicate(
        self, store: Store
    ) -> None:
        """When FNG's state cannot tell, the same content is posted again, flagged so that a
        duplicate refusal from FNG counts as the earlier attempt having landed."""
        fng = Fng(fail_with=OutcomeUnknown("no answer"), undetermined=True)
        with pytest.raises(OutcomeUnknown):
            await make_ledger(store).submit(KEY, "h1", "{}", fng.post, fng.reconcile)
        await make_ledger(store).submit(KEY, "h1", "{}", fng.post, fng.reconcile)
        assert fng.after_unknown == [False, True]

    async def test_undetermined_other_content_is_refused(self, store: Store) -> None:
        fng = Fng(fail_with=OutcomeUnknown("no answer"), undetermined=True)
        with pytest.raises(OutcomeUnknown):
            await make_ledger(store).submit(KEY, "h1", "{}", fng.post, fng.reconcile)
        with pytest.raises(SubmissionConflict, match="unknown outcome"):
            await make_ledger(store).submit(KEY, "h2", "{}", fng.post, fng.reconcile)
        assert fng.posts == 1
        # The entry is still unknown: the earlier content settles it.
        assert await make_ledger(store).submit(KEY, "h1", "{}", fng.post, fng.reconcile) == OK

    async def test_lost_answer_then_other_content(self, store: Store) -> None:
        """The earlier content landed, so the new content under its id is refused."""
        fng = Fng(fail_with=OutcomeUnknown("no answer"))
        with pytest.raises(OutcomeUnknown):
            await make_ledger(store).submit(KEY, "h1", "{}", fng.post, fng.reconcile)
        with pytest.raises(SubmissionConflict):
            await make_ledger(store).submit(KEY, "h2", "{}", fng.post, fng.reconcile)
        assert fng.posts == 1

    async def test_crashed_holder_is_taken_over_after_its_lease(self, store: Store) -> None:
        """A process that died mid-post leaves a lease; once it lapses the entry is reconciled."""
        crashed = Fng(delay=30)
        dead = make_ledger(store, lease=0.5)
        task = asyncio.create_task(dead.submit(KEY, "h1", "{}", crashed.post, crashed.reconcile))
        await asyncio.sleep(0.2)
        task.cancel()  # the process is gone; its lease stays in the store
        crashed.landed = True  # and its post had reached FNG
        survivor = Fng()
        survivor.landed = True
        result = await make_ledger(store, wait=5).submit(
            KEY, "h1", "{}", survivor.post, survivor.reconcile
        )
        assert result == Submitted(b"<landed/>", replay=True)
        assert (survivor.posts, survivor.reconciliations) == (0, 1)

    async def test_an_outcome_found_recorded_is_not_reported_as_a_lost_lease(
        self, store: Store, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A statement whose answer was lost is sent again and changes nothing: the entry
        holding that very outcome is no lost lease. Another outcome there is."""
        ledger_ = make_ledger(store)
        fng = Fng()
        assert await ledger_.submit(KEY, "h", "{}", fng.post, fng.reconcile) == OK
        async with store.read() as conn:
            entry_id = (await conn.execute(sa.select(ledger.c.id))).scalar_one()
        with caplog.at_level(logging.ERROR, logger="gateway.store.ledger"):
            await ledger_._finish(entry_id, EntryState.POSTED, b"<ok/>")
            assert caplog.records == []
            await ledger_._finish(entry_id, EntryState.OPEN, None)
        assert [record.getMessage() for record in caplog.records] == [
            "a ledger entry's lease was lost before its outcome was recorded"
        ]

    async def test_not_sent_leaves_the_entry_open(self, store: Store) -> None:
        fng = Fng(fail_with=UpstreamError("refused; nothing was sent"))
        with pytest.raises(UpstreamError):
            await make_ledger(store).submit(KEY, "h1", "{}", fng.post, fng.reconcile)
        assert await make_ledger(store).submit(KEY, "h2", "{}", fng.post, fng.reconcile) == OK
        assert fng.reconciliations == 0
        async with store.read() as conn:
            row = (await conn.execute(sa.select(ledger))).one()
        assert (row.state, row.payload_hash, row.attempts) == ("posted", "h2", 2)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    async with opened(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}") as store:
        yield store


class TestGroupCommit:
    """On SQLite, writes that queue while a transaction is written share the next one."""

    async def test_concurrent_submissions_share_transactions_and_each_gets_its_own_result(
        self, sqlite_store: Store
    ) -> None:
        async def post_as(submission_id: str) -> Outcome:
            await asyncio.sleep(0)
            return Outcome(f"<ok id='{submission_id}'/>".encode(), posted=True)

        def submit(ledger_: Ledger, n: int) -> Awaitable[Submitted]:
            key = LedgerKey(1, "ejournal", "TPPCS", f"G{n:03}")
            return ledger_.submit(
                key,
                f"h{n}",
                "{}",
                lambda _after: post_as(key.submission_id),
                Fng().reconcile,
            )

        ledger_ = make_ledger(sqlite_store)
        before = sqlite_store.group_commits
        assert before is not None and before.works == 0
        results = await asyncio.gather(*(submit(ledger_, n) for n in range(64)))

        assert results == [
            Submitted(f"<ok id='G{n:03}'/>".encode(), replay=False) for n in range(64)
        ]
        counts = sqlite_store.group_commits
        assert counts is not None
        assert counts.works == 128  # a claim and an outcome each
        assert counts.transactions < 64, counts  # one each would be 128
        async with sqlite_store.read() as conn:
            rows = (await conn.execute(sa.select(ledger.c.submission_id, ledger.c.result))).all()
        assert {row.submission_id: bytes(row.result) for row in rows} == {
            f"G{n:03}": f"<ok id='G{n:03}'/>".encode() for n in range(64)
        }

    async def test_a_failing_work_is_undone_alone_and_the_others_commit(
        self, sqlite_store: Store
    ) -> None:
        def entry(submission_id: str) -> dict[str, object]:
            now = datetime.now(UTC)
            return {
                "database_id": 1,
                "interface": "ejournal",
                "scope": "TPPCS",
                "submission_id": submission_id,
                "payload_hash": "h",
                "state": "open",
                "owner": "test",
                "lease_until": now,
                "attempts": 1,
                "expectations": "{}",
                "created_at": now,
                "updated_at": now,
            }

        def insert(submission_id: str) -> Callable[[sa.Connection], str]:
            def work(conn: sa.Connection) -> str:
                conn.execute(ledger.insert(), entry(submission_id))
                return submission_id

            return work

        def insert_then_fail(conn: sa.Connection) -> None:
            conn.execute(ledger.insert(), entry("HALF"))
            raise ValueError("changed its mind")

        await sqlite_store.transact(insert("TAKEN"), single_statement=True)
        counts = sqlite_store.group_commits
        assert counts is not None
        transactions = counts.transactions
        outcomes = await asyncio.gather(
            sqlite_store.transact(insert("A"), single_statement=True),
            sqlite_store.transact(insert("TAKEN"), single_statement=True),
            sqlite_store.transact(insert_then_fail),
            sqlite_store.transact(insert("B")),
            return_exceptions=True,
        )

        assert outcomes[0] == "A" and outcomes[3] == "B"
        assert isinstance(outcomes[1], IntegrityError)
        assert isinstance(outcomes[2], ValueError)
        assert counts.transactions == transactions + 1  # all four in one transaction
        async with sqlite_store.read() as conn:
            ids = (await conn.execute(sa.select(ledger.c.submission_id))).scalars().all()
        assert sorted(ids) == ["A", "B", "TAKEN"]

    async def test_a_lone_write_is_not_held_back_for_company(self, sqlite_store: Store) -> None:
        fng = Fng()
        counts = sqlite_store.group_commits
        assert counts is not None
        for n in range(3):
            key = LedgerKey(1, "ejournal", "TPPCS", f"L{n}")
            assert (
                await make_ledger(sqlite_store).submit(key, "h", "{}", fng.post, fng.reconcile)
                == OK
            )
        assert (counts.transactions, counts.works) == (6, 6)

    async def test_a_claim_is_flushed_to_disk_and_an_outcome_is_not(
        self, sqlite_store: Store
    ) -> None:
        fng = Fng()
        counts = sqlite_store.group_commits
        assert counts is not None
        key = LedgerKey(1, "ejournal", "TPPCS", "F1")
        assert await make_ledger(sqlite_store).submit(key, "h", "{}", fng.post, fng.reconcile) == OK
        # The claim, before the post, waited for the disk; the outcome did not.
        assert (counts.transactions, counts.flushed) == (2, 1)

        def level(conn: sa.Connection) -> int:
            return int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())

        full, normal = 2, 1
        assert await sqlite_store.transact(level) == full
        assert await sqlite_store.transact(level, durable=False) == normal
        # Sharing a transaction with a durable work, a work that need not be is flushed too.
        alone, *shared = await asyncio.gather(
            sqlite_store.transact(level),
            sqlite_store.transact(level, durable=False),
            sqlite_store.transact(level),
        )
        assert (alone, shared) == (full, [full, full])


class TestDriverStatements:
    """On a SQLite file the ledger writes its claims and outcomes through the driver."""

    async def test_rows_written_through_the_driver_read_as_sqlalchemy_writes_them(
        self, sqlite_store: Store
    ) -> None:
        fng = Fng()
        before = datetime.now(UTC)
        key = LedgerKey(1, "ejournal", "TPPCS", "D1")
        ledger_ = make_ledger(sqlite_store)
        assert await ledger_.submit(key, "h", "{}", fng.post, fng.reconcile) == OK
        # A row as SQLAlchemy writes one, beside it.
        await sqlite_store.transact(
            lambda conn: conn.execute(
                ledger.insert(),
                {
                    "database_id": 1,
                    "interface": "ejournal",
                    "scope": "TPPCS",
                    "submission_id": "SA",
                    "payload_hash": "h",
                    "state": "open",
                    "owner": "test",
                    "lease_until": before,
                    "attempts": 1,
                    "expectations": "{}",
                    "created_at": before,
                    "updated_at": before,
                },
            )
        )
        async with sqlite_store.read() as conn:
            row = (
                await conn.execute(sa.select(ledger).where(ledger.c.submission_id == "D1"))
            ).one()
            stored = (
                await conn.exec_driver_sql(
                    "SELECT submission_id, created_at, lease_until, updated_at FROM ledger"
                )
            ).all()
        assert (row.state, row.owner, row.attempts, bytes(row.result)) == (
            "posted",
            ledger_.owner,
            1,
            b"<ok/>",
        )
        assert before <= row.created_at <= row.updated_at <= datetime.now(UTC)
        assert row.created_at.tzinfo is UTC
        # The outcome's time is its lease's end: the entry is no longer held.
        assert row.lease_until == row.updated_at
        shapes = {
            submission_id: [re.sub(r"\d", "9", value) for value in values]
            for submission_id, *values in stored
        }
        assert shapes["D1"] == shapes["SA"] == ["9999-99-99 99:99:99.999999"] * 3

    async def test_a_taken_submission_id_is_sqlalchemys_integrity_error(
        self, sqlite_store: Store
    ) -> None:
        stamp = "'2026-01-01 00:00:00.000000'"
        insert = (
            "INSERT INTO ledger (id, database_id, interface, scope, submission_id, payload_hash,"
            " state, owner, lease_until, attempts, expectations, created_at, updated_at)"
            f" VALUES (7, 1, 'ejournal', 'TPPCS', ?, 'h', 'open', 'o', {stamp}, 1, '{{}}',"
            f" {stamp}, {stamp})"
        )
        await sqlite_store.transact(
            lambda conn: driver_execute(conn, insert, ("X",)), single_statement=True
        )
        with pytest.raises(IntegrityError) as raised:
            await sqlite_store.transact(
                lambda conn: driver_execute(conn, insert, ("Y",)), single_statement=True
            )
        assert isinstance(raised.value.orig, sqlite3.IntegrityError)

    async def test_a_failed_transaction_leaves_the_store_writing(self, sqlite_store: Store) -> None:
        def broken(conn: sa.Connection) -> None:
            conn.exec_driver_sql("INSERT INTO no_such_table VALUES (1)")

        with pytest.raises(OperationalError):
            await sqlite_store.transact(broken, single_statement=True)
        fng = Fng()
        key = LedgerKey(1, "ejournal", "TPPCS", "AFTER")
        assert await make_ledger(sqlite_store).submit(key, "h", "{}", fng.post, fng.reconcile) == OK
        async with sqlite_store.read() as conn:
            ids = (await conn.execute(sa.select(ledger.c.submission_id))).scalars().all()
        assert ids == ["AFTER"]


@pytest.fixture
async def pg_store(postgres_url: str) -> AsyncIterator[Store]:
    async with opened(postgres_url) as store:
        yield store


class TestBatchedStatements:
    """On PostgreSQL, claims and outcomes that queue while one statement is out go as one."""

    async def test_concurrent_submissions_share_statements_and_each_gets_its_own_result(
        self, pg_store: Store
    ) -> None:
        ledger_ = make_ledger(pg_store)
        posted: list[str] = []

        def submit(n: int) -> Awaitable[Submitted]:
            key = LedgerKey(1, "ejournal", "TPPCS", f"B{n:03}")

            async def post(_after_unknown: bool) -> Outcome:
                posted.append(key.submission_id)
                return Outcome(f"<ok id='{key.submission_id}'/>".encode(), posted=True)

            return ledger_.submit(key, f"h{n}", "{}", post, Fng().reconcile)

        results = await asyncio.gather(*(submit(n) for n in range(64)))

        assert results == [
            Submitted(f"<ok id='B{n:03}'/>".encode(), replay=False) for n in range(64)
        ]
        assert sorted(posted) == [f"B{n:03}" for n in range(64)]
        assert ledger_.batches is not None
        claims, outcomes = ledger_.batches
        assert (claims.items, outcomes.items) == (64, 64)
        assert claims.statements < 64 and outcomes.statements < 64, ledger_.batches
        async with pg_store.read() as conn:
            rows = (await conn.execute(sa.select(ledger))).all()
        assert {row.submission_id: (row.state, bytes(row.result)) for row in rows} == {
            f"B{n:03}": ("posted", f"<ok id='B{n:03}'/>".encode()) for n in range(64)
        }

    async def test_the_same_submission_twice_in_one_statement_posts_once(
        self, pg_store: Store
    ) -> None:
        ledger_ = make_ledger(pg_store, wait=10)
        fng = Fng(delay=0.05)
        results = await asyncio.gather(
            *(ledger_.submit(KEY, "h1", "{}", fng.post, fng.reconcile) for _ in range(8)),
            ledger_.submit(KEY, "h2", "{}", fng.post, fng.reconcile),
            return_exceptions=True,
        )
        assert fng.posts == 1
        assert results[:8].count(OK) == 1
        assert results[:8].count(Submitted(b"<ok/>", replay=True)) == 7
        assert isinstance(results[8], SubmissionConflict)

    async def test_a_failing_statement_leaves_each_caller_its_own_outcome(
        self, pg_store: Store
    ) -> None:
        ledger_ = make_ledger(pg_store)
        fng = Fng()
        # Database 99 does not exist: its claim breaks the statement it shares, and the
        # others are claimed one by one.
        keys = [LedgerKey(1, "ejournal", "TPPCS", f"F{n}") for n in range(4)]
        results = await asyncio.gather(
            *(ledger_.submit(key, "h", "{}", fng.post, fng.reconcile) for key in keys[:2]),
            ledger_.submit(
                LedgerKey(99, "ejournal", "TPPCS", "F9"), "h", "{}", fng.post, fng.reconcile
            ),
            *(ledger_.submit(key, "h", "{}", fng.post, fng.reconcile) for key in keys[2:]),
            return_exceptions=True,
        )
        assert results[:2] + results[3:] == [OK] * 4
        assert isinstance(results[2], Exception)
        assert fng.posts == 4
