"""What the benchmarks share: their common options, how they run, and how they write their
figures."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


def run_bench(bench: Coroutine[Any, Any, object]) -> int | None:
    """Run a benchmark to its end: None when it got there, else the exit status (1 when it
    failed, said on standard error; 130 when interrupted)."""
    try:
        asyncio.run(bench)
    except BenchError as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return None


def checks(logged: list[str], who: str, problems: list[str], passed: str) -> list[str]:
    """The last lines of a report: what ``who`` logged, then the checks that failed, or
    ``passed`` when none did."""
    out = []
    if logged:
        out.append(f"\n{who} logged (WARNING and above):")
        out.extend(f"- {line}" for line in logged)
    if problems:
        out.append("\nchecks that failed (the figures are not to be used):")
        out.extend(f"- {problem}" for problem in problems)
    else:
        out.append(f"\nchecks: {passed}")
    return out


def json_safe(value: Any) -> Any:
    """``value`` with NaN (a figure that could not be measured) as ``null``, as JSON has it."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def core(text: str) -> int | None:
    return None if text.lower() in ("none", "") else int(text)


def setting(text: str) -> tuple[str, str]:
    """A gateway setting given as NAME=VALUE (FNG_GATEWAY_NAME=VALUE)."""
    name, sep, value = text.partition("=")
    name = name.strip().removeprefix("FNG_GATEWAY_")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name, value


def add_pinning_options(parser: argparse.ArgumentParser, *, server: str) -> None:
    """--server-cpu (the core of ``server``), --upstream-cpu, --loadgen-cpu, --no-pin."""
    parser.add_argument("--server-cpu", type=int, default=0, help=f"core of {server}")
    parser.add_argument("--upstream-cpu", type=int, default=1, help="core of the upstream")
    parser.add_argument(
        "--loadgen-cpu",
        type=core,
        default=1,
        help="core of the load generator ('none': not pinned); default: the upstream's",
    )
    parser.add_argument("--no-pin", action="store_true", help="pin no process to a core")


def add_gateway_options(parser: argparse.ArgumentParser, *, kept: str) -> None:
    """--gateway-env, --gateway-command, --json and --keep (which keeps ``kept``)."""
    parser.add_argument(
        "--gateway-env",
        type=setting,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="one more gateway setting, as FNG_GATEWAY_NAME=VALUE (repeatable), "
        "e.g. AUTH__REGISTRY_CACHE_SECONDS=60",
    )
    parser.add_argument(
        "--gateway-command",
        metavar="COMMAND",
        help="run the gateway as 'COMMAND serve' instead of 'fng-gateway serve' "
        "(to measure a modified build against the same registrations)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--keep", action="store_true", help=f"keep the working directory ({kept})")


def gateway_option_lines(args: argparse.Namespace) -> list[str]:
    """The header lines that say which extra settings or command the gateway ran with."""
    lines = []
    if args.gateway_env:
        lines.append(
            "- extra gateway settings: "
            + ", ".join(f"FNG_GATEWAY_{k}={v}" for k, v in args.gateway_env)
        )
    if args.gateway_command:
        lines.append(f"- gateway command: {args.gateway_command} serve")
    return lines


def write_json(path: Path | None, report: dict[str, Any]) -> None:
    """Write ``report`` to ``path`` (when one was given) and say where."""
    if path is not None:
        path.write_text(json.dumps(json_safe(report), indent=2) + "\n")
        print(f"\nthe figures are in {path}")
