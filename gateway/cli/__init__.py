"""The ``fng-gateway`` command line.

    fng-gateway sandbox             the gateway and its sandbox in one process, demo seeded
    fng-gateway serve               the gateway, configured by the environment
    fng-gateway migrate             bring the store's schema up to date
    fng-gateway vendors …           SIMS ID client registrations
    fng-gateway schools …           schools (one at a time, or a CSV file of them)
    fng-gateway databases …         schools' FNG databases
    fng-gateway keys …              partner keys: rotate, promote, cancel, retire, list
    fng-gateway fng-key …           FNG's keys: store the next one, promote it
    fng-gateway accounts …          integration accounts, grants, passwords
    fng-gateway portals …           suppliers' eProcurement portals
    fng-gateway eproc …             quarantined documents and orders
    fng-gateway secrets …           master keys: a new one, re-encrypt every secret
    fng-gateway audit               the audit log
    fng-gateway admin-tokens …      operators' tokens for the admin API

Lists print as tables, or JSON with --json. Secrets are read from standard input or an
environment variable, never from arguments (which other users of the machine can see).
Exit codes: 0 done, 1 refused, 2 wrong usage, 3 not found, 4 the store, a setting, a port or a
master key is missing or unusable, 5 an unexpected failure (a bug).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

from gateway.cli import bulk, registry, run
from gateway.cli.common import INTERNAL, exit_code
from gateway.config import check_event_loop
from gateway.errors import GatewayError


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="fng-gateway",
        description="fng-gateway: FMS 6 interfaces for FNG.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2] if __doc__ else None,
    )
    top.add_argument("--version", action="version", version=f"fng-gateway {_version()}")
    commands = top.add_subparsers(dest="command", required=True)
    groups = registry.register(commands)
    bulk.register(groups)
    run.register(commands, groups)
    return top


def _version() -> str:
    try:
        return version("fng-gateway")
    except PackageNotFoundError:
        return "(not installed)"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (a dependency on Linux and macOS), unless
    FNG_GATEWAY_EVENT_LOOP=asyncio asks for the standard library's."""
    chosen = os.environ.get("FNG_GATEWAY_EVENT_LOOP")
    check_event_loop(chosen)
    if chosen == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            code: int = runner.run(args.run(args))
        return code
    except GatewayError as exc:
        print(f"fng-gateway: {exc.message}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise  # the reader of the output went away: gateway.command ends quietly
    except Exception as exc:
        # The command line's edge: whatever was not foreseen is still one line, not a
        # traceback; FNG_GATEWAY_LOG_LEVEL=DEBUG shows the traceback for a bug report.
        if os.environ.get("FNG_GATEWAY_LOG_LEVEL", "").upper() == "DEBUG":
            traceback.print_exc()
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(
            f"fng-gateway: unexpected failure ({type(exc).__name__}{': ' if detail else ''}"
            f"{detail}); this is a bug: please report it, with the output of the same command "
            "run with FNG_GATEWAY_LOG_LEVEL=DEBUG",
            file=sys.stderr,
        )
        return INTERNAL
