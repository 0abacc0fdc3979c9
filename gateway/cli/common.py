"""What every command shares: settings, secrets from stdin or the environment, the store,
printing for people or for scripts, and exit codes that mean something."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from gateway.config import Settings
from gateway.errors import (
    CallerError,
    ConfigurationError,
    GatewayError,
    NotFound,
    StoreUnavailable,
)

if TYPE_CHECKING:
    from gateway.store import Store
    from gateway.tenancy.secrets import SecretBox

#: Exit codes.
DONE: Final = 0
REFUSED: Final = 1  # the request was understood and refused (invalid, conflicting)
USAGE: Final = 2  # the command line was wrong (argparse's own)
NOT_FOUND: Final = 3  # what it names does not exist
UNAVAILABLE: Final = 4  # the store, a setting or a master key is missing or unusable


def exit_code(error: GatewayError) -> int:
    if isinstance(error, NotFound):
        return NOT_FOUND
    if isinstance(error, (ConfigurationError, StoreUnavailable)):
        return UNAVAILABLE
    return REFUSED if isinstance(error, CallerError) else UNAVAILABLE


def settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        # Without the values given: a setting may hold a password (a database URL).
        problems = "\n".join(
            f"  {'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise ConfigurationError(f"invalid settings:\n{problems}") from None


def secret(args: argparse.Namespace, what: str, *, required: bool = True) -> str | None:
    """A secret from ``--{what}-stdin`` or ``--{what}-env VAR``; never from an argument."""
    option = what.replace(" ", "_")
    variable = getattr(args, f"{option}_env", None)
    if variable:
        value = os.environ.get(variable, "")
        if not value:
            raise ConfigurationError(f"the environment variable {variable} is empty")
        return value
    if getattr(args, f"{option}_stdin", False):
        value = sys.stdin.read().strip()
        if not value:
            raise CallerError(f"no {what} on standard input")
        return value
    if required:
        flag = what.replace(" ", "-")
        raise CallerError(f"give the {what} with --{flag}-stdin or --{flag}-env VAR")
    return None


def secret_options(parser: argparse.ArgumentParser, what: str, help_text: str) -> None:
    flag = what.replace(" ", "-")
    parser.add_argument(f"--{flag}-stdin", action="store_true", help=f"read {help_text} from stdin")
    parser.add_argument(f"--{flag}-env", metavar="VAR", help=f"read {help_text} from VAR")


def with_json(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="print JSON, for scripts")
    return parser


def actor() -> str:
    return f"cli:{os.getenv('USER', '?')}"


async def with_store(
    action: Callable[[Store, SecretBox], Awaitable[Any]], args: argparse.Namespace
) -> int:
    """Open the store (migrated first, unless turned off), run ``action``, print its result."""
    from gateway.store import create_store
    from gateway.store.migrate import ensure_current
    from gateway.tenancy.secrets import SecretBox

    config = settings()
    box = SecretBox.from_sources(config.master_keys, config.master_keys_file)
    store = create_store(config.database_url)
    if config.auto_migrate:
        await ensure_current(store, config.database_url)
    try:
        result = await action(store, box)
    finally:
        await store.close()
    show(result, getattr(args, "json", False))
    return DONE


def show(result: Any, as_json: bool) -> None:
    """A list as a table, a mapping as ``key: value`` lines, or either as JSON."""
    if as_json:
        print(json.dumps(result, default=str))
    elif isinstance(result, list):
        if not result:
            print("(none)")
            return
        columns = list(result[0])
        cells = [[_cell(row.get(column)) for column in columns] for row in result]
        widths = [
            max(len(column), *(len(row[i]) for row in cells)) for i, column in enumerate(columns)
        ]
        print("  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True)))
        for row in cells:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    elif isinstance(result, dict):
        for key, value in result.items():
            print(f"{key}: {_cell(value)}")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return str(value)
