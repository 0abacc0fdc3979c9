"""What the submission ledger costs a post, on SQLite and on PostgreSQL.

    python -m tests.bench.bench_ledger                      # both stores, 1 and 64 callers
    python -m tests.bench.bench_ledger --stores postgresql --submissions 3000

Every ``PostJournals`` and ``ImportBudget`` claims its submission in the ledger before it
is posted and records the outcome after: two writes. This measures exactly those,
through the gateway's own ``Ledger`` and ``Store`` on a fresh store (a SQLite file in a
temporary directory; a PostgreSQL database created for the run and dropped after it, at
``--postgres``), with a post that answers at once: submissions per second, the wall time of
one submission (p50 and p99), and the CPU this process spent on each (the database server's
own CPU is not in it). It runs on the gateway's event loop (uvloop, unless
``FNG_GATEWAY_EVENT_LOOP=asyncio``).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg

from gateway.cli import loop_factory
from gateway.store import Store, create_store
from gateway.store.ledger import Ledger, LedgerKey, Outcome, Reconciled
from gateway.store.migrate import upgrade
from tests.bench.report import write_json
from tests.support import seed_one_database

RESULT = b'<JournalResult isSuccess="true"/>'


async def post(_after_unknown: bool) -> Outcome:
    return Outcome(RESULT, posted=True)


async def reconcile(_expectations: str) -> Reconciled:
    raise AssertionError("a fresh submission is never reconciled")


@asynccontextmanager
async def opened(kind: str, postgres: str) -> AsyncIterator[Store]:
    """A migrated store holding the one database the submissions are for."""
    with tempfile.TemporaryDirectory() as directory:
        name = f"bench_ledger_{uuid.uuid4().hex[:8]}"
        if kind == "sqlite":
            url = f"sqlite+aiosqlite:///{Path(directory) / 'ledger.db'}"
        else:
            admin = await asyncpg.connect(postgres)
            await admin.execute(f'CREATE DATABASE "{name}"')
            await admin.close()
            base = postgres.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
            url = f"{base}/{name}"
        await upgrade(url)
        store = create_store(url)
        try:
            await seed_one_database(store)
            yield store
        finally:
            await store.close()
            if kind == "postgresql":
                admin = await asyncpg.connect(postgres)
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()


def submitter(ledger: Ledger) -> Callable[[], Awaitable[float]]:
    """One new submission through the ledger; its wall time in seconds."""
    counter = iter(range(10**9))
    # Unique to this submitter: a later cell on the same store posts new submissions too,
    # where ids starting again from 0 would all be replays of the cells before.
    prefix = uuid.uuid4().hex[:8]

    async def submit() -> float:
        key = LedgerKey(1, "ejournal", "TPPCS", f"bench-{prefix}-{next(counter)}")
        started = time.perf_counter()
        assert (await ledger.submit(key, "hash", "{}", post, reconcile)).result == RESULT
        return time.perf_counter() - started

    return submit


def shared(store: Store, ledger: Ledger) -> tuple[int, int]:
    """How many transactions (SQLite's group commit) or statements (PostgreSQL's batches)
    the ledger's writes have gone in so far, and how many writes."""
    grouped = store.group_commits
    if grouped is not None:
        return grouped.transactions, grouped.works
    if ledger.batches is not None:
        claims, outcomes = ledger.batches
        return claims.statements + outcomes.statements, claims.items + outcomes.items
    return 0, 0


async def measure(store: Store, callers: int, submissions: int) -> dict[str, Any]:
    ledger = Ledger(store, lease_seconds=30, wait_seconds=5)
    submit = submitter(ledger)
    for _ in range(min(200, submissions)):  # warm: connections, prepared statements
        await submit()
    queue = iter(range(submissions))
    times: list[float] = []

    async def caller() -> None:
        for _ in queue:
            times.append(await submit())

    before = shared(store, ledger)
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    times.sort()
    after = shared(store, ledger)
    works_per_transaction = math.nan
    if after[0] > before[0]:
        works_per_transaction = (after[1] - before[1]) / (after[0] - before[0])
    return {
        "callers": callers,
        "submissions": submissions,
        "per_second": submissions / wall,
        "p50_ms": statistics.median(times) * 1000,
        "p99_ms": times[int(len(times) * 0.99) - 1] * 1000,
        "cpu_ms": cpu / submissions * 1000,
        "works_per_transaction": works_per_transaction,
    }


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for kind in args.stores:
        async with opened(kind, args.postgres) as store:
            for callers in args.callers:
                row = {"store": kind, **await measure(store, callers, args.submissions)}
                print(
                    f"{kind:>10}, {callers:>2} callers: {row['per_second']:8.1f} submissions/s"
                    f"  p50 {row['p50_ms']:6.2f} ms  p99 {row['p99_ms']:6.2f} ms"
                    f"  CPU {row['cpu_ms']:5.2f} ms each"
                    f"  {row['works_per_transaction']:5.1f} writes a transaction or statement",
                    flush=True,
                )
                rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--stores", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"]
    )
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--submissions", type=int, default=5000, help="per cell")
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="a PostgreSQL database to create the run's own database from",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:  # the gateway's event loop
        rows = runner.run(run(args))
    print(
        "\n| store | callers | submissions/s | p50 ms | p99 ms | CPU ms each "
        "| writes a transaction (SQLite) or statement (PostgreSQL) |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|")
    for row in rows:
        print(
            f"| {row['store']} | {row['callers']} | {row['per_second']:,.0f} | "
            f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['cpu_ms']:.2f} | "
            f"{'-' if math.isnan(wpt := row['works_per_transaction']) else f'{wpt:.1f}'} |"
        )
    write_json(args.json, {"ledger": rows})


if __name__ == "__main__":
    main()
