"""eProcurement throughput: documents through the pipeline, and a poll round over many portals.

    python -m tests.bench.bench_eproc [--documents 100 1000] [--portals 10 100 1000] [--json F]

Two processes. The sandbox (FNG and the supplier portals) runs in its own, started by this
script as ``python -m tests.bench.bench_eproc --serve-sandbox DB``. This process runs the
gateway's application (``create_app``, eProcurement disabled so that its scheduler never
starts on its own, SQLite store in a temporary directory) and drives the scheduler by hand,
as the integration tests do. Nothing is served by the gateway: the scheduler is the client.

1. Documents: N valid content orders queued on the demo portal; ``run_once`` is timed
   until all N are delivered to FNG and acknowledged to the portal.
2. Portals: 10, 100, 1,000 portals made due at once; one full round (every portal polled
   once) is timed, with nothing to collect and with one document each.

Every figure is checked: each document must be in FNG exactly once and acknowledged, each
portal polled exactly once per round; anything else is reported and the run fails.
See README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import logging
import math
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import string
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import aiohttp
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.app import FNG, SCHEDULER, STORE, create_app
from gateway.cli.quickstart import Registered, register_demo
from gateway.config import EprocSettings, Settings
from gateway.eproc.scheduler import Scheduler
from gateway.observability.logging import JsonFormatter
from gateway.sandbox import DemoSeed, SandboxState, create_sandbox_app, ebis, seed_demo
from gateway.sandbox.portal.portals import NewDocument, portal_path
from gateway.store import Store
from gateway.store.tables import eproc_documents, portals
from gateway.tenancy.secrets import SecretBox
from gateway.tenancy.service import TenancyAdmin
from tests.bench.bench_postjournals import (
    CLOCK_TICKS,
    Server,
    base_environment,
    cpu_seconds,
    own_cpu_seconds,
    start_server,
)
from tests.bench.report import (
    BenchError,
    run_bench,
    write_json,
)

NUMBER: Final = "@@NUMBER@@"
BENCH_PORTAL_PREFIX: Final = "bench-"
#: A portal made "not due" is due again this far ahead.
FAR: Final = timedelta(days=30)
#: run_once rounds allowed before a batch of documents is declared stuck.
MAX_ROUNDS: Final = 3
#: Other processes' CPU (share of one core) above which a figure is said to be disturbed.
OTHERS_BUSY: Final = 0.25
#: Documents queued on a portal per sandbox transaction.
QUEUE_BATCH: Final = 500
#: The split of a document's time, in the order printed.
SPLIT: Final = (
    "FetchIndex",
    "FetchDoc",
    "rules",
    "FNG delivery",
    "UpdateDocumentStatus",
    "store reads",
    "store writes",
    "FNG orders",
)


# -- the sandbox, in its own process ------------------------------------------------------


async def serve_sandbox(database: Path, host: str, port: int) -> None:
    """Serve the sandbox over the state in ``database`` (seeded with the demo if new) until
    SIGTERM or SIGINT, or until the benchmark that started it is gone; print
    ``sandbox listening on PORT`` once it accepts connections."""
    parent = os.getppid()
    state = await SandboxState.open(f"sqlite+aiosqlite:///{database}")
    try:
        await seed_demo(state)
        runner = web.AppRunner(create_sandbox_app(state), access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, host, port, backlog=1024).start()
        print(f"sandbox listening on {runner.addresses[0][1]}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)

        async def orphaned() -> None:
            while os.getppid() == parent:
                await asyncio.sleep(1.0)
            stop.set()

        watcher = asyncio.create_task(orphaned())
        try:
            await stop.wait()
        finally:
            watcher.cancel()
            await runner.cleanup()
    finally:
        await state.close()


# -- documents ------------------------------------------------------------------------------


def order_lines(count: int) -> list[ebis.OrderLine]:
    """``count`` whole-quantity lines, all Original, as a content order has them."""
    return [
        ebis.OrderLine(
            number,
            f"P-{number:05d}",
            f"Bench item {number}, pack of 10",
            str(1 + number % 5),
            Decimal("1.25") + number % 7,
        )
        for number in range(1, count + 1)
    ]


def order_template(demo: DemoSeed, lines: int) -> str:
    """A valid content order (CTO) for the demo school and supplier, with NUMBER where its
    BuyersOrderNumber goes (the checksum does not depend on it)."""
    root = ebis.order(
        number=NUMBER,
        order_date=date.today(),
        supplier_duns=demo.supplier_duns,
        buyer_duns=demo.school_duns,
        lines=order_lines(lines),
    )
    return ebis.to_text(root)


class Tags:
    """Document id prefixes, unique per run of the benchmark and per batch."""

    def __init__(self) -> None:
        alphabet = string.ascii_lowercase + string.digits
        self.run = "".join(secrets.choice(alphabet) for _ in range(6))
        self._next = 0

    def new(self, kind: str) -> str:
        self._next += 1
        return f"bench-{self.run}-{kind}{self._next:03d}"


# -- timing inside the gateway ---------------------------------------------------------------


class Timers:
    """Wall time spent in chosen calls of the gateway's objects, by label.

    The calls are wrapped on the instances (the gateway's code is not changed). With one
    portal polled at a time nothing overlaps, so the labels add up to at most the wall
    time; with concurrent polls they would overlap and are not used."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self.polls: list[float] = []  # wall time of each whole poll of one portal
        self._paused = False

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()
        self.polls.clear()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The benchmark's own use of the gateway's store is not the gateway's time."""
        self._paused = True
        try:
            yield
        finally:
            self._paused = False

    def _add(self, label: str, began: float) -> None:
        if not self._paused:
            self.seconds[label] += time.perf_counter() - began
            self.calls[label] += 1

    def wrap(self, owner: object, attribute: str, label: str) -> None:
        original: Callable[..., Any] = getattr(owner, attribute)
        if inspect.iscoroutinefunction(original):

            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                began = time.perf_counter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    self._add(label, began)

            setattr(owner, attribute, timed_async)
        else:

            def timed(*args: Any, **kwargs: Any) -> Any:
                began = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    self._add(label, began)

            setattr(owner, attribute, timed)

    def wrap_polls(self, owner: object, attribute: str) -> None:
        original: Callable[..., Any] = getattr(owner, attribute)

        async def timed_poll(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                self.polls.append(time.perf_counter() - began)

        setattr(owner, attribute, timed_poll)

    def wrap_transactions(self, store: Store) -> None:
        """Time every transaction from asking for it to its commit (a write's wait for the
        in-process write lock included)."""
        for attribute, label in (("read", "store reads"), ("write", "store writes")):
            setattr(store, attribute, self._timed_transaction(getattr(store, attribute), label))

    def _timed_transaction(
        self,
        original: Callable[[], contextlib.AbstractAsyncContextManager[AsyncConnection]],
        label: str,
    ) -> Callable[[], contextlib.AbstractAsyncContextManager[AsyncConnection]]:
        @contextlib.asynccontextmanager
        async def timed() -> AsyncIterator[AsyncConnection]:
            began = time.perf_counter()
            try:
                async with original() as conn:
                    yield conn
            finally:
                self._add(label, began)

        return timed


class WarningCollector(logging.Handler):
    """Keeps what the gateway logs at WARNING or above, to show it under the figures."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        extras = {
            key: value
            for key in ("portal", "document_id", "rule", "error", "code", "reason")
            if (value := getattr(record, key, None)) is not None
        }
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()} {extras}")

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have used (from /proc/stat), or NaN."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return math.nan
    # user nice system idle iowait irq softirq steal …: busy is all but idle and iowait.
    ticks = [int(value) for value in fields[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS


# -- results --------------------------------------------------------------------------------


@dataclass
class DocumentsResult:
    documents: int
    lines: int
    document_bytes: int
    rounds: int
    seconds: float
    documents_per_second: float
    ms_per_document: float
    gateway_cpu: float  # share of one core, over the timed run_once calls
    sandbox_cpu: float
    others_cpu: float  # every other process of the machine
    split_ms_per_document: dict[str, float]
    calls_per_document: dict[str, float]
    problems: list[str] = field(default_factory=list)
    gateway_warnings: list[str] = field(default_factory=list)


@dataclass
class RoundResult:
    portals: int
    documents_each: int
    concurrency: int
    seconds: float
    ms_per_portal: float
    polls: int
    poll_p50_ms: float
    poll_max_ms: float
    store_reads_per_portal: float
    store_writes_per_portal: float
    gateway_cpu: float
    sandbox_cpu: float
    others_cpu: float
    problems: list[str] = field(default_factory=list)
    gateway_warnings: list[str] = field(default_factory=list)


@dataclass
class Setup:
    """How long the set-up took: not part of any figure, shown to explain the run time."""

    steps: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def step(self, name: str) -> Any:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.steps[name] = self.steps.get(name, 0.0) + time.perf_counter() - began


# -- the benchmark --------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _problem_list(counts: Counter[str], expected: Iterable[str], what: str) -> list[str]:
    """What is wrong with ``counts`` if every one of ``expected`` should be there once."""
    wanted = set(expected)
    missing = sorted(wanted - set(counts))
    twice = sorted(key for key in wanted if counts[key] > 1)
    problems = []
    if missing:
        problems.append(f"{len(missing)} {what} missing (e.g. {missing[:3]})")
    if twice:
        problems.append(f"{len(twice)} {what} more than once (e.g. {twice[:3]})")
    return problems


@dataclass
class Bench:
    args: argparse.Namespace
    workdir: Path
    tags: Tags = field(default_factory=Tags)
    timers: Timers = field(default_factory=Timers)
    collector: WarningCollector = field(default_factory=WarningCollector)
    setup: Setup = field(default_factory=Setup)
    documents: list[DocumentsResult] = field(default_factory=list)
    rounds: list[RoundResult] = field(default_factory=list)
    sandbox: Server | None = None
    sandbox_url: str = ""
    state: SandboxState | None = None
    demo: DemoSeed | None = None
    app: web.Application | None = None
    runner: web.AppRunner | None = None
    registered: Registered | None = None
    http: aiohttp.ClientSession | None = None
    box: SecretBox | None = None
    bench_portals: dict[str, int] = field(default_factory=dict)  # name -> gateway portal id

    # -- accessors (set once start() has run) --

    @property
    def scheduler(self) -> Scheduler:
        assert self.app is not None
        return self.app[SCHEDULER]

    @property
    def store(self) -> Store:
        assert self.app is not None
        return self.app[STORE]

    def _demo(self) -> DemoSeed:
        assert self.demo is not None
        return self.demo

    def _registered(self) -> Registered:
        assert self.registered is not None
        return self.registered

    def _state(self) -> SandboxState:
        assert self.state is not None
        return self.state

    # -- set-up --

    async def start(self) -> None:
        database = self.workdir / "sandbox.db"
        with self.setup.step("sandbox"):
            # The demo is seeded here, so this process knows it; the sandbox process opens
            # the same file and finds it. Both may write it (WAL, BEGIN IMMEDIATE): this one
            # only while nothing is timed, to queue documents and open portals in bulk.
            self.state = await SandboxState.open(f"sqlite+aiosqlite:///{database}")
            self.demo = await seed_demo(self.state)
            pin = ["taskset", "-c", str(self.args.sandbox_cpu)] if self.args.pin else []
            self.sandbox = await asyncio.to_thread(
                start_server,
                "sandbox",
                [
                    *pin,
                    sys.executable,
                    "-m",
                    "tests.bench.bench_eproc",
                    "--serve-sandbox",
                    str(database),
                ],
                base_environment(),
                self.workdir / "sandbox.log",
                re.compile(r"sandbox listening on (\d+)"),
            )
            self.sandbox_url = f"http://127.0.0.1:{self.sandbox.port}"
        with self.setup.step("gateway"):
            settings = Settings(
                database_url=f"sqlite+aiosqlite:///{self.workdir / 'gateway.db'}",
                log_level=self.args.log_level,
                fng={"base_url": f"{self.sandbox_url}/fng", "timeout_seconds": 30.0},
                eproc={
                    # Driven by hand: the scheduler's own loop never starts.
                    "enabled": False,
                    "max_concurrent_portals": self.args.concurrency,
                    "call_timeout_seconds": 30.0,
                    "poll_timeout_seconds": 1800.0,
                },
            )
            box = SecretBox([SecretBox.new_key().encode()])
            self.app = create_app(settings, box=box)
            self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
            await self.runner.setup()  # opens the store, the session, the scheduler; no port
            self.registered = await register_demo(
                TenancyAdmin(self.store, box, actor="bench"),
                self._demo(),
                self.sandbox_url,
                poll_seconds=self.args.poll_seconds,
            )
            self.box = box
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300))
        self._instrument()
        with self.setup.step("warm-up"):
            # The demo's own documents and authorised order, the SIMS ID token, the
            # connections, zeep and the schemas: all before anything is timed.
            await self.make_due([self._registered().portal_id])
            await self.scheduler.run_once()
            self.collector.take()  # the demo's invalid documents are quarantined, noisily

    def _instrument(self) -> None:
        assert self.app is not None
        pipeline = self.scheduler._pipeline
        client = pipeline.documents._client
        fng = self.app[FNG]
        wrap = self.timers.wrap
        wrap(client, "fetch_index", "FetchIndex")
        wrap(client, "fetch_index_from_date", "FetchIndex")
        wrap(client, "fetch_doc", "FetchDoc")
        wrap(client, "update_document_status", "UpdateDocumentStatus")
        wrap(pipeline.documents, "check", "rules")
        wrap(fng, "post_document", "FNG delivery")
        wrap(fng, "authorised_orders", "FNG orders")
        wrap(fng, "mark_order_sent", "FNG orders")
        self.timers.wrap_transactions(self.store)
        self.timers.wrap_polls(pipeline, "poll")

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        if self.runner is not None:
            await self.runner.cleanup()
        if self.sandbox is not None:
            await asyncio.to_thread(self.sandbox.stop)
        if self.state is not None:
            await self.state.close()

    # -- the sandbox's control API --

    async def control(self, path: str) -> Any:
        assert self.http is not None
        async with self.http.get(f"{self.sandbox_url}/_sandbox{path}") as response:
            if response.status != 200:
                raise BenchError(f"GET /_sandbox{path}: HTTP {response.status}")
            return await response.json()

    async def portal_counters(self) -> dict[str, dict[str, Any]]:
        stats = await self.control("/stats")
        counters: dict[str, dict[str, Any]] = stats["portals"]
        counters["*"] = {"requests": stats["requests"]}
        return counters

    async def delivered(self, source: Iterable[str]) -> Counter[tuple[str, str]]:
        """(source, document id) of every document FNG holds from these portals, counted."""
        sources = set(source)
        items = await self.control(f"/eproc/documents?database_id={self._demo().database_id}")
        return Counter(
            (item["source"], item["document_id"]) for item in items if item["source"] in sources
        )

    # -- the gateway's store --

    async def make_due(self, portal_ids: Sequence[int]) -> None:
        """These portals due now (and not leased); every other one not due for a long time."""
        now = _now()
        with self.timers.paused():
            await self._make_due(portal_ids, now)

    async def _make_due(self, portal_ids: Sequence[int], now: datetime) -> None:
        async with self.store.write() as conn:
            await conn.execute(
                portals.update()
                .where(portals.c.id.in_(portal_ids))
                .values(next_poll_at=now, next_orders_at=now, lease_until=None, lease_owner=None)
            )
            await conn.execute(
                portals.update()
                .where(portals.c.id.not_in(portal_ids))
                .values(next_poll_at=now + FAR, next_orders_at=now + FAR)
            )

    async def ledger_states(self, portal_ids: Sequence[int]) -> dict[tuple[int, str], str]:
        with self.timers.paused():
            return await self._ledger_states(portal_ids)

    async def _ledger_states(self, portal_ids: Sequence[int]) -> dict[tuple[int, str], str]:
        async with self.store.read() as conn:
            rows = await conn.execute(
                sa.select(
                    eproc_documents.c.portal_id,
                    eproc_documents.c.document_id,
                    eproc_documents.c.state,
                ).where(eproc_documents.c.portal_id.in_(portal_ids))
            )
            return {(row.portal_id, row.document_id): row.state for row in rows}

    async def portal_rows(self, portal_ids: Sequence[int]) -> list[Any]:
        with self.timers.paused():
            async with self.store.read() as conn:
                return list(
                    await conn.execute(
                        sa.select(portals.c.name, portals.c.failures, portals.c.last_error).where(
                            portals.c.id.in_(portal_ids)
                        )
                    )
                )

    # -- CPU --

    def cpu(self) -> tuple[float, float, float]:
        """CPU seconds of this process (the gateway, its SQLite threads included), of the
        sandbox process, and of every other process on the machine."""
        assert self.sandbox is not None
        gateway, sandbox = own_cpu_seconds(), cpu_seconds(self.sandbox.pid)
        return gateway, sandbox, machine_busy_seconds() - gateway - sandbox

    # -- 1. documents through the pipeline --

    async def queue(self, portal: str, documents: Sequence[tuple[str, str]]) -> None:
        """Queue (uuid, xml) content orders on a portal, straight into the sandbox's state."""
        state = self._state()
        created = _now()
        for start in range(0, len(documents), QUEUE_BATCH):
            batch = documents[start : start + QUEUE_BATCH]
            await state.portals.add_documents(
                portal,
                [NewDocument("order", xml, uuid=uuid, created=created) for uuid, xml in batch],
            )

    async def measure_documents(self, count: int, lines: int) -> DocumentsResult:
        demo, registered = self._demo(), self._registered()
        portal, portal_id = demo.portal_name, registered.portal_id
        tag = self.tags.new("d")
        template = order_template(demo, lines)
        documents = [
            (f"{tag}-{i:05d}", template.replace(NUMBER, f"{tag.upper()}-{i}")) for i in range(count)
        ]
        uuids = [uuid for uuid, _ in documents]
        with self.setup.step("queueing documents"):
            await self.queue(portal, documents)
        before = await self.portal_counters()
        await self.make_due([portal_id])
        self.timers.reset()
        self.collector.take()
        seconds = gateway_cpu = sandbox_cpu = others_cpu = 0.0
        rounds = 0
        problems: list[str] = []
        while True:
            cpu_before = self.cpu()
            began = time.perf_counter()
            await self.scheduler.run_once()
            seconds += time.perf_counter() - began
            cpu_after = self.cpu()
            gateway_cpu += cpu_after[0] - cpu_before[0]
            sandbox_cpu += cpu_after[1] - cpu_before[1]
            others_cpu += cpu_after[2] - cpu_before[2]
            rounds += 1
            states = await self.ledger_states([portal_id])
            done = sum(states.get((portal_id, uuid)) == "acknowledged" for uuid in uuids)
            if done == count:
                break
            if rounds >= MAX_ROUNDS:
                problems.append(f"only {done} of {count} acknowledged after {rounds} rounds")
                break
            await self.make_due([portal_id])
        split = dict(self.timers.seconds)
        calls = dict(self.timers.calls)
        warnings = self.collector.take()
        problems += await self.verify_documents(portal, portal_id, uuids, before, rounds)
        split_ms = {label: split.get(label, 0.0) * 1000 / count for label in SPLIT}
        split_ms["other"] = seconds * 1000 / count - sum(split_ms.values())
        return DocumentsResult(
            documents=count,
            lines=lines,
            document_bytes=len(documents[0][1].encode()),
            rounds=rounds,
            seconds=seconds,
            documents_per_second=count / seconds,
            ms_per_document=seconds * 1000 / count,
            gateway_cpu=gateway_cpu / seconds,
            sandbox_cpu=sandbox_cpu / seconds,
            others_cpu=others_cpu / seconds,
            split_ms_per_document=split_ms,
            calls_per_document={label: calls.get(label, 0) / count for label in SPLIT},
            problems=problems,
            gateway_warnings=warnings,
        )

    async def verify_documents(
        self,
        portal: str,
        portal_id: int,
        uuids: Sequence[str],
        before: dict[str, dict[str, Any]],
        rounds: int,
    ) -> list[str]:
        """Each document in FNG exactly once, acknowledged on the portal, and called for
        once: FetchDoc, PostDocument and UpdateDocumentStatus N times each."""
        count = len(uuids)
        delivered = await self.delivered([portal])
        problems = _problem_list(
            Counter(
                {uuid: delivered[(portal, uuid)] for uuid in uuids if (portal, uuid) in delivered}
            ),
            uuids,
            "documents in FNG",
        )
        view = await self.control(f"/portals/{portal}")
        processed = {doc["uuid"]: doc["processed"] for doc in view["documents"]}
        unacknowledged = [uuid for uuid in uuids if not processed.get(uuid)]
        if unacknowledged:
            problems.append(f"{len(unacknowledged)} documents not acknowledged on the portal")
        after = await self.portal_counters()
        expected = {
            "FetchIndex": rounds,
            "FetchDoc": count,
            "UpdateDocumentStatus": count,
        }
        calls = _calls_delta(before, after, portal)
        for method, wanted in expected.items():
            if calls.get(method, 0) != wanted:
                problems.append(f"{method} was called {calls.get(method, 0)} times, not {wanted}")
        acknowledged = _field_delta(before, after, portal, "documents_acknowledged")
        if acknowledged != count:
            problems.append(f"the portal counted {acknowledged} acknowledgements, not {count}")
        posted = after["*"]["requests"]["PostDocument"] - before["*"]["requests"]["PostDocument"]
        if posted != count:
            problems.append(f"FNG received {posted} PostDocument calls, not {count}")
        states = await self.ledger_states([portal_id])
        wrong = Counter(states.get((portal_id, uuid), "missing") for uuid in uuids)
        wrong.pop("acknowledged", None)
        if wrong:
            problems.append(f"the gateway's ledger holds documents {dict(wrong)}")
        return problems

    # -- 2. a round of polls against the number of portals --

    async def ensure_portals(self, count: int) -> None:
        """Open portals until there are ``count``, in the sandbox and in the gateway."""
        demo, registered = self._demo(), self._registered()
        state = self._state()
        assert self.box is not None
        registry = TenancyAdmin(self.store, self.box, actor="bench")
        with self.setup.step("opening portals"):
            for number in range(len(self.bench_portals), count):
                name = f"{BENCH_PORTAL_PREFIX}{number:05d}"
                username, password = f"school-{number}", f"pw-{secrets.token_urlsafe(12)}&<"
                await state.portals.add(
                    name, username=username, password=password, supplier_duns=demo.supplier_duns
                )
                self.bench_portals[name] = await registry.add_portal(
                    registered.database_id,
                    name=name,
                    url=f"{self.sandbox_url}{portal_path(name)}",
                    username=username,
                    password=password,
                    supplier_duns=[demo.supplier_duns],
                    poll_seconds=self.args.poll_seconds,
                    allow_http=True,
                )

    async def warm_round(self, count: int) -> None:
        """Poll the first ``count`` portals once, untimed: a portal's first poll costs a
        little more (zeep's service for a new address), and a round measures the rest."""
        names = sorted(self.bench_portals)[:count]
        with self.setup.step("warm-up rounds"):
            await self.make_due([self.bench_portals[name] for name in names])
            await self.full_round()
            self.collector.take()

    async def full_round(self) -> None:
        """Poll every due portal once, ``max_concurrent_portals`` at a time: the
        scheduler's own round, which starts a poll as soon as a slot frees."""
        await self.scheduler.run_once()

    async def measure_round(self, count: int, documents_each: int) -> RoundResult:
        names = sorted(self.bench_portals)[:count]
        ids = [self.bench_portals[name] for name in names]
        uuids: dict[str, list[str]] = {}
        if documents_each:
            tag = self.tags.new("p")
            template = order_template(self._demo(), self.args.portal_lines)
            with self.setup.step("queueing documents"):
                for name in names:
                    batch = [
                        (f"{tag}-{name}-{i}", template.replace(NUMBER, f"{tag.upper()}-{name}-{i}"))
                        for i in range(documents_each)
                    ]
                    uuids[name] = [uuid for uuid, _ in batch]
                    await self.queue(name, batch)
        before = await self.portal_counters()
        await self.make_due(ids)
        self.timers.reset()
        self.collector.take()
        cpu_before = self.cpu()
        began = time.perf_counter()
        await self.full_round()
        seconds = time.perf_counter() - began
        cpu_after = self.cpu()
        polls = sorted(self.timers.polls)
        warnings = self.collector.take()
        problems = await self.verify_round(names, ids, uuids, documents_each, before, len(polls))
        return RoundResult(
            portals=count,
            documents_each=documents_each,
            concurrency=self.args.concurrency,
            seconds=seconds,
            ms_per_portal=seconds * 1000 / count,
            polls=len(polls),
            poll_p50_ms=statistics.median(polls) * 1000 if polls else math.nan,
            poll_max_ms=polls[-1] * 1000 if polls else math.nan,
            store_reads_per_portal=self.timers.calls["store reads"] / count,
            store_writes_per_portal=self.timers.calls["store writes"] / count,
            gateway_cpu=(cpu_after[0] - cpu_before[0]) / seconds,
            sandbox_cpu=(cpu_after[1] - cpu_before[1]) / seconds,
            others_cpu=(cpu_after[2] - cpu_before[2]) / seconds,
            problems=problems,
            gateway_warnings=warnings,
        )

    async def verify_round(
        self,
        names: Sequence[str],
        ids: Sequence[int],
        uuids: dict[str, list[str]],
        documents_each: int,
        before: dict[str, dict[str, Any]],
        polls: int,
    ) -> list[str]:
        """Each portal polled exactly once, without failing; no other portal polled; each
        document in FNG once and acknowledged."""
        problems: list[str] = []
        if polls != len(names):
            problems.append(f"{polls} polls for {len(names)} portals")
        after = await self.portal_counters()
        wanted = {
            "FetchIndex": 1,
            "FetchDoc": documents_each,
            "UpdateDocumentStatus": documents_each,
        }
        off: Counter[str] = Counter()
        for name in names:
            calls = _calls_delta(before, after, name)
            for method, count in wanted.items():
                if calls.get(method, 0) != count:
                    off[f"{method} x{calls.get(method, 0)}"] += 1
            if _field_delta(before, after, name, "documents_acknowledged") != documents_each:
                off["acknowledgements"] += 1
        if off:
            problems.append(f"portals whose calls were not as expected: {dict(off)}")
        others = [
            name
            for name in after
            if name != "*" and name not in set(names) and _calls_delta(before, after, name)
        ]
        if others:
            problems.append(f"portals polled that were not due: {others[:5]}")
        posted = after["*"]["requests"]["PostDocument"] - before["*"]["requests"]["PostDocument"]
        if posted != documents_each * len(names):
            problems.append(f"FNG received {posted} PostDocument calls")
        failed = [row.name for row in await self.portal_rows(ids) if row.failures or row.last_error]
        if failed:
            problems.append(f"{len(failed)} polls failed (e.g. {failed[:3]})")
        if documents_each:
            delivered = await self.delivered(names)
            expected = [(name, uuid) for name in names for uuid in uuids[name]]
            found = Counter({key: delivered[key] for key in expected if key in delivered})
            problems += _problem_list(
                Counter({"/".join(key): n for key, n in found.items()}),
                ["/".join(key) for key in expected],
                "documents in FNG",
            )
            states = await self.ledger_states(ids)
            by_id = dict(zip(names, ids, strict=True))
            wrong = Counter(states.get((by_id[name], uuid), "missing") for name, uuid in expected)
            wrong.pop("acknowledged", None)
            if wrong:
                problems.append(f"the gateway's ledger holds documents {dict(wrong)}")
        return problems

    # -- the run --

    async def run(self) -> None:
        for lines in self.args.lines:
            for count in self.args.documents:
                print(f"  documents: {count:>5} orders of {lines} lines …", end="", flush=True)
                result = await self.measure_documents(count, lines)
                self.documents.append(result)
                print(
                    f" {result.seconds:8.2f} s  {result.documents_per_second:8.1f} docs/s  "
                    f"{result.ms_per_document:7.2f} ms/doc"
                    + ("" if not result.problems else "  NOT VERIFIED"),
                    flush=True,
                )
                _show(result.problems, result.gateway_warnings)
        for count in sorted(self.args.portals):
            print(f"  opening portals up to {count} …", end="", flush=True)
            began = time.perf_counter()
            await self.ensure_portals(count)
            await self.warm_round(count)
            print(f" {time.perf_counter() - began:.1f} s (with an untimed round)", flush=True)
            for documents_each in (0, 1):
                label = "idle" if documents_each == 0 else "1 doc each"
                print(f"  portals: {count:>5}, {label:<10} …", end="", flush=True)
                round_result = await self.measure_round(count, documents_each)
                self.rounds.append(round_result)
                print(
                    f" {round_result.seconds:8.2f} s  {round_result.ms_per_portal:7.2f} ms/portal"
                    + ("" if not round_result.problems else "  NOT VERIFIED"),
                    flush=True,
                )
                _show(round_result.problems, round_result.gateway_warnings)

    @property
    def failed(self) -> bool:
        return any(r.problems for r in self.documents) or any(r.problems for r in self.rounds)


def _calls_delta(
    before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]], name: str
) -> dict[str, int]:
    old = before.get(name, {}).get("calls", {})
    new = after.get(name, {}).get("calls", {})
    return {method: n - old.get(method, 0) for method, n in new.items() if n != old.get(method, 0)}


def _field_delta(
    before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]], name: str, key: str
) -> int:
    return int(after.get(name, {}).get(key, 0)) - int(before.get(name, {}).get(key, 0))


def _show(problems: Sequence[str], warnings: Sequence[str]) -> None:
    for problem in problems:
        print(f"      problem: {problem}", file=sys.stderr)
    for line in warnings[:10]:
        print(f"      the gateway logged: {line[:400]}", file=sys.stderr)
    if len(warnings) > 10:
        print(f"      … and {len(warnings) - 10} more warnings", file=sys.stderr)


# -- reporting ------------------------------------------------------------------------------


def _num(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value * 100:.0f} %"


def _ok(problems: Sequence[str]) -> str:
    return "yes" if not problems else "NO"


def growth(rounds: Sequence[RoundResult], documents_each: int) -> list[str]:
    """How the time per portal moves as portals are added, against the smallest count."""
    some = sorted(
        (r for r in rounds if r.documents_each == documents_each), key=lambda r: r.portals
    )
    if len(some) < 2:
        return []
    base = some[0]
    ratios = ", ".join(
        f"{r.portals} portals {r.ms_per_portal / base.ms_per_portal:.2f}x" for r in some[1:]
    )
    worst = max(r.ms_per_portal / base.ms_per_portal for r in some[1:])
    verdict = (
        "about linear (the time per portal stays within 25 %)"
        if 0.75 <= worst <= 1.25
        else "worse than linear"
        if worst > 1.25
        else "better than linear (fixed costs spread over more portals)"
    )
    kind = "idle" if documents_each == 0 else f"{documents_each} document(s) each"
    return [
        f"- {kind}: time per portal against {base.portals} portals: {ratios}; the round grows "
        f"{verdict}"
    ]


def table(bench: Bench) -> str:
    out: list[str] = []
    if bench.documents:
        out.append("\n### Documents through the pipeline (the demo portal, one poll)\n")
        out.append(
            "| documents | lines | KiB/doc | rounds | seconds |  docs/s | ms/doc "
            "| gateway CPU | sandbox CPU | others CPU | verified |"
        )
        out.append(
            "|----------:|------:|--------:|-------:|--------:|--------:|-------:"
            "|------------:|------------:|-----------:|:--------:|"
        )
        for r in bench.documents:
            out.append(
                f"| {r.documents:>9,} | {r.lines:>5} | {r.document_bytes / 1024:>7.1f} "
                f"| {r.rounds:>6} | {r.seconds:>7.2f} | {r.documents_per_second:>7.1f} "
                f"| {r.ms_per_document:>6.2f} | {_pct(r.gateway_cpu):>11} "
                f"| {_pct(r.sandbox_cpu):>11} | {_pct(r.others_cpu):>10} | {_ok(r.problems):^8} |"
            )
        out.append("\n### Where a document's time goes (ms per document, timed in the gateway)\n")
        columns = [*SPLIT, "other"]
        out.append("| documents | lines | " + " | ".join(columns) + " |")
        out.append(
            "|----------:|------:|" + "|".join("-" * (len(c) + 1) + ":" for c in columns) + "|"
        )
        for r in bench.documents:
            cells = " | ".join(f"{_num(r.split_ms_per_document[c], 2):>{len(c)}}" for c in columns)
            out.append(f"| {r.documents:>9,} | {r.lines:>5} | {cells} |")
        r = bench.documents[-1]
        calls = r.calls_per_document
        out.append(
            f"\nper document ({r.documents:,} of {r.lines} lines): "
            f"{calls['store reads']:.2f} store reads, {calls['store writes']:.2f} store writes, "
            f"{calls['FetchDoc']:.2f} FetchDoc, {calls['FNG delivery']:.2f} FNG deliveries, "
            f"{calls['UpdateDocumentStatus']:.2f} UpdateDocumentStatus"
        )
    if bench.rounds:
        concurrency = bench.args.concurrency
        out.append(
            f"\n### A full round of polls against the number of portals "
            f"(max_concurrent_portals {concurrency})\n"
        )
        out.append(
            "| portals | documents each | seconds | ms/portal | polls | poll p50 ms "
            "| poll max ms | store tx/portal | gateway CPU | sandbox CPU | others CPU | verified |"
        )
        out.append(
            "|--------:|---------------:|--------:|----------:|------:|------------:"
            "|------------:|----------------:|------------:|------------:|-----------:|:--------:|"
        )
        for p in sorted(bench.rounds, key=lambda x: (x.documents_each, x.portals)):
            out.append(
                f"| {p.portals:>7,} | {p.documents_each:>14} | {p.seconds:>7.2f} "
                f"| {p.ms_per_portal:>9.2f} | {p.polls:>5} "
                f"| {_num(p.poll_p50_ms, 1):>11} | {_num(p.poll_max_ms, 1):>11} "
                f"| {p.store_reads_per_portal:>6.2f} r {p.store_writes_per_portal:>4.2f} w "
                f"| {_pct(p.gateway_cpu):>11} | {_pct(p.sandbox_cpu):>11} "
                f"| {_pct(p.others_cpu):>10} | {_ok(p.problems):^8} |"
            )
        out.append("")
        for documents_each in (0, 1):
            out.extend(growth(bench.rounds, documents_each))
    busy = [
        f"{r.documents:,} documents of {r.lines} lines ({_pct(r.others_cpu)})"
        for r in bench.documents
        if r.others_cpu > OTHERS_BUSY
    ] + [
        f"{r.portals:,} portals with {r.documents_each} document(s) each ({_pct(r.others_cpu)})"
        for r in bench.rounds
        if r.others_cpu > OTHERS_BUSY
    ]
    if busy:
        out.append(
            "\nother processes used the machine during: " + ", ".join(busy) + "; those figures "
            "are disturbed, run again on a quiet machine"
        )
    if bench.setup.steps:
        steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in bench.setup.steps.items())
        out.append(f"\nset-up (not in any figure): {steps}")
    if bench.failed:
        out.append("\nSOME FIGURES ARE NOT VERIFIED (see the problems above): do not use them.")
    return "\n".join(out)


def filesystem_of(path: Path) -> str:
    """The type of the filesystem holding ``path`` (from /proc/mounts), or 'unknown'."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    best, kind = "", "unknown"
    resolved = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if len(fields) < 3 or len(fields[1]) <= len(best):
            continue
        if resolved == fields[1] or resolved.startswith(fields[1].rstrip("/") + "/"):
            best, kind = fields[1], fields[2]
    return kind


def header(bench: Bench) -> str:
    args = bench.args
    pinning = (
        f"gateway (this process) on core {args.gateway_cpu}, sandbox on core {args.sandbox_cpu}"
        if args.pin
        else f"no process is pinned ({args.pin_note})"
    )
    return "\n".join(
        [
            "## eProcurement: documents through the pipeline, and a poll round over portals",
            "",
            "- gateway: create_app in this process, its scheduler driven by hand; SQLite store "
            f"in a temporary directory on {filesystem_of(bench.workdir)}; "
            f"log level {args.log_level}",
            "- sandbox (FNG and the supplier portals): its own process, SQLite state",
            f"- pinning: {pinning}",
            f"- {os.cpu_count()} CPUs; Python {platform.python_version()}, aiohttp "
            f"{aiohttp.__version__}, SQLAlchemy {sa.__version__}",
            "- CPU columns: share of one core used during the timed calls; others: every "
            "other process of the machine (well above a few % means the figures are disturbed)",
        ]
    )


def report_json(bench: Bench) -> dict[str, Any]:
    args = bench.args
    return {
        "meta": {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "aiohttp": aiohttp.__version__,
            "sqlalchemy": sa.__version__,
            "filesystem": filesystem_of(bench.workdir),
            "pinned": args.pin,
            "gateway_cpu": args.gateway_cpu if args.pin else None,
            "sandbox_cpu": args.sandbox_cpu if args.pin else None,
            "max_concurrent_portals": args.concurrency,
            "tick_seconds": args.tick_seconds,
            "poll_seconds": args.poll_seconds,
            "log_level": args.log_level,
            "round_driver": "Scheduler.run_once",
            "setup_seconds": bench.setup.steps,
            "verified": not bench.failed,
        },
        "documents": [asdict(r) for r in bench.documents],
        "rounds": [asdict(r) for r in bench.rounds],
    }


# -- entry point ----------------------------------------------------------------------------


@contextlib.contextmanager
def workdir(parent: Path | None, keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fng-bench-eproc-", dir=parent))
    try:
        yield path
    finally:
        if keep:
            print(f"the working directory is kept: {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_eproc",
        description="eProcurement: documents per second through the pipeline, and the time "
        "of a full poll round against the number of portals, gateway and sandbox in two "
        "processes.",
    )
    parser.add_argument(
        "--documents",
        type=_positive,
        nargs="*",
        default=[100, 1000],
        help="orders queued on the demo portal per measurement (none: skip)",
    )
    parser.add_argument(
        "--lines", type=_positive, nargs="+", default=[3], help="lines per order (documents)"
    )
    parser.add_argument(
        "--portals",
        type=_positive,
        nargs="*",
        default=[10, 100, 1000],
        help="numbers of portals polled in one round (none: skip)",
    )
    parser.add_argument(
        "--portal-lines", type=_positive, default=3, help="lines of the orders queued on portals"
    )
    parser.add_argument(
        "--concurrency",
        type=_positive,
        default=EprocSettings().max_concurrent_portals,
        help="max_concurrent_portals (default: the shipped setting)",
    )
    parser.add_argument(
        "--poll-seconds",
        type=int,
        default=3600,
        help="each portal's poll interval (at least 10; longer than a round, so that no "
        "portal is due twice in one)",
    )
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        default="WARNING",
        help="the gateway's log level (its log goes, as JSON lines, to a file in the working "
        "directory; INFO adds one line per document)",
    )
    parser.add_argument("--gateway-cpu", type=int, default=0, help="core of this process")
    parser.add_argument("--sandbox-cpu", type=int, default=1, help="core of the sandbox")
    parser.add_argument("--no-pin", action="store_true", help="pin no process to a core")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument(
        "--tmpdir",
        type=Path,
        help="where the working directory (both SQLite databases, the logs) is made; "
        "default: the system's temporary directory",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the working directory (logs, databases)"
    )
    parser.add_argument(
        "--serve-sandbox", type=Path, metavar="DB", help=argparse.SUPPRESS
    )  # internal: the sandbox process
    parser.add_argument("--sandbox-port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.poll_seconds < 10:
        parser.error("--poll-seconds is at least 10 (the registry refuses less)")
    args.tick_seconds = EprocSettings().tick_seconds
    return args


def plan_pinning(args: argparse.Namespace) -> None:
    """Decide whether to pin (sets ``args.pin`` and, when not, ``args.pin_note``)."""
    args.pin, args.pin_note = False, ""
    if args.no_pin:
        args.pin_note = "--no-pin"
    elif shutil.which("taskset") is None:
        args.pin_note = "taskset is not installed"
    elif args.gateway_cpu == args.sandbox_cpu:
        args.pin_note = "the gateway and the sandbox were given the same core"
    else:
        try:
            available = os.sched_getaffinity(0)
        except AttributeError:
            args.pin_note = "no CPU affinity on this system"
            return
        if {args.gateway_cpu, args.sandbox_cpu} <= available:
            args.pin = True
        else:
            args.pin_note = f"cores {sorted(available)} are available; two are needed"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_sandbox is not None:
        asyncio.run(serve_sandbox(args.serve_sandbox, "127.0.0.1", args.sandbox_port))
        return 0
    for name in list(os.environ):  # no setting of the machine reaches the gateway
        if name.startswith("FNG_GATEWAY_"):
            del os.environ[name]
    plan_pinning(args)
    if args.pin:
        # Before the sandbox starts: it is then moved to its own core by taskset, and the
        # gateway's SQLite threads, started later, inherit this core.
        os.sched_setaffinity(0, {args.gateway_cpu})
    with workdir(args.tmpdir, args.keep) as work:
        root = logging.getLogger()
        root.setLevel(args.log_level)
        log_file = logging.FileHandler(work / "gateway.log")
        log_file.setFormatter(JsonFormatter())
        root.addHandler(log_file)
        bench = Bench(args, work)
        root.addHandler(bench.collector)
        print(header(bench), flush=True)
        print("\nstarting the sandbox and the gateway …", flush=True)

        async def go() -> None:
            try:
                await bench.start()
                await bench.run()
            finally:
                await bench.stop()

        try:
            status = run_bench(go())
        finally:
            root.removeHandler(log_file)
            root.removeHandler(bench.collector)
            log_file.close()
        if status is not None:
            return status
        print(table(bench))
        write_json(args.json, report_json(bench))
    return 1 if bench.failed else 0


if __name__ == "__main__":
    sys.exit(main())
