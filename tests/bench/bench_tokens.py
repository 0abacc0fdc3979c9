"""SIMS ID token requests when 1,000 calls reach two cold replicas at once.

    python -m tests.bench.bench_tokens [--calls 1000] [--rounds 3] [--json results.json]

Two ``fng-gateway serve`` processes share one PostgreSQL store (a database of their own,
created for the run and dropped after it) and, in the ``redis`` variant, one Redis (a
database number of their own, emptied before every round and after the run). The
fixed-answer upstream of :mod:`tests.bench.servers` plays SIMS ID and FNG; its token
answers wait ``--token-latency-ms`` first, as a real SIMS ID takes a while.

A round starts both replicas with no token anywhere, fires ``--calls`` PostJournals
calls at once (a small journal, each with its own submission id), split evenly between
the two, and counts the token requests the upstream received: one in the ``redis``
variant, where the replicas share their token; two in the ``memory`` variant, where each
keeps its own. Then both replicas are stopped, so the next round starts cold again.

Every answer must be HTTP 200 with ``isSuccess="true"``, the upstream must have received
each journal exactly once, and no round may make more token requests than its variant
expects; anything else fails the run. See README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import redis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.bench.bench_postjournals import (
    REPO,
    SUCCESS,
    Server,
    Tags,
    Template,
    base_environment,
    fng_gateway_command,
    percentile,
    register,
    soap_template,
    start_server,
    workdir,
)
from tests.bench.report import (
    BenchError,
    add_gateway_options,
    checks,
    gateway_option_lines,
    run_bench,
    write_json,
)
from tests.support import Auth

#: The PostgreSQL server the tests use (FNG_TEST_POSTGRES, as for them), and a Redis
#: database number the tests leave alone (they use 0 and 12 on).
POSTGRES_URL: Final = os.environ.get(
    "FNG_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL: Final = "redis://127.0.0.1:6379/11"
#: Token requests a round may make, by variant: the replicas share a token through Redis;
#: with the cache in each process's memory, each replica fetches its own.
EXPECTED_TOKENS: Final = {"redis": 1, "memory": 2}
VARIANTS: Final = tuple(EXPECTED_TOKENS)
REPLICAS: Final = 2
METRIC: Final = re.compile(r'^fng_gateway_token_(fetches|cache)_total\{(\w+)="(\w+)"\}\s+(\S+)$')


# -- the shared services --------------------------------------------------------------------


def _with_database(url: str, name: str, driver: str | None = None) -> str:
    parts = urlsplit(url)
    scheme = f"postgresql+{driver}" if driver else parts.scheme
    return urlunsplit((scheme, parts.netloc, f"/{name}", "", ""))


class PrivateDatabase:
    """A PostgreSQL database of the benchmark's own, on the server ``admin_url`` names."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = _with_database(admin_url, urlsplit(admin_url).path.lstrip("/"), "asyncpg")
        self.name = f"fngbench_{secrets.token_hex(6)}"
        self.url = _with_database(admin_url, self.name, "asyncpg")
        self.created = False

    async def _run(self, statement: str) -> None:
        engine = create_async_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text(statement))
        finally:
            await engine.dispose()

    async def create(self) -> None:
        try:
            await self._run(f'CREATE DATABASE "{self.name}"')
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            raise BenchError(f"cannot create a database at {self.admin_url}: {exc}") from None
        self.created = True

    async def drop(self) -> None:
        if self.created:
            await self._run(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.created = False


class PrivateRedis:
    """A Redis database number the benchmark has to itself: empty when the run begins."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(url, socket_timeout=5.0)
        self.claimed = False

    def claim(self) -> None:
        try:
            keys = self.client.dbsize()
        except redis.RedisError as exc:
            raise BenchError(f"Redis at {self.url} cannot be used: {exc}") from None
        if keys:
            raise BenchError(
                f"Redis database {self.url} holds {keys} key(s) already: something else uses "
                "it (or an earlier run was killed). Choose another with --redis, or empty "
                "it yourself if it is the benchmark's."
            )
        self.claimed = True

    def flush(self) -> None:
        if self.claimed:
            self.client.flushdb()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.client.close()


# -- one round ------------------------------------------------------------------------------


def summarise_log(replica: Server) -> list[str]:
    """What a replica logged (WARNING and above), one line per distinct message with how
    many times it came; the gateway's JSON lines are read for their level, logger, message
    and error, and any other line is counted as it is."""
    counts: Counter[str] = Counter()
    for line in replica.log_since(0):
        if "fng-gateway listening on" in line or not line.strip():
            continue
        try:
            record = json.loads(line)
            text = f"{record['level']} {record['logger']}: {record['message']}"
            if "error" in record:
                text += f" ({record['error']})"
        except (ValueError, KeyError, TypeError):
            text = line[:400]
        counts[text] += 1
    return [f"{replica.name}: {n} x {text}" for text, n in counts.items()]


@dataclass
class Round:
    variant: str
    number: int
    calls: int
    token_requests: int  # received by the upstream during the round
    fetches_by_replica: list[int]  # token fetches each replica counted (its /metrics)
    misses_by_replica: list[int]  # calls that found no token in the replica's memory
    succeeded: int
    failed: int
    upstream_posts: int
    wall_seconds: float  # from the first call sent to the last answer read
    p50_ms: float
    p99_ms: float
    max_ms: float
    failure_samples: list[str] = field(default_factory=list)
    logged: list[str] = field(default_factory=list)  # what the replicas logged, summed up

    @property
    def expected_tokens(self) -> int:
        return EXPECTED_TOKENS[self.variant]

    @property
    def calls_per_second(self) -> float:
        return self.succeeded / self.wall_seconds if self.wall_seconds > 0 else math.nan


@dataclass
class Outcome:
    latency: float
    ok: bool
    sample: str


async def fire(
    urls: Sequence[str], template: Template, calls: int, tag: str, timeout: float
) -> tuple[list[Outcome], float]:
    """``calls`` calls at once, the n-th to ``urls[n % len(urls)]``; their outcomes and the
    wall time from the first sent to the last answered."""
    prefix, suffix = template.parts
    headers = template.headers()
    bodies = [prefix + f"{tag}{n:09d}".encode() + suffix for n in range(calls)]
    connector = aiohttp.TCPConnector(limit=0)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

        async def call(n: int) -> Outcome:
            began = time.perf_counter()
            try:
                async with session.post(
                    urls[n % len(urls)], data=bodies[n], headers=headers
                ) as response:
                    status, answer = response.status, await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, answer = 0, f"{type(exc).__name__}: {exc}".encode()
            ok = status == 200 and SUCCESS in answer
            sample = "" if ok else f"HTTP {status}: {answer[:800].decode(errors='replace')}"
            return Outcome(time.perf_counter() - began, ok, sample)

        began = time.perf_counter()
        outcomes = await asyncio.gather(*(call(n) for n in range(calls)))
        return outcomes, time.perf_counter() - began


# -- the benchmark --------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    workdir: Path
    database: PrivateDatabase
    cache: PrivateRedis
    tags: Tags = field(default_factory=Tags)
    upstream: Server | None = None
    replicas: list[Server] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    auth: Auth | None = None
    registered: dict[str, int] = field(default_factory=dict)
    rounds: list[Round] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    # -- set-up --

    async def start(self) -> None:
        self.cache.claim()
        await self.database.create()
        env = base_environment()
        self.upstream = start_server(
            "upstream",
            [
                *(sys.executable, "-m", "tests.bench.servers", "upstream"),
                *("--token-latency-ms", str(self.args.token_latency_ms)),
            ],
            env,
            self.workdir / "upstream.log",
            re.compile(r"listening on (\d+)"),
        )
        upstream_url = f"http://127.0.0.1:{self.upstream.port}"
        key = subprocess.run(
            [*fng_gateway_command(), "secrets", "new-key"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        self.env = {
            **env,
            "FNG_GATEWAY_DATABASE_URL": self.database.url,
            "FNG_GATEWAY_MASTER_KEYS": key,
            "FNG_GATEWAY_FNG__BASE_URL": f"{upstream_url}/fng",
            "FNG_GATEWAY_LOG_LEVEL": "WARNING",
            "FNG_GATEWAY_HOST": "127.0.0.1",
            "FNG_GATEWAY_PORT": "0",
            "FNG_GATEWAY_EPROC__ENABLED": "false",
            # A stopped replica has no load balancer to wait for.
            "FNG_GATEWAY_SHUTDOWN__DRAIN_SECONDS": "0",
            **{f"FNG_GATEWAY_{name}": value for name, value in self.args.gateway_env},
        }
        # Migrated once here, so that the replicas do not race to do it.
        done = subprocess.run(
            [*fng_gateway_command(), "migrate"],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(f"`fng-gateway migrate` failed:\n{done.stdout}{done.stderr}")
        self.auth, self.registered = register(self.env, upstream_url)

    def gateway_command(self) -> list[str]:
        command: str | None = self.args.gateway_command
        return shlex.split(command) if command else fng_gateway_command()

    def start_replicas(self, variant: str, number: int) -> None:
        env = dict(self.env)
        if variant == "redis":
            env["FNG_GATEWAY_REDIS_URL"] = self.cache.url
        with ThreadPoolExecutor(REPLICAS) as pool:
            starting = [
                pool.submit(
                    start_server,
                    f"replica {index + 1}",
                    [*self.gateway_command(), "serve"],
                    env,
                    self.workdir / f"{variant}-round{number}-replica{index + 1}.log",
                    re.compile(r"fng-gateway listening on http://[^:\s]+:(\d+)"),
                )
                for index in range(REPLICAS)
            ]
            for future in starting:
                try:
                    self.replicas.append(future.result())
                except BenchError as exc:
                    self.problems.append(str(exc))
        if len(self.replicas) < REPLICAS:
            raise BenchError("a replica did not start:\n" + "\n".join(self.problems[-2:]))

    def stop_replicas(self) -> None:
        for replica in self.replicas:  # all told at once, then waited for
            if replica.process.poll() is None:
                replica.process.terminate()
        for replica in self.replicas:
            replica.stop()
        self.replicas.clear()

    def stop(self) -> None:
        self.stop_replicas()
        if self.upstream is not None:
            self.upstream.stop()

    async def upstream_stats(self, session: aiohttp.ClientSession) -> dict[str, int]:
        assert self.upstream is not None
        async with session.get(f"http://127.0.0.1:{self.upstream.port}/_stats") as response:
            stats: dict[str, int] = await response.json()
        return stats

    async def ready(self, session: aiohttp.ClientSession) -> None:
        """Wait until every replica answers /readyz with 200 (store and cache reachable)."""
        deadline = time.monotonic() + 60
        for replica in self.replicas:
            while True:
                try:
                    async with session.get(f"http://127.0.0.1:{replica.port}/readyz") as answer:
                        if answer.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise BenchError(f"{replica.name} is not ready:\n{replica.log_tail()}")
                await asyncio.sleep(0.2)

    async def token_metrics(
        self, session: aiohttp.ClientSession, replica: Server
    ) -> dict[str, int]:
        """The replica's token counters: ``fetches`` (ok and failed) and cache ``misses``."""
        async with session.get(f"http://127.0.0.1:{replica.port}/metrics") as response:
            text = await response.text()
        counts = {"fetches": 0, "misses": 0}
        for line in text.splitlines():
            found = METRIC.match(line)
            if found is None:
                continue
            kind, _label, value, number = found.groups()
            if kind == "fetches":
                counts["fetches"] += int(float(number))
            elif value == "miss":
                counts["misses"] += int(float(number))
        return counts

    # -- measuring --

    async def round(self, variant: str, number: int) -> Round:
        assert self.auth is not None
        self.cache.flush()
        self.start_replicas(variant, number)
        try:
            async with aiohttp.ClientSession() as session:
                await self.ready(session)
                before = await self.upstream_stats(session)
                template = soap_template(self.args.lines, self.auth)
                urls = [f"http://127.0.0.1:{r.port}/soap/ejournal" for r in self.replicas]
                outcomes, wall = await fire(
                    urls, template, self.args.calls, self.tags.new(), self.args.timeout
                )
                after = await self.upstream_stats(session)
                metrics = [await self.token_metrics(session, r) for r in self.replicas]
        finally:
            replicas = list(self.replicas)
            self.stop_replicas()
            logged = [line for replica in replicas for line in summarise_log(replica)]
        latencies = sorted(o.latency for o in outcomes if o.ok)
        return Round(
            variant=variant,
            number=number,
            calls=self.args.calls,
            token_requests=after["tokens"] - before["tokens"],
            fetches_by_replica=[m["fetches"] for m in metrics],
            misses_by_replica=[m["misses"] for m in metrics],
            succeeded=len(latencies),
            failed=len(outcomes) - len(latencies),
            upstream_posts=after["posts"] - before["posts"],
            wall_seconds=wall,
            p50_ms=percentile(latencies, 50) * 1000,
            p99_ms=percentile(latencies, 99) * 1000,
            max_ms=latencies[-1] * 1000 if latencies else math.nan,
            failure_samples=[o.sample for o in outcomes if not o.ok][:5],
            logged=logged,
        )

    async def run(self) -> None:
        for variant in self.args.variants:
            print(f"\n{variant}: {self.args.calls:,} calls, {REPLICAS} cold replicas", flush=True)
            for number in range(1, self.args.rounds + 1):
                print(f"  round {number} …", end="", flush=True)
                result = await self.round(variant, number)
                self.rounds.append(result)
                print(
                    f" token requests {result.token_requests} (expected "
                    f"{result.expected_tokens}), {result.succeeded} succeeded, "
                    f"{result.failed} failed, {result.wall_seconds:.2f} s, "
                    f"p99 {result.p99_ms:,.0f} ms",
                    flush=True,
                )
                self.check(result)

    def check(self, result: Round) -> None:
        label = f"{result.variant} round {result.number}"
        for sample in result.failure_samples:
            print(f"      failure: {sample[:800]}", file=sys.stderr)
        if result.failed:
            self.problems.append(
                f"{label}: {result.failed} call(s) were not answered HTTP 200 with isSuccess=true"
            )
        if result.token_requests > result.expected_tokens:
            self.problems.append(
                f"{label}: SIMS ID received {result.token_requests} token requests, "
                f"{result.expected_tokens} expected (fetches by replica: "
                f"{result.fetches_by_replica})"
            )
        if result.upstream_posts != result.succeeded:
            self.problems.append(
                f"{label}: the upstream received {result.upstream_posts} PostJournals for "
                f"{result.succeeded} successful calls"
            )
        for line in result.logged:
            print(f"      logged: {line}", file=sys.stderr)


# -- reporting ------------------------------------------------------------------------------


def _num(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def table(bench: Bench) -> str:
    out = [
        "",
        "| variant | round | token requests | expected | fetches by replica | succeeded "
        "| failed | wall s | p50 ms | p99 ms | max ms | calls/s |",
        "|---------|------:|---------------:|---------:|-------------------:|----------:"
        "|-------:|-------:|-------:|-------:|-------:|--------:|",
    ]
    for r in bench.rounds:
        by_replica = " + ".join(str(n) for n in r.fetches_by_replica)
        out.append(
            f"| {r.variant:<7} | {r.number:>5} | {r.token_requests:>14} | {r.expected_tokens:>8} "
            f"| {by_replica:>18} | {r.succeeded:>9} | {r.failed:>6} "
            f"| {r.wall_seconds:>6.2f} | {_num(r.p50_ms, 0):>6} | {_num(r.p99_ms, 0):>6} "
            f"| {_num(r.max_ms, 0):>6} | {_num(r.calls_per_second, 0):>7} |"
        )
    out.append("")
    for variant in dict.fromkeys(r.variant for r in bench.rounds):
        some = [r for r in bench.rounds if r.variant == variant]
        counts = [r.token_requests for r in some]
        out.append(
            f"- {variant}: token requests per round {counts} "
            f"(expected {EXPECTED_TOKENS[variant]} each)"
        )
    logged = [f"{r.variant} round {r.number}, {line}" for r in bench.rounds for line in r.logged]
    out += checks(
        logged,
        "the replicas",
        bench.problems,
        "every call succeeded, the upstream received each journal once, and no round asked "
        "SIMS ID for more tokens than expected",
    )
    return "\n".join(out)


def header(bench: Bench) -> str:
    args = bench.args
    lines = [
        "## Token requests: cold replicas under a burst of concurrent calls",
        "",
        f"- {REPLICAS} replicas (`fng-gateway serve`) sharing one PostgreSQL database; "
        f"variants: {', '.join(args.variants)} (redis: one shared Redis; memory: a cache per "
        "replica)",
        f"- per round: {args.calls:,} PostJournals calls of a {args.lines}-line journal, all "
        f"at once, split evenly; {args.rounds} round(s) per variant, each from a cold start",
        f"- SIMS ID (the fixed-answer upstream) answers a token request after "
        f"{args.token_latency_ms:g} ms",
        "- nothing is pinned: the replicas, the upstream, PostgreSQL, Redis and the load "
        "generator share the machine's cores",
        f"- {os.cpu_count()} CPUs; Python {platform.python_version()}, "
        f"aiohttp {aiohttp.__version__}",
    ]
    lines += gateway_option_lines(args)
    return "\n".join(lines)


def report_json(bench: Bench) -> dict[str, Any]:
    args = bench.args
    return {
        "meta": {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "calls": args.calls,
            "rounds": args.rounds,
            "variants": args.variants,
            "journal_lines": args.lines,
            "token_latency_ms": args.token_latency_ms,
            "replicas": REPLICAS,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "aiohttp": aiohttp.__version__,
            "gateway_settings": {f"FNG_GATEWAY_{k}": v for k, v in args.gateway_env},
            "gateway_command": args.gateway_command,
            "expected_token_requests": EXPECTED_TOKENS,
            "problems": bench.problems,
        },
        "rounds": [
            {
                **asdict(r),
                "expected_tokens": r.expected_tokens,
                "calls_per_second": r.calls_per_second,
            }
            for r in bench.rounds
        ],
    }


# -- entry point ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_tokens",
        description="Two cold replicas, one burst of concurrent PostJournals calls: how many "
        "token requests reach SIMS ID, with the token shared through Redis and without.",
    )
    parser.add_argument("--calls", type=int, default=1000, help="concurrent calls per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per variant")
    parser.add_argument(
        "--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS), help="what to run"
    )
    parser.add_argument("--lines", type=int, default=20, help="lines of each call's journal")
    parser.add_argument(
        "--token-latency-ms",
        type=float,
        default=200.0,
        help="how long the upstream takes to answer a token request",
    )
    parser.add_argument(
        "--postgres",
        default=POSTGRES_URL,
        metavar="URL",
        help="a PostgreSQL server the benchmark may create a database on (it connects to "
        "the database named, creates its own beside it and drops it at the end); "
        "default: FNG_TEST_POSTGRES or the tests' local server",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("FNG_BENCH_REDIS", REDIS_URL),
        metavar="URL",
        help="a Redis database number nothing else uses: it must be empty, and is emptied "
        "between rounds and at the end (default: FNG_BENCH_REDIS or %(default)s)",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="per-call timeout, s")
    add_gateway_options(parser, kept="the servers' logs")
    args = parser.parse_args(argv)
    if args.calls < REPLICAS or args.rounds < 1 or args.lines < 2 or args.token_latency_ms < 0:
        parser.error(
            f"--calls must be >= {REPLICAS}, --rounds >= 1, --lines >= 2, --token-latency-ms >= 0"
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Stopped by SIGTERM (timeout, a CI job) as by Ctrl-C: the child processes are stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with workdir(args.keep) as work:
        bench = Bench(args, work, PrivateDatabase(args.postgres), PrivateRedis(args.redis))
        print(header(bench), flush=True)
        print("\ncreating the database, starting the upstream, registering …", flush=True)

        async def go() -> None:
            try:
                await bench.start()
                print(f"registered through the CLI: {bench.registered}", flush=True)
                await bench.run()
            finally:
                bench.stop()
                bench.cache.close()
                await bench.database.drop()

        status = run_bench(go())
        if status is not None:
            return status
        print(table(bench))
        write_json(args.json, report_json(bench))
    return 1 if bench.problems else 0


if __name__ == "__main__":
    sys.exit(main())
