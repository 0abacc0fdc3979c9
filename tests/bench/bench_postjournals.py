"""PostJournals throughput and latency: the gateway, a naive gateway, a bare pass-through, and
the upstream.

    python -m tests.bench.bench_postjournals [--seconds 10] [--json results.json] …

Four targets are measured side by side in one run, for each journal size and number
of concurrent clients:

    gateway       ``fng-gateway serve`` (a subprocess configured by FNG_GATEWAY_… variables
                  only, SQLite store in a temporary directory), registered through the real
                  CLI, in front of the fixed-answer upstream of :mod:`tests.bench.servers`
                  (``--gateway-env WORKERS=2`` runs it as ``serve --workers 2``);
    naive         aiohttp + lxml: parse the envelope, parse and validate the journal against
                  the E-Journal schema, forward it: the cost of the XML work alone, the
                  floor of a gateway that checks what it forwards;
    passthrough   a minimal aiohttp app that forwards the SOAP body to the same upstream
                  with one pooled client session: the floor of any aiohttp gateway;
    direct        the load generator posting the journal straight to the upstream.

Every request carries a new submissionID (the gateway's ledger would answer a replay from
its store), spliced into a body rendered once per journal size. Every answer must be HTTP
200 and contain ``isSuccess="true"``; anything else is counted and shown. See README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import platform
import re
import resource
import secrets
import shlex
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from xml.sax.saxutils import escape as xml_escape

import aiohttp

from tests.bench.report import (
    BenchError,
    add_gateway_options,
    add_pinning_options,
    gateway_option_lines,
    run_bench,
    write_json,
)
from tests.bench.servers import POST_JOURNALS_PATH, TOKEN_PATH
from tests.support import (
    Auth,
    auth_header,
    big_journal,
    envelope,
    operation,
    post_journals_body,
    strip_declaration,
)

REPO: Final = Path(__file__).resolve().parents[2]
PLACEHOLDER: Final = "@@SUBMISSION@@"
SUBMISSION_ID_LENGTH: Final = 20  # see Tags and load()
SOAP_ACTION: Final = '"urn:fng-gateway:ejournal/PostJournals"'
SOAP_CONTENT_TYPE: Final = "text/xml; charset=utf-8"
XML_CONTENT_TYPE: Final = "application/xml; charset=utf-8"
SUCCESS: Final = b'isSuccess="true"'
TARGETS: Final = ("gateway", "naive", "passthrough", "direct")
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")


# -- processes ----------------------------------------------------------------------------


@dataclass
class Pinning:
    """Which core each process runs on (None: not pinned)."""

    server: int | None
    upstream: int | None
    loadgen: int | None
    note: str

    @staticmethod
    def prefix(core: int | None) -> list[str]:
        return ["taskset", "-c", str(core)] if core is not None else []


def plan_pinning(args: argparse.Namespace) -> Pinning:
    if args.no_pin:
        return Pinning(None, None, None, "no process is pinned (--no-pin)")
    if shutil.which("taskset") is None:
        return Pinning(None, None, None, "no process is pinned: taskset is not installed")
    try:
        available = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return Pinning(None, None, None, "no process is pinned: no CPU affinity on this system")
    wanted = {args.server_cpu, args.upstream_cpu} | (
        {args.loadgen_cpu} if args.loadgen_cpu is not None else set()
    )
    if args.server_cpu == args.upstream_cpu or not wanted <= set(available):
        return Pinning(
            None,
            None,
            None,
            f"no process is pinned: cores {available} are available, "
            f"and the server and the upstream need one each",
        )
    loadgen = args.loadgen_cpu
    if loadgen is None:
        share = "the load generator is not pinned and shares both cores"
    elif loadgen == args.upstream_cpu:
        share = f"the load generator shares core {loadgen} with the upstream"
    elif loadgen == args.server_cpu:
        share = f"the load generator shares core {loadgen} with the server measured"
    else:
        share = f"the load generator runs on core {loadgen}"
    return Pinning(
        args.server_cpu,
        args.upstream_cpu,
        loadgen,
        f"gateway, naive gateway and pass-through on core {args.server_cpu}, upstream on core "
        f"{args.upstream_cpu}; {share}",
    )


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_size(self) -> int:
        try:
            return self.log.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int) -> list[str]:
        try:
            with self.log.open("rb") as file:
                file.seek(offset)
                return file.read().decode(errors="replace").splitlines()
        except OSError:
            return []

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_since(0)[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    name: str,
    command: Sequence[str],
    env: dict[str, str],
    log: Path,
    ready: re.Pattern[str],
    timeout: float = 60.0,
) -> Server:
    """Start ``command`` with its output in ``log``; wait for ``ready`` to name the port."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command), cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = ready.search(log.read_text(errors="replace"))
        if match:
            return Server(name, process, log, int(match.group(1)))
        if process.poll() is not None:
            break
        time.sleep(0.05)
    if process.poll() is None:
        process.kill()
        process.wait()
    raise BenchError(
        f"{name} did not start (exit code {process.returncode}); its output:\n"
        + log.read_text(errors="replace")[-4000:]
    )


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads), from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    """:func:`cpu_seconds` of a process and of its children (``serve --workers``'s workers)."""
    total = cpu_seconds(pid)
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            total += sum(tree_cpu_seconds(int(child)) for child in children.read_text().split())
        except OSError:
            continue
    return total


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fng_gateway_command() -> list[str]:
    script = Path(sys.executable).with_name("fng-gateway")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway"]


def base_environment() -> dict[str, str]:
    """This process's environment without any FNG_GATEWAY_ setting of the machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FNG_GATEWAY_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def cli(env: dict[str, str], *arguments: str, stdin: str | None = None) -> dict[str, Any]:
    """Run ``fng-gateway … --json`` and return what it printed."""
    done = subprocess.run(
        [*fng_gateway_command(), *arguments],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(
            f"`fng-gateway {' '.join(arguments)}` failed ({done.returncode}):\n"
            f"{done.stdout}{done.stderr}"
        )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def register(env: dict[str, str], upstream_url: str) -> tuple[Auth, dict[str, int]]:
    """Vendor, school, database and account, through the real CLI."""
    vendor = cli(
        env,
        *("vendors", "add", "Bench vendor", "--token-url", f"{upstream_url}{TOKEN_PATH}"),
        *("--client-id", "bench-client", "--secret-stdin", "--json"),
        stdin=secrets.token_urlsafe(24),
    )
    school = cli(
        env, "schools", "add", "Bench School", "--la", "999", "--establishment", "9999", "--json"
    )
    database = cli(
        env,
        *("databases", "add", str(school["school_id"]), "--vendor", str(vendor["vendor_id"])),
        *("--name", "Bench database", "--fng-key-stdin", "--json"),
        stdin=str(uuid.uuid4()),
    )
    account = cli(env, "accounts", "add", "bench", "--json")
    cli(
        env,
        *("accounts", "grant", "bench", "--database", str(database["database_id"])),
        *("--interface", "ejournal", "--system", "TPPCS", "--json"),
    )
    ids = {
        "vendor_id": vendor["vendor_id"],
        "school_id": school["school_id"],
        "database_id": database["database_id"],
        "account_id": account["account_id"],
    }
    return Auth("bench", account["password"], database["partner_key"]), ids


# -- requests -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A request body rendered once, with PLACEHOLDER where the submission id goes."""

    body: bytes
    content_type: str
    soap_action: str | None

    @property
    def parts(self) -> tuple[bytes, bytes]:
        prefix, suffix = self.body.split(PLACEHOLDER.encode())
        return prefix, suffix

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": self.content_type}
        if self.soap_action is not None:
            headers["SOAPAction"] = self.soap_action
        return headers


def soap_template(lines: int, auth: Auth, *, inline: bool = False) -> Template:
    """A PostJournals request. xmlData is a string parameter, so SOAP clients (zeep, suds,
    .NET's) send the journal escaped as text; ``inline`` puts it in as XML instead."""
    journal = big_journal(lines, submission_id=PLACEHOLDER)
    if inline:
        call = post_journals_body(journal)
    else:
        call = operation("PostJournals", xmlData=xml_escape(strip_declaration(journal)))
    body = envelope(call, auth_header(auth)).encode()
    return Template(body, SOAP_CONTENT_TYPE, SOAP_ACTION)


def journal_template(lines: int) -> Template:
    body = big_journal(lines, submission_id=PLACEHOLDER).encode()
    return Template(body, XML_CONTENT_TYPE, None)


class Tags:
    """Submission id prefixes, unique per run of the benchmark and per load run."""

    def __init__(self) -> None:
        alphabet = string.ascii_uppercase + string.digits
        self._run = "".join(secrets.choice(alphabet) for _ in range(5))
        self._next = 0

    def new(self) -> str:
        self._next += 1
        return f"B{self._run}{self._next:04d}-"


# -- the load generator -------------------------------------------------------------------


CpuProbe = Callable[[], dict[str, float]]


@dataclass
class LoadResult:
    latencies: list[float]  # seconds, sorted: successful answers completed in the window
    window: float  # seconds
    warmup: float  # seconds the warm-up took
    failed: int  # failed answers, warm-up and tail included
    all_ok: int  # successful answers, warm-up and tail included
    samples: list[str]
    cpu: dict[str, float]  # CPU seconds each server process spent in the window
    loadgen_cpu: float  # CPU seconds this process spent in the window


@dataclass
class _Window:
    start: float = math.inf
    end: float = math.inf


async def load(
    url: str,
    template: Template,
    clients: int,
    warmup: float,
    seconds: float,
    tag: str,
    timeout: float,
    probe: CpuProbe,
) -> LoadResult:
    """``clients`` workers over one ClientSession, each posting as soon as it has its answer.

    The warm-up lasts ``warmup`` seconds and until every worker has had an answer, so a
    slow target is in its steady state when the measured window of ``seconds`` opens.
    Answers completed inside the window make the figures; every answer is checked."""
    prefix, suffix = template.parts
    headers = template.headers()
    ids = itertools.count(1)
    window = _Window()
    latencies: list[float] = []
    samples: list[str] = []
    failed = all_ok = warmed = 0
    all_warm = asyncio.Event()
    marks: dict[str, dict[str, float]] = {}

    def snapshot() -> dict[str, float]:
        return {**probe(), "loadgen": own_cpu_seconds(), "t": time.perf_counter()}

    connector = aiohttp.TCPConnector(limit=clients, limit_per_host=clients)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

        async def worker() -> None:
            nonlocal failed, all_ok, warmed
            first = True
            while time.perf_counter() < window.end:
                body = prefix + f"{tag}{next(ids):09d}".encode() + suffix
                began = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        status = response.status
                        answer = await response.read()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status, answer = 0, f"{type(exc).__name__}: {exc}".encode()
                ended = time.perf_counter()
                if status == 200 and SUCCESS in answer:
                    all_ok += 1
                    if window.start <= ended <= window.end:
                        latencies.append(ended - began)
                else:
                    failed += 1
                    if len(samples) < 5:
                        samples.append(f"HTTP {status}: {answer[:1500].decode(errors='replace')}")
                if first:
                    first = False
                    warmed += 1
                    if warmed == clients:
                        all_warm.set()

        async def clock() -> None:
            started = time.perf_counter()
            await asyncio.sleep(warmup)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await all_warm.wait()
            marks["start"] = snapshot()
            window.start = marks["start"]["t"]
            window.end = window.start + seconds
            marks["warmup"] = {"t": window.start - started}
            await asyncio.sleep(seconds)
            marks["end"] = snapshot()

        await asyncio.gather(clock(), *(worker() for _ in range(clients)))
    begin, end = marks["start"], marks["end"]
    return LoadResult(
        latencies=sorted(latencies),
        window=seconds,
        warmup=marks["warmup"]["t"],
        failed=failed,
        all_ok=all_ok,
        samples=samples,
        cpu={k: end[k] - begin[k] for k in end if k not in ("t", "loadgen")},
        loadgen_cpu=end["loadgen"] - begin["loadgen"],
    )


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest rank."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


# -- the benchmark ------------------------------------------------------------------------


@dataclass
class Cell:
    target: str
    lines: int
    clients: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    answers: int  # successful answers completed inside the window
    failed: int  # failed answers in the whole cell, warm-up included
    window_seconds: float
    warmup_seconds: float
    server_cpu: float  # share of one core used by the process serving the target
    upstream_cpu: float
    loadgen_cpu: float
    upstream_posts: int  # PostJournals the upstream received during the cell
    answered_ok: int  # successful answers during the cell, warm-up included
    request_bytes: int
    failure_samples: list[str] = field(default_factory=list)
    server_log: list[str] = field(default_factory=list)  # what the server logged meanwhile


@dataclass
class Bench:
    args: argparse.Namespace
    pinning: Pinning
    workdir: Path
    tags: Tags = field(default_factory=Tags)
    servers: dict[str, Server] = field(default_factory=dict)
    auth: Auth | None = None
    registered: dict[str, int] = field(default_factory=dict)
    cells: list[Cell] = field(default_factory=list)
    upstream_totals: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    # -- set-up --

    def start(self) -> None:
        python = [sys.executable, "-m", "tests.bench.servers"]
        env = base_environment()
        listening = re.compile(r"listening on (\d+)")
        upstream = start_server(
            "upstream",
            [*self.pinning.prefix(self.pinning.upstream), *python, "upstream"],
            env,
            self.workdir / "upstream.log",
            listening,
        )
        self.servers["upstream"] = upstream
        upstream_url = f"http://127.0.0.1:{upstream.port}"

        if "gateway" in self.args.targets:
            key = subprocess.run(
                [*fng_gateway_command(), "secrets", "new-key"],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            gateway_env = {
                **env,
                "FNG_GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{self.workdir / 'gateway.db'}",
                "FNG_GATEWAY_MASTER_KEYS": key,
                "FNG_GATEWAY_FNG__BASE_URL": f"{upstream_url}/fng",
                "FNG_GATEWAY_LOG_LEVEL": "WARNING",
                "FNG_GATEWAY_HOST": "127.0.0.1",
                "FNG_GATEWAY_PORT": "0",
                **{f"FNG_GATEWAY_{name}": value for name, value in self.args.gateway_env},
            }
            self.auth, self.registered = register(gateway_env, upstream_url)
            self.servers["gateway"] = start_server(
                "gateway",
                [*self.pinning.prefix(self.pinning.server), *self.gateway_command(), "serve"],
                gateway_env,
                self.workdir / "gateway.log",
                re.compile(r"fng-gateway listening on http://[^:\s]+:(\d+)"),
            )
        for role in ("naive", "passthrough"):
            if role in self.args.targets:
                self.servers[role] = start_server(
                    role,
                    [
                        *self.pinning.prefix(self.pinning.server),
                        *python,
                        role,
                        "--upstream",
                        f"{upstream_url}{POST_JOURNALS_PATH}",
                    ],
                    env,
                    self.workdir / f"{role}.log",
                    listening,
                )

    def gateway_command(self) -> list[str]:
        command: str | None = self.args.gateway_command
        return shlex.split(command) if command else fng_gateway_command()

    def stop(self) -> None:
        for server in reversed(list(self.servers.values())):
            server.stop()

    def url(self, target: str) -> str:
        if target == "direct":
            return f"http://127.0.0.1:{self.servers['upstream'].port}{POST_JOURNALS_PATH}"
        return f"http://127.0.0.1:{self.servers[target].port}/soap/ejournal"

    def template(self, target: str, lines: int) -> Template:
        if target == "direct":
            return journal_template(lines)
        # The pass-through ignores the AuthHeader; without the gateway there is no account.
        auth = self.auth or Auth("bench", "unused", str(uuid.uuid4()))
        return soap_template(lines, auth, inline=self.args.inline)

    def server_of(self, target: str) -> Server:
        return self.servers["upstream" if target == "direct" else target]

    def probe(self) -> dict[str, float]:
        return {name: tree_cpu_seconds(server.pid) for name, server in self.servers.items()}

    async def upstream_stats(self, session: aiohttp.ClientSession) -> dict[str, int]:
        url = f"http://127.0.0.1:{self.servers['upstream'].port}/_stats"
        async with session.get(url) as response:
            stats: dict[str, int] = await response.json()
        return stats

    @staticmethod
    async def settle(server: Server, limit: float = 120.0) -> None:
        """Wait until ``server`` is idle (below 5 % of a core for 0.3 s)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            before = cpu_seconds(server.pid)
            await asyncio.sleep(0.3)
            if cpu_seconds(server.pid) - before < 0.3 * 0.05:
                return

    async def smoke(self, session: aiohttp.ClientSession) -> None:
        """One request to each target before any load, so a broken set-up fails clearly."""
        for target in self.args.targets:
            template = self.template(target, min(self.args.lines))
            prefix, suffix = template.parts
            body = prefix + f"{self.tags.new()}smoke".encode() + suffix
            try:
                async with session.post(
                    self.url(target), data=body, headers=template.headers()
                ) as response:
                    status, answer = response.status, await response.read()
            except aiohttp.ClientError as exc:
                status, answer = 0, repr(exc).encode()
            if status != 200 or SUCCESS not in answer:
                server = self.server_of(target)
                hint = (
                    "\n(a gateway setting can be given with --gateway-env NAME=VALUE)"
                    if target == "gateway"
                    else ""
                )
                raise BenchError(
                    f"{target} did not answer a {min(self.args.lines)}-line PostJournals call "
                    f"with success (HTTP {status}):\n{answer[:3000].decode(errors='replace')}\n"
                    f"-- the last lines of its log --\n{server.log_tail()}{hint}"
                )

    # -- measuring --

    async def cell(
        self, session: aiohttp.ClientSession, target: str, lines: int, clients: int
    ) -> Cell:
        template = self.template(target, lines)
        server = self.server_of(target)
        await self.settle(server)
        posts_before = (await self.upstream_stats(session))["posts"]
        log_offset = server.log_size()
        result = await load(
            self.url(target),
            template,
            clients,
            self.args.warmup,
            self.args.seconds,
            self.tags.new(),
            self.args.timeout,
            self.probe,
        )
        await self.settle(server)
        posts = (await self.upstream_stats(session))["posts"] - posts_before
        window = result.window
        latencies = result.latencies
        return Cell(
            target=target,
            lines=lines,
            clients=clients,
            requests_per_second=len(latencies) / window,
            p50_ms=percentile(latencies, 50) * 1000,
            p99_ms=percentile(latencies, 99) * 1000,
            max_ms=latencies[-1] * 1000 if latencies else math.nan,
            answers=len(latencies),
            failed=result.failed,
            window_seconds=window,
            warmup_seconds=result.warmup,
            server_cpu=result.cpu[server.name] / window,
            upstream_cpu=result.cpu["upstream"] / window,
            loadgen_cpu=result.loadgen_cpu / window,
            upstream_posts=posts,
            answered_ok=result.all_ok,
            request_bytes=len(template.body) - len(PLACEHOLDER) + SUBMISSION_ID_LENGTH,
            failure_samples=result.samples,
            server_log=server.log_since(log_offset),
        )

    async def run(self) -> None:
        async with aiohttp.ClientSession() as session:
            await self.smoke(session)
            for lines in self.args.lines:
                for clients in self.args.clients:
                    for target in self.args.targets:
                        print(
                            f"  {lines:>5} lines, {clients:>3} clients, {target:<11} …",
                            end="",
                            flush=True,
                        )
                        cell = await self.cell(session, target, lines, clients)
                        self.cells.append(cell)
                        print(
                            f" {cell.requests_per_second:9.1f} req/s  p50 {cell.p50_ms:9.2f} ms  "
                            f"p99 {cell.p99_ms:9.2f} ms  failed {cell.failed}",
                            flush=True,
                        )
                        self.check(cell)
            self.upstream_totals = await self.upstream_stats(session)

    def warn(self, cell: Cell, message: str) -> None:
        text = f"{cell.lines} lines, {cell.clients} clients, {cell.target}: {message}"
        self.warnings.append(text)
        print(f"      warning: {message}", file=sys.stderr, flush=True)

    def check(self, cell: Cell) -> None:
        for sample in cell.failure_samples:
            print(f"      failure: {sample[:800]}", file=sys.stderr)
        if cell.failed:
            self.warn(cell, f"{cell.failed} answer(s) were not HTTP 200 with isSuccess=true")
        if cell.server_log:
            self.warn(cell, f"the {self.server_of(cell.target).name} logged meanwhile:")
            for line in cell.server_log[:20]:
                print(f"        {line[:400]}", file=sys.stderr)
        if cell.answers == 0:
            self.warn(cell, "no answer completed inside the measured window (use --seconds)")
        elif cell.answers < 2 * cell.clients:
            self.warn(
                cell,
                f"only {cell.answers} answers in the window for {cell.clients} clients: "
                "a longer --seconds gives steadier figures",
            )
        # Every request sent was answered, so the upstream must have seen each success once.
        if not cell.answered_ok <= cell.upstream_posts <= cell.answered_ok + cell.failed:
            self.warn(
                cell,
                f"the upstream received {cell.upstream_posts} PostJournals for "
                f"{cell.answered_ok} successful answers",
            )


# -- reporting ----------------------------------------------------------------------------


def _find(cells: Sequence[Cell], target: str, lines: int, clients: int) -> Cell | None:
    for cell in cells:
        if (cell.target, cell.lines, cell.clients) == (target, lines, clients):
            return cell
    return None


def comparisons(cells: Sequence[Cell]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for lines in sorted({c.lines for c in cells}):
        for clients in sorted({c.clients for c in cells}):
            gateway = _find(cells, "gateway", lines, clients)
            passthrough = _find(cells, "passthrough", lines, clients)
            if gateway is None or passthrough is None:
                continue
            naive = _find(cells, "naive", lines, clients)
            out.append(
                {
                    "lines": lines,
                    "clients": clients,
                    "rps_ratio_gateway_to_passthrough": _ratio(
                        gateway.requests_per_second, passthrough.requests_per_second
                    ),
                    "rps_ratio_gateway_to_naive": _ratio(
                        gateway.requests_per_second,
                        naive.requests_per_second if naive else math.nan,
                    ),
                    "added_p50_ms": gateway.p50_ms - passthrough.p50_ms,
                    "added_p99_ms": gateway.p99_ms - passthrough.p99_ms,
                    "journal_mb_per_cpu_second": _ratio(
                        gateway.requests_per_second * gateway.request_bytes / 1e6,
                        gateway.server_cpu,
                    ),
                }
            )
    return out


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def _num(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value * 100:.0f} %"


def table(bench: Bench) -> str:
    cells = bench.cells
    out: list[str] = []
    for lines in sorted({c.lines for c in cells}):
        some = [c for c in cells if c.lines == lines]
        sizes = ", ".join(
            f"{t} {max(c.request_bytes for c in some if c.target == t) / 1024:,.1f} KiB"
            for t in TARGETS
            if any(c.target == t for c in some)
        )
        out.append(f"\n### {lines}-line journals (request body: {sizes})\n")
        out.append(
            "| clients | target      |    req/s |    p50 ms |    p99 ms |    max ms | answers "
            "| failed | server CPU | upstream CPU | loadgen CPU |"
        )
        out.append(
            "|--------:|-------------|---------:|----------:|----------:|----------:|--------:"
            "|-------:|-----------:|-------------:|------------:|"
        )
        for cell in sorted(some, key=lambda c: (c.clients, TARGETS.index(c.target))):
            out.append(
                f"| {cell.clients:>7} | {cell.target:<11} | {_num(cell.requests_per_second):>8} "
                f"| {_num(cell.p50_ms, 2):>9} | {_num(cell.p99_ms, 2):>9} "
                f"| {_num(cell.max_ms, 1):>9} | {cell.answers:>7} | {cell.failed:>6} "
                f"| {_pct(cell.server_cpu):>10} | {_pct(cell.upstream_cpu):>12} "
                f"| {_pct(cell.loadgen_cpu):>11} |"
            )
        rows = [c for c in comparisons(cells) if c["lines"] == lines]
        if rows:
            out.append("")
            for row in rows:
                line = (
                    f"- {row['clients']} client{'s' if row['clients'] != 1 else ''}: "
                    "gateway / pass-through req/s = "
                    f"{_num(row['rps_ratio_gateway_to_passthrough'], 3)}, gateway / naive = "
                    f"{_num(row['rps_ratio_gateway_to_naive'], 3)}; the gateway takes in "
                    f"{_num(row['journal_mb_per_cpu_second'], 1)} MB of request a CPU second"
                )
                if row["clients"] == 1:
                    line += (
                        f"; the gateway adds {_num(row['added_p50_ms'], 2)} ms at p50 "
                        f"({_num(row['added_p99_ms'], 2)} ms at p99)"
                    )
                out.append(line)
    if bench.warnings:
        out.append("\nwarnings:")
        out.extend(f"- {warning}" for warning in bench.warnings)
    return "\n".join(out)


def header(bench: Bench) -> str:
    args = bench.args
    lines = [
        "## PostJournals: gateway vs naive gateway vs bare pass-through vs direct",
        "",
        "- load generator: asyncio + one aiohttp ClientSession, one worker per client",
        f"- pinning: {bench.pinning.note}",
        f"- {args.seconds:g} s measured per cell, after a warm-up of at least {args.warmup:g} s "
        "that lasts until every client has had an answer",
        f"- {os.cpu_count()} CPUs; Python {platform.python_version()}, "
        f"aiohttp {aiohttp.__version__}",
        "- CPU columns: share of one core used in the measured window "
        "(server: the gateway and its workers, the naive gateway, the pass-through, or the "
        "upstream for direct)",
    ]
    lines += gateway_option_lines(args)
    return "\n".join(lines)


def report_json(bench: Bench) -> dict[str, Any]:
    args = bench.args
    return {
        "meta": {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": args.seconds,
            "min_warmup_seconds": args.warmup,
            "load_generator": "python-aiohttp",
            "pinning": asdict(bench.pinning),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "aiohttp": aiohttp.__version__,
            "gateway_settings": {f"FNG_GATEWAY_{k}": v for k, v in args.gateway_env},
            "gateway_command": args.gateway_command,
            "upstream_totals": bench.upstream_totals,
            "warnings": bench.warnings,
        },
        "cells": [asdict(cell) for cell in bench.cells],
        "comparisons": comparisons(bench.cells),
    }


# -- entry point --------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_postjournals",
        description="PostJournals through the gateway, a naive gateway, a bare aiohttp "
        "pass-through and straight to a fixed-answer upstream, side by side.",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per cell")
    parser.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        help="least warm-up per cell; it also lasts until every client has had an answer",
    )
    parser.add_argument("--lines", type=int, nargs="+", default=[20, 5000], help="journal sizes")
    parser.add_argument(
        "--inline",
        action="store_true",
        help="send the journal as XML inside xmlData, not escaped as text as SOAP clients do",
    )
    parser.add_argument(
        "--clients", type=int, nargs="+", default=[1, 64], help="concurrent clients"
    )
    parser.add_argument(
        "--targets", nargs="+", choices=TARGETS, default=list(TARGETS), help="what to measure"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="per-request timeout, s")
    add_pinning_options(parser, server="gateway, naive gateway and pass-through")
    add_gateway_options(parser, kept="logs, store")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0 or min(args.clients) < 1 or min(args.lines) < 2:
        parser.error("--seconds must be > 0, --warmup >= 0, --clients >= 1, --lines >= 2")
    return args


@contextlib.contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fng-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"the working directory is kept: {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    pinning = plan_pinning(args)
    if pinning.loadgen is not None:
        # Before any thread or subprocess exists, so all of them start here too
        # (the servers are then moved to their own cores by taskset).
        os.sched_setaffinity(0, {pinning.loadgen})
    with workdir(args.keep) as work:
        bench = Bench(args, pinning, work)
        print(header(bench), flush=True)
        print(
            "\nstarting the upstream, the gateway, the naive gateway and the pass-through …",
            flush=True,
        )

        async def go() -> None:
            try:
                bench.start()
                if bench.registered:
                    print(f"registered through the CLI: {bench.registered}", flush=True)
                await bench.run()
            finally:
                bench.stop()

        status = run_bench(go())
        if status is not None:
            return status
        print(table(bench))
        write_json(args.json, report_json(bench))
    return 1 if any(cell.failed for cell in bench.cells) else 0


if __name__ == "__main__":
    sys.exit(main())
