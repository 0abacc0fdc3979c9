"""A 50,000-line journal: how much the gateway's peak memory grows, and its CPU per MB.

    python -m tests.bench.bench_memory [--lines 5000 50000] [--runs 3] [--json results.json]

``fng-gateway serve`` runs as its own process in front of the fixed-answer upstream of
:mod:`tests.bench.servers`, set up as :mod:`tests.bench.bench_postjournals` sets it up (a
SQLite store in a temporary directory, registrations through the real CLI). Each journal
size gets a new gateway process: a small warm-up journal first, then the journals of that
size one at a time, each with a new submission id. Before each request the gateway's peak
resident set (VmHWM) is reset to its current resident set by writing ``5`` to
``/proc/PID/clear_refs``; after the answer, VmHWM minus that baseline is what the request
made the process grow. The gateway's CPU time over the request gives the MB of journal
XML it handles per second of one core.

The first request of a size is reported apart: the memory it frees stays in the process
(glibc keeps it for reuse), so the requests after it grow the peak only by what that
memory does not cover.

Every answer must be HTTP 200 with ``isSuccess="true"``, and the upstream must have
received each journal exactly once; anything else fails the run. See README.md.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aiohttp

from gateway.config import XmlLimits
from tests.bench.bench_postjournals import (
    CLOCK_TICKS,
    PLACEHOLDER,
    REPO,
    SUBMISSION_ID_LENGTH,
    SUCCESS,
    Pinning,
    Server,
    Tags,
    Template,
    base_environment,
    cpu_seconds,
    fng_gateway_command,
    plan_pinning,
    register,
    soap_template,
    start_server,
    workdir,
)
from tests.bench.bench_postjournals import Bench as PostJournalsBench
from tests.bench.report import (
    BenchError,
    add_gateway_options,
    add_pinning_options,
    checks,
    gateway_option_lines,
    run_bench,
    write_json,
)
from tests.support import Auth

MiB: Final = 1024 * 1024
MB: Final = 1_000_000
#: The goals the figures are read against (not checks: missing one does not fail the run).
GOAL_GROWTH_RATIO: Final = 4.0
GOAL_MB_PER_CORE_SECOND: Final = 40.0
#: Given to the gateway so that glibc maps big blocks and unmaps them when freed (it would
#: otherwise raise its threshold after the first big free and keep the memory resident,
#: and the next request's growth would hide in memory counted already).
MMAP_THRESHOLD: Final = 128 * 1024


# -- the gateway's process, from /proc ------------------------------------------------------


def kib_field(pid: int, name: str) -> int:
    """A ``kB`` field of /proc/PID/status, in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{name}:\s+(\d+) kB", status, re.MULTILINE)
    if found is None:
        raise BenchError(f"/proc/{pid}/status has no {name}")
    return int(found.group(1)) * 1024


def reset_peak(pid: int) -> int:
    """Reset the process's VmHWM to its current resident set, which is returned (bytes)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError as exc:
        raise BenchError(f"cannot reset the peak resident set of process {pid}: {exc}") from None
    return kib_field(pid, "VmRSS")


def run_time(pid: int) -> float:
    """CPU seconds of the process's live threads, to the nanosecond (/proc/PID/task/*/schedstat).

    /proc/PID/stat counts in clock ticks (10 ms, usually), too coarse for a request of a
    few tens of milliseconds; this is precise but misses the time of threads that ended."""
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return math.nan
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # the thread has just ended
    return total / 1e9


class CpuClock:
    """CPU time of one process between two readings, as precise as the process allows."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._ticks = cpu_seconds(pid)
        self._precise = run_time(pid)

    def elapsed(self) -> float:
        ticks = cpu_seconds(self.pid) - self._ticks
        precise = run_time(self.pid) - self._precise
        # A thread that ended meanwhile took its time out of the precise figure; the ticks
        # still count it. Beyond their rounding, the ticks are then the better figure.
        if math.isnan(precise) or ticks > precise + 2 / CLOCK_TICKS:
            return ticks
        return precise


# -- the benchmark --------------------------------------------------------------------------


@dataclass
class Post:
    """One journal posted to the gateway."""

    lines: int
    kind: str  # "warm-up", "first" (the first of its size) or "again"
    payload_bytes: int
    rss_before: int  # the gateway's resident set before the request (bytes)
    peak_growth: int  # VmHWM after the answer minus rss_before (bytes)
    rss_after: int  # its resident set once the answer has been read
    cpu_seconds: float  # the gateway's CPU time from sending to having read the answer
    wall_seconds: float
    status: int
    ok: bool
    upstream_posts: int  # PostJournals the upstream received meanwhile
    answer: str = ""  # the start of the answer, when it was not a success

    @property
    def ratio(self) -> float:
        return self.peak_growth / self.payload_bytes

    @property
    def mb_per_core_second(self) -> float:
        return self.payload_bytes / MB / self.cpu_seconds if self.cpu_seconds > 0 else math.nan


@dataclass
class Bench:
    args: argparse.Namespace
    pinning: Pinning
    workdir: Path
    tags: Tags = field(default_factory=Tags)
    servers: dict[str, Server] = field(default_factory=dict)
    auth: Auth | None = None
    registered: dict[str, int] = field(default_factory=dict)
    gateway_env: dict[str, str] = field(default_factory=dict)
    gateway_settings: dict[str, str] = field(default_factory=dict)  # what the run set
    idle_rss: dict[int, int] = field(default_factory=dict)  # by size: after the warm-up
    posts: list[Post] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    gateway_log: list[str] = field(default_factory=list)

    # -- set-up --

    @staticmethod
    def limits(biggest: Template) -> dict[str, str]:
        """XML limits with room for the biggest journal (never below the shipped ones)."""
        body = biggest.body
        shipped = XmlLimits()
        elements = body.count(b"<") - body.count(b"</")
        return {
            "FNG_GATEWAY_XML__MAX_BYTES": str(max(shipped.max_bytes, 2 * len(body))),
            "FNG_GATEWAY_XML__MAX_ELEMENTS": str(max(shipped.max_elements, 2 * elements)),
            "FNG_GATEWAY_XML__MAX_ATTRIBUTES": str(
                max(shipped.max_attributes, 2 * body.count(b"="))
            ),
        }

    def start(self) -> None:
        """The upstream, a master key, the store and the registrations; the gateway is
        started for each size (:meth:`start_gateway`)."""
        env = base_environment()
        upstream = start_server(
            "upstream",
            [
                *self.pinning.prefix(self.pinning.upstream),
                *(sys.executable, "-m", "tests.bench.servers", "upstream"),
            ],
            env,
            self.workdir / "upstream.log",
            re.compile(r"listening on (\d+)"),
        )
        self.servers["upstream"] = upstream
        upstream_url = f"http://127.0.0.1:{upstream.port}"
        key = subprocess.run(
            [*fng_gateway_command(), "secrets", "new-key"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        self.gateway_settings = {
            "FNG_GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{self.workdir / 'gateway.db'}",
            "FNG_GATEWAY_FNG__BASE_URL": f"{upstream_url}/fng",
            "FNG_GATEWAY_LOG_LEVEL": "WARNING",
            "FNG_GATEWAY_HOST": "127.0.0.1",
            "FNG_GATEWAY_PORT": "0",
        }
        self.auth, self.registered = register(
            {**env, "FNG_GATEWAY_MASTER_KEYS": key, **self.gateway_settings}, upstream_url
        )
        self.gateway_settings.update(
            self.limits(soap_template(max(*self.args.lines, self.args.warmup_lines), self.auth))
        )
        self.gateway_settings.update(
            {f"FNG_GATEWAY_{name}": value for name, value in self.args.gateway_env}
        )
        if self.args.mmap_threshold > 0:
            self.gateway_settings["MALLOC_MMAP_THRESHOLD_"] = str(self.args.mmap_threshold)
        self.gateway_env = {**env, "FNG_GATEWAY_MASTER_KEYS": key, **self.gateway_settings}

    def start_gateway(self, lines: int) -> Server:
        command = (
            [*shlex.split(self.args.gateway_command), "serve"]
            if self.args.gateway_command
            else [*fng_gateway_command(), "serve"]
        )
        gateway = start_server(
            "gateway",
            [*self.pinning.prefix(self.pinning.server), *command],
            self.gateway_env,
            self.workdir / f"gateway-{lines}.log",
            re.compile(r"fng-gateway listening on http://[^:\s]+:(\d+)"),
        )
        self.servers["gateway"] = gateway
        return gateway

    def stop_gateway(self) -> None:
        gateway = self.servers.pop("gateway", None)
        if gateway is not None:
            gateway.stop()

    def stop(self) -> None:
        self.stop_gateway()
        for server in reversed(list(self.servers.values())):
            server.stop()

    @property
    def gateway(self) -> Server:
        return self.servers["gateway"]

    async def upstream_posts(self, session: aiohttp.ClientSession) -> int:
        url = f"http://127.0.0.1:{self.servers['upstream'].port}/_stats"
        async with session.get(url) as response:
            stats: dict[str, int] = await response.json()
        return stats["posts"]

    # -- measuring --

    async def post(
        self, session: aiohttp.ClientSession, template: Template, lines: int, kind: str
    ) -> Post:
        pid = self.gateway.pid
        prefix, suffix = template.parts
        body = prefix + f"{self.tags.new()}{lines:09d}".encode() + suffix
        url = f"http://127.0.0.1:{self.gateway.port}/soap/ejournal"
        # Whatever the previous request left running ends before the baseline is taken.
        await PostJournalsBench.settle(self.gateway)
        posts_before = await self.upstream_posts(session)
        rss_before = reset_peak(pid)
        clock = CpuClock(pid)
        began = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=template.headers()) as response:
                status, answer = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            status, answer = 0, f"{type(exc).__name__}: {exc}".encode()
        wall = time.perf_counter() - began
        cpu = clock.elapsed()
        peak = kib_field(pid, "VmHWM")
        rss_after = kib_field(pid, "VmRSS")
        await PostJournalsBench.settle(self.gateway)
        ok = status == 200 and SUCCESS in answer
        return Post(
            lines=lines,
            kind=kind,
            payload_bytes=len(body),
            rss_before=rss_before,
            peak_growth=peak - rss_before,
            rss_after=rss_after,
            cpu_seconds=cpu,
            wall_seconds=wall,
            status=status,
            ok=ok,
            upstream_posts=await self.upstream_posts(session) - posts_before,
            answer="" if ok else answer[:1500].decode(errors="replace"),
        )

    async def size(self, session: aiohttp.ClientSession, lines: int) -> None:
        """A new gateway process: the small warm-up, then the journals of ``lines`` lines."""
        assert self.auth is not None
        template = soap_template(lines, self.auth)
        size = len(template.body) - len(PLACEHOLDER) + SUBMISSION_ID_LENGTH
        print(f"\n{lines:,} lines, {size / MiB:,.2f} MiB a request (new gateway):", flush=True)
        gateway = self.start_gateway(lines)
        try:
            small = soap_template(self.args.warmup_lines, self.auth)
            plan = [(small, self.args.warmup_lines, "warm-up")] * self.args.warmup
            plan += [(template, lines, "first")] + [(template, lines, "again")] * self.args.runs
            for number, (body, length, kind) in enumerate(plan):
                if kind == "first":
                    self.idle_rss[lines] = kib_field(gateway.pid, "VmRSS")
                log_offset = gateway.log_size()
                post = await self.post(session, body, length, kind)
                self.posts.append(post)
                label = f"run {number - self.args.warmup}" if kind == "again" else kind
                print(
                    f"  {label:>7} {length:>6,} lines"
                    f"  peak +{post.peak_growth / MiB:7.1f} MiB ({post.ratio:5.2f}x)"
                    f"  CPU {post.cpu_seconds:6.3f} s"
                    f"  {post.mb_per_core_second:6.1f} MB/s per core"
                    f"  wall {post.wall_seconds:6.3f} s"
                    f"  RSS {post.rss_before / MiB:6.1f} -> {post.rss_after / MiB:6.1f} MiB"
                    f"{'' if post.ok else f'  FAILED (HTTP {post.status})'}",
                    flush=True,
                )
                self.check(post, gateway.log_since(log_offset))
        finally:
            self.stop_gateway()

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.args.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for lines in self.args.lines:
                await self.size(session, lines)

    def check(self, post: Post, logged: list[str]) -> None:
        label = f"{post.lines} lines ({post.kind})"
        if not post.ok:
            self.problems.append(
                f"{label}: the answer was not HTTP 200 with isSuccess=true "
                f"(HTTP {post.status}): {post.answer[:800]}"
            )
        if post.upstream_posts != 1:
            self.problems.append(
                f"{label}: the upstream received {post.upstream_posts} PostJournals for one call"
            )
        if logged:
            self.gateway_log.extend(f"{label}: {line[:400]}" for line in logged[:20])


# -- reporting ------------------------------------------------------------------------------


@dataclass
class Row:
    """One size, summed up: its first request, and the median and worst of the others."""

    lines: int
    payload_bytes: int
    idle_rss: int  # the gateway's resident set after the warm-up, before the first
    first_growth: int
    first_ratio: float
    again_runs: int
    again_growth_median: int
    again_growth_max: int
    again_ratio_max: float
    cpu_median: float  # of the requests after the first
    mb_per_core_second: float  # payload over that median CPU time
    wall_median: float
    rss_after: int  # after the last request


def rows(bench: Bench) -> list[Row]:
    out: list[Row] = []
    for lines in dict.fromkeys(p.lines for p in bench.posts if p.kind != "warm-up"):
        first = next((p for p in bench.posts if p.lines == lines and p.kind == "first"), None)
        again = [p for p in bench.posts if p.lines == lines and p.kind == "again" and p.ok]
        if first is None or not first.ok or not again:
            continue
        cpu = statistics.median(p.cpu_seconds for p in again)
        out.append(
            Row(
                lines=lines,
                payload_bytes=first.payload_bytes,
                idle_rss=bench.idle_rss.get(lines, 0),
                first_growth=first.peak_growth,
                first_ratio=first.ratio,
                again_runs=len(again),
                again_growth_median=int(statistics.median(p.peak_growth for p in again)),
                again_growth_max=max(p.peak_growth for p in again),
                again_ratio_max=max(p.ratio for p in again),
                cpu_median=cpu,
                mb_per_core_second=first.payload_bytes / MB / cpu if cpu > 0 else math.nan,
                wall_median=statistics.median(p.wall_seconds for p in again),
                rss_after=again[-1].rss_after,
            )
        )
    return out


def _num(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def table(bench: Bench) -> str:
    out = [
        "",
        "| lines  | payload MiB | idle RSS MiB | first: growth MiB | first: x payload "
        "| again: growth MiB (median, max) | again: x payload | gateway CPU s "
        "| MB/s per core | wall s | RSS after MiB |",
        "|-------:|------------:|-------------:|------------------:|-----------------:"
        "|--------------------------------:|-----------------:|--------------:"
        "|--------------:|-------:|--------------:|",
    ]
    summary = rows(bench)
    for row in summary:
        again = f"{row.again_growth_median / MiB:,.1f}, {row.again_growth_max / MiB:,.1f}"
        out.append(
            f"| {row.lines:>6,} | {row.payload_bytes / MiB:>11.2f} | {row.idle_rss / MiB:>12.1f} "
            f"| {row.first_growth / MiB:>17.1f} | {_num(row.first_ratio, 2) + 'x':>16} "
            f"| {again:>31} | {_num(row.again_ratio_max, 2) + 'x':>16} "
            f"| {_num(row.cpu_median, 3):>13} | {_num(row.mb_per_core_second):>13} "
            f"| {_num(row.wall_median, 3):>6} | {row.rss_after / MiB:>13.1f} |"
        )
    out.append("")
    for row in summary:
        out.append(
            f"- {row.lines:,} lines: peak growth {_num(row.first_ratio, 2)}x the payload on "
            f"the first request, up to {_num(row.again_ratio_max, 2)}x on the others (goal: "
            f"under {GOAL_GROWTH_RATIO:g}x: {_met(row.first_ratio < GOAL_GROWTH_RATIO)} on "
            f"the first, {_met(row.again_ratio_max < GOAL_GROWTH_RATIO)} on the others); "
            f"{_num(row.mb_per_core_second)} MB/s per core (goal: at least "
            f"{GOAL_MB_PER_CORE_SECOND:g}: "
            f"{_met(row.mb_per_core_second >= GOAL_MB_PER_CORE_SECOND)})"
        )
    out += checks(
        bench.gateway_log[:40],
        "the gateway",
        bench.problems,
        "every answer was a success and the upstream received each journal once",
    )
    return "\n".join(out)


def header(bench: Bench) -> str:
    args = bench.args
    lines = [
        "## PostJournals: the gateway's peak memory growth and CPU per MB of journal",
        "",
        f"- journals of {', '.join(f'{n:,}' for n in args.lines)} lines, one request at a "
        f"time; per size a new gateway process, {args.warmup} warm-up request(s) of "
        f"{args.warmup_lines} lines, then the first request of the size and {args.runs} more",
        f"- pinning: {bench.pinning.note}",
        "- peak growth: VmHWM after the answer minus VmRSS before the request "
        "(VmHWM reset through /proc/PID/clear_refs)",
        "- glibc: "
        + (
            f"MALLOC_MMAP_THRESHOLD_={args.mmap_threshold} in the gateway's environment"
            if args.mmap_threshold > 0
            else "the gateway runs with glibc's own mmap threshold"
        ),
        f"- {os.cpu_count()} CPUs; Python {platform.python_version()}, "
        f"aiohttp {aiohttp.__version__}; MiB = 2^20 bytes, MB = 10^6 bytes",
    ]
    lines += gateway_option_lines(args)
    return "\n".join(lines)


def report_json(bench: Bench) -> dict[str, Any]:
    args = bench.args
    settings = {k: v for k, v in bench.gateway_settings.items() if k != "FNG_GATEWAY_DATABASE_URL"}
    return {
        "meta": {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "lines": args.lines,
            "warmup_requests": args.warmup,
            "warmup_lines": args.warmup_lines,
            "requests_after_the_first": args.runs,
            "pinning": asdict(bench.pinning),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "aiohttp": aiohttp.__version__,
            "gateway_settings": settings,
            "gateway_command": args.gateway_command,
            "goals": {
                "growth_to_payload_below": GOAL_GROWTH_RATIO,
                "mb_per_core_second_at_least": GOAL_MB_PER_CORE_SECOND,
            },
            "problems": bench.problems,
            "gateway_log": bench.gateway_log,
        },
        "sizes": [asdict(row) for row in rows(bench)],
        "posts": [
            {**asdict(p), "ratio": p.ratio, "mb_per_core_second": p.mb_per_core_second}
            for p in bench.posts
        ],
    }


# -- entry point ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_memory",
        description="Big PostJournals calls, one at a time: how much each makes the gateway "
        "process's peak memory grow, and how many MB of journal XML it handles per second "
        "of one core.",
    )
    parser.add_argument(
        "--lines", type=int, nargs="+", default=[5000, 50000], help="journal sizes, in lines"
    )
    parser.add_argument("--runs", type=int, default=3, help="requests per size after the first one")
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="small requests to each new gateway before the first of the size",
    )
    parser.add_argument(
        "--warmup-lines", type=int, default=20, help="lines of the warm-up journals"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="per-request timeout, s")
    parser.add_argument(
        "--mmap-threshold",
        type=int,
        default=MMAP_THRESHOLD,
        metavar="BYTES",
        help="MALLOC_MMAP_THRESHOLD_ for the gateway (0: glibc's default, which keeps "
        "freed memory and so hides later growth)",
    )
    add_pinning_options(parser, server="the gateway")
    add_gateway_options(parser, kept="logs, store")
    args = parser.parse_args(argv)
    if min(args.lines) < 2 or args.warmup_lines < 2 or args.runs < 1 or args.warmup < 0:
        parser.error("--lines and --warmup-lines must be >= 2, --runs >= 1, --warmup >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Stopped by SIGTERM (timeout, a CI job) as by Ctrl-C: the child processes are stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if not Path("/proc/self/clear_refs").exists():
        print("this benchmark needs Linux's /proc/PID/clear_refs", file=sys.stderr)
        return 1
    pinning = plan_pinning(args)
    pinning.note = pinning.note.replace("gateway and pass-through", "gateway")
    if pinning.loadgen is not None:
        os.sched_setaffinity(0, {pinning.loadgen})
    with workdir(args.keep) as work:
        bench = Bench(args, pinning, work)
        print(header(bench), flush=True)
        print("\nstarting the upstream, registering …", flush=True)

        async def go() -> None:
            try:
                bench.start()
                print(f"registered through the CLI: {bench.registered}", flush=True)
                await bench.run()
            finally:
                bench.stop()

        status = run_bench(go())
        if status is not None:
            return status
        print(table(bench))
        write_json(args.json, report_json(bench))
    return 1 if bench.problems else 0


if __name__ == "__main__":
    sys.exit(main())
