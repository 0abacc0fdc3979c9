"""What every command shares: settings, secrets from stdin or the environment, the store,
printing for people or for scripts, and exit codes that mean something."""

from __future__ import annotations

import argparse
import difflib
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from gateway.command import silence_stdout
from gateway.config import PREFIX, Settings, setting_variables
from gateway.errors import (
    CallerError,
    ConfigurationError,
    GatewayError,
    NotFound,
    RegistryError,
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
UNAVAILABLE: Final = 4  # the store, a setting, a port or a master key is missing or unusable
INTERNAL: Final = 5  # an unexpected failure: a bug


class UsageRefused(CallerError):
    """A command line the CLI refuses where argparse cannot see it (two options that
    conflict, a stream the command needs closed): exit code 2."""


def exit_code(error: GatewayError) -> int:
    if isinstance(error, UsageRefused):
        return USAGE
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
        problems = "; ".join(
            _problem(error) for error in exc.errors(include_input=False, include_url=False)
        )
        raise ConfigurationError(f"invalid setting {problems}") from None


def _problem(error: Any) -> str:
    """One setting's problem, named as the operator wrote it."""
    parts = [str(part) for part in error["loc"]]
    if error["type"] == "extra_forbidden":
        # Unknown variables are refused before this; an unknown key comes from the file.
        key = ".".join(parts)
        known = sorted(
            name.removeprefix(PREFIX).lower().replace("__", ".") for name in setting_variables()
        )
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"{key} in the config file: no such setting{hint}"
    message = str(error["msg"]).removeprefix("Value error, ")
    variable = f"{PREFIX}{'__'.join(parts).upper()}"
    config_file = os.environ.get(f"{PREFIX}CONFIG_FILE")
    if config_file and variable not in os.environ:
        # Not set in the environment (or set as a whole group): the file's, most likely.
        return f"{'.'.join(parts)} in {config_file} (or {variable}): {message}"
    return f"{variable}: {message}"


def secret(args: argparse.Namespace, what: str, *, required: bool = True) -> str | None:
    """A secret from ``--{what}-stdin`` or ``--{what}-env VAR``; never from an argument."""
    option = what.replace(" ", "_")
    variable = getattr(args, f"{option}_env", None)
    from_stdin = getattr(args, f"{option}_stdin", False)
    if variable and from_stdin:
        flag = what.replace(" ", "-")
        raise UsageRefused(
            f"--{flag}-stdin and --{flag}-env both give the {what.replace('fng', 'FNG')}: "
            "give one of them"
        )
    if variable:
        if variable not in os.environ:
            flag = what.replace(" ", "-")
            raise ConfigurationError(
                f"the environment variable {variable} (--{flag}-env) is not set: export it, or "
                f"give the {what.replace('fng', 'FNG')} with --{flag}-stdin"
            )
        value = os.environ[variable]
        if not value:
            raise ConfigurationError(f"the environment variable {variable} is empty")
        return value
    if from_stdin:
        try:
            if sys.stdin.isatty():  # typed: not echoed, and asked for
                value = getpass.getpass(
                    f"{what.replace('fng', 'FNG')} (not echoed): ", stream=sys.stderr
                ).strip()
            else:
                value = sys.stdin.buffer.read().decode("utf-8").strip()
        except UnicodeDecodeError:
            raise CallerError(f"the {what} on standard input is not UTF-8 text") from None
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


def actor(args: argparse.Namespace) -> str:
    """Who the audit log records, ``cli:NAME``: ``--actor``, else the user running the
    command (by its login name, or its uid's name where no login name is set, as under
    ``kubectl exec``); one line of printable characters, bounded, so that no name can forge
    lines in the audit table."""
    from gateway.tenancy.identifiers import CLI_ACTOR, check

    given = getattr(args, "actor", None)
    if given is not None:
        check(CLI_ACTOR, given, given_as="--actor")
        return f"cli:{given}"
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # a uid with no name in the password database
        name = f"uid-{os.getuid()}"
    problem = CLI_ACTOR.problem(name)
    if problem is not None:
        raise RegistryError(
            f"the login name this command runs as {problem}: give the name to record in the "
            "audit log with --actor NAME"
        )
    return f"cli:{name}"


def with_actor(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--actor",
        metavar="NAME",
        help="who to record in the audit log (default: the user running the command)",
    )
    return parser


def require_output(shown: str, *, otherwise: str = "") -> None:
    """Refuse, before anything changes, a command that shows ``shown`` once when standard
    output was closed when the command started (it is then the null device); ``otherwise``,
    another way the command could show it."""
    from gateway.command import reopened

    if 1 in reopened:
        raise UsageRefused(
            f"standard output is closed: the {shown} would be shown to nobody; run the "
            "command with standard output open (to a terminal or a file)"
            + (f" {otherwise}" if otherwise else "")
        )


async def check_master_keys(store: Store, box: SecretBox) -> None:
    """Refuse when the store holds encrypted secrets and the master keys decrypt none of
    them (the wrong keys): before ``serve`` starts, and before a command stores a secret
    that the right keys could then not open. Stops at the first secret they decrypt, which
    is the first one tried when the keys are right; when some decrypt and others do not,
    each unusable one is warned of when it is used."""
    import sqlalchemy as sa

    from gateway.tenancy.reencrypt import ENCRYPTED

    tried = 0
    async with store.read() as conn:
        for table, columns, _kind in ENCRYPTED:
            for column in columns:
                query = sa.select(table.c[column]).where(table.c[column].is_not(None))
                for (token,) in (await conn.execute(query)).all():
                    tried += 1
                    try:
                        box.decrypt(token)
                    except ConfigurationError:
                        continue
                    return
    if tried:
        raise ConfigurationError(
            f"the master keys decrypt none of the {tried} stored secret(s): give "
            "FNG_GATEWAY_MASTER_KEYS (or FNG_GATEWAY_MASTER_KEYS_FILE) the master key they "
            "were stored under (a new key goes first, the old one after it)"
        )


async def with_store(
    action: Callable[[Store, SecretBox], Awaitable[Any]],
    args: argparse.Namespace,
    *,
    shown_once: tuple[str, str] | None = None,
    stores_secret: bool = False,
) -> int:
    """Open the store (migrated first, unless turned off), run ``action``, print its result.

    ``stores_secret``: the action encrypts a secret, so the master keys are checked first
    (:func:`check_master_keys`) and nothing is written under keys that open no other.

    ``shown_once`` (what the result shows once, what to do if it is lost) is for a command
    whose result holds a secret shown once: it is refused when standard output is closed,
    and a failure to write its result says so, with what to do."""
    if shown_once is not None:
        require_output(shown_once[0])
    from gateway.store import create_store
    from gateway.store.migrate import make_ready
    from gateway.tenancy.secrets import SecretBox

    config = settings()
    box = SecretBox.from_sources(config.master_keys, config.master_keys_file)
    announce_new_store(config.database_url)
    store = create_store(config.database_url)
    try:
        await make_ready(store, config.database_url, auto_migrate=config.auto_migrate)
        if stores_secret:
            await check_master_keys(store, box)
        result = await action(store, box)
    finally:
        await store.close()
    try:
        show(result, getattr(args, "json", False))
        sys.stdout.flush()
    except BrokenPipeError:
        if shown_once is None:
            raise
        _lost(shown_once, "the reader of standard output went away")
    except OSError as exc:
        if shown_once is None:
            raise _unwritable(exc, "the command was carried out; its output is lost") from None
        _lost(shown_once, exc.strerror or str(exc))
    return DONE


def write_out(text: str, *, lost: str = "nothing else was changed") -> None:
    """Print ``text`` to standard output, now: one that cannot be written (a full disk) is a
    refusal saying so, with ``lost``, what the command's output was and what to do."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise _unwritable(exc, lost) from None


def _unwritable(exc: OSError, then: str) -> StoreUnavailable:
    silence_stdout()
    return StoreUnavailable(f"standard output cannot be written ({exc.strerror or exc}): {then}")


def _lost(shown_once: tuple[str, str], why: str) -> None:
    silence_stdout()
    shown, remedy = shown_once
    raise StoreUnavailable(
        f"the change was made, but the {shown} could not be written to standard output "
        f"({why}): it is lost; {remedy}"
    )


def new_sqlite_file(url: str) -> Path | None:
    """The SQLite file a URL names, when it does not exist yet (using it creates it)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or database in (None, "", ":memory:"):
        return None
    path = Path(database).resolve()
    return None if path.exists() else path


def announce_new_store(url: str) -> None:
    """Say so, loudly, when a command is about to create a new SQLite store: an unset or
    mistyped FNG_GATEWAY_DATABASE_URL would otherwise leave data in an unexpected file. A
    SQLite path where no store can be made is refused first, before anything is announced."""
    from gateway.store.engine import sqlite_file_problem

    problem = sqlite_file_problem(url)
    if problem is not None:
        raise StoreUnavailable(problem)
    created = new_sqlite_file(url)
    if created is not None:
        print(
            f"fng-gateway: NOTE: creating a new SQLite store, {created} "
            "(set FNG_GATEWAY_DATABASE_URL to use another store)",
            file=sys.stderr,
        )


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
