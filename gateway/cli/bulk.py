"""``fng-gateway schools import FILE.csv``: many schools and their databases in one run."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any

from gateway.cli.common import (
    REFUSED,
    UsageRefused,
    actor,
    show,
    with_actor,
    with_json,
    with_store,
)
from gateway.command import INTERRUPTED
from gateway.errors import CallerError, NotFound

if TYPE_CHECKING:
    from gateway.store import Store
    from gateway.tenancy.bulk import GeneratedKey
    from gateway.tenancy.secrets import SecretBox

# The service module is imported by the command, so that the command line starts quickly;
# a test keeps these columns equal to its COLUMNS.
COLUMNS = (
    "name",
    "la_number",
    "establishment_number",
    "duns",
    "language",
    "currency",
    "database",
    "vendor",
    "fng_key",
    "partner_key",
)

DESCRIPTION = f"""\
Create or update schools and their FNG databases from a CSV file: UTF-8, comma-separated,
with a header row naming these columns (in any order):

  {",".join(COLUMNS)}

One row per school database (a school with two databases has two rows). duns, language
(default en), currency (default GBP) and partner_key (default: a generated one) may be
empty; vendor is a registered vendor's name; fng_key and partner_key are GUIDs.

A school (LA number + establishment number) that exists is updated (name, DUNS, language,
currency); a database (school + database name) that exists gets its FNG key and vendor
updated. A partner_key given for an existing database must be its active key (rotating keys
is 'fng-gateway keys rotate').

Every row is checked first; if any is wrong, every problem is listed with its line (the
header is line 1) and nothing is written (exit code 1). Otherwise everything is written in
one transaction. Generated partner keys are shown once: in the --keys-out file, which the
import then requires.
"""


class Interrupted(Exception):
    """Ctrl-C, acted on at a point where the import's transaction rolls back cleanly."""


class Interrupts:
    """SIGINT during an import, noted rather than raised: the import stops at its next check
    while its transaction is open (so it rolls back: nothing imported, no keys file); once
    the generated keys are saved the transaction commits whatever comes (so no key is
    stored that is not in the keys file), and the interrupt is reported after."""

    def __init__(self) -> None:
        self.count = 0
        self.committing = False
        self._previous: Any = None

    def __enter__(self) -> Interrupts:
        self._previous = signal.signal(signal.SIGINT, self._noted)
        return self

    def __exit__(self, *_: object) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _noted(self, _signal: int, _frame: FrameType | None) -> None:
        self.count += 1

    def check(self) -> None:
        if self.count and not self.committing:
            raise Interrupted


class ProgressBar:
    """``[#########           ] 350/500 writing`` on one line of a terminal (or a stream)."""

    def __init__(self, stream: IO[str], width: int = 30, interval: float = 0.05) -> None:
        self._stream = stream
        self._width = width
        self._interval = interval
        self._drawn = ("", -1)
        self._last = 0.0
        self._length = 0

    def __call__(self, phase: str, done: int, total: int) -> None:
        filled = self._width * done // total if total else self._width
        now = time.monotonic()
        if (phase, filled) == self._drawn and done < total and now - self._last < self._interval:
            return
        self._drawn, self._last = (phase, filled), now
        text = f"[{'#' * filled}{' ' * (self._width - filled)}] {done}/{total} {phase}"
        self._stream.write(f"\r{text}{' ' * max(0, self._length - len(text))}")
        self._stream.flush()
        self._length = len(text)

    def close(self) -> None:
        if self._length:
            self._stream.write("\n")
            self._stream.flush()
            self._length = 0


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"there is no file {str(path)!r}") from None
    except OSError as exc:
        raise CallerError(f"{str(path)!r} cannot be read: {exc.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CallerError(f"{str(path)!r} is not UTF-8 (byte {exc.start})") from None


def _create_keys_file(path: Path) -> int:
    """The keys file, created now (so a mistake in its name is found before any work), for
    its owner only, and never over an existing file."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CallerError(
            f"{str(path)!r} exists: a keys file is never overwritten (keys in it would be lost)"
        ) from None
    except OSError as exc:
        raise UsageRefused(
            f"the --keys-out file {str(path)!r} cannot be created ({exc.strerror}): give the "
            "path of a new file in a directory this user may write"
        ) from None
    os.fchmod(descriptor, 0o600)  # whatever the umask
    return descriptor


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _write_keys(descriptor: int, keys: Sequence[GeneratedKey]) -> None:
    with os.fdopen(descriptor, "w", newline="", encoding="utf-8", closefd=False) as handle:
        writer = csv.writer(handle)
        writer.writerow(("la_number", "establishment_number", "database", "partner_key"))
        for key in keys:
            writer.writerow(
                (key.la_number, key.establishment_number, key.database, key.partner_key)
            )
        handle.flush()
        os.fsync(descriptor)


async def schools_import(args: argparse.Namespace) -> int:

    who = actor(args)  # before the keys file is made: a refused actor leaves none
    with Interrupts() as interrupts:
        return await _import(args, who, interrupts)


async def _import(args: argparse.Namespace, who: str, interrupts: Interrupts) -> int:
    from gateway.tenancy.bulk import BulkImportError, import_schools

    text = await asyncio.to_thread(_read, args.file)
    keys_out: Path | None = args.keys_out
    descriptor = (
        await asyncio.to_thread(_create_keys_file, keys_out) if keys_out is not None else None
    )
    drawn = args.progress if args.progress is not None else sys.stderr.isatty()
    bar = ProgressBar(sys.stderr) if drawn else None
    summary: dict[str, Any] = {}
    committed = False

    def progress(phase: str, done: int, total: int) -> None:
        interrupts.check()  # in the transaction: an interrupt rolls it back
        if bar is not None:
            bar(phase, done, total)

    async def save_keys(keys: Sequence[GeneratedKey]) -> None:
        assert descriptor is not None
        interrupts.check()
        await asyncio.to_thread(_write_keys, descriptor, keys)
        # The keys are on disk: from here the transaction commits, interrupted or not.
        interrupts.committing = True

    async def action(store: Store, box: SecretBox) -> Any:
        nonlocal committed
        interrupts.check()
        try:
            report = await import_schools(
                store,
                box,
                who,
                text,
                progress=progress,
                generate_keys=descriptor is not None,
                save_keys=save_keys if descriptor is not None else None,
            )
        finally:
            interrupts.committing = False
        committed = True
        summary.update(report.summary())
        if bar is not None:
            bar.close()
        if keys_out is not None and report.generated_keys:
            summary["keys_out"] = str(keys_out)
        if args.json:
            return summary
        return [{"": what, **summary[what]} for what in ("schools", "databases")]

    try:
        code = await with_store(action, args, stores_secret=True)
    except Interrupted:
        if bar is not None:
            bar.close()  # the message on a line of its own
        print("fng-gateway: interrupted: nothing was imported", file=sys.stderr)
        return INTERRUPTED
    except BulkImportError as exc:
        if bar is not None:
            bar.close()  # the problems on lines of their own
        if args.json:
            problems = [{"line": line, "message": message} for line, message in exc.problems]
            show({"imported": False, "problems": problems}, as_json=True)
        print(f"fng-gateway: {exc.message}", file=sys.stderr)
        if exc.keyless:
            print(
                "fng-gateway: give those rows a partner_key, or --keys-out FILE to have keys "
                "generated and written there",
                file=sys.stderr,
            )
        return REFUSED
    finally:
        if bar is not None:
            bar.close()
        if descriptor is not None:
            os.close(descriptor)
            # Removed only when the import did not commit (refused, failed, interrupted), or
            # committed without generating a key; never when it committed generated keys.
            if keys_out is not None and not (committed and summary.get("generated_keys")):
                _discard(keys_out)
    if not args.json:
        generated = summary["generated_keys"]
        print(f"generated partner keys: {generated}" + (f", in {keys_out}" if generated else ""))
    if interrupts.count:
        kept = f"; the generated keys are in {keys_out}" if summary.get("generated_keys") else ""
        print(
            f"fng-gateway: interrupted too late to stop it: the import was committed{kept}",
            file=sys.stderr,
        )
    return code


def register(groups: dict[str, Any]) -> None:
    """Add ``schools import`` to the ``schools`` group."""
    parser: argparse.ArgumentParser = with_actor(
        with_json(
            groups["schools"].add_parser(
                "import",
                help="create or update schools and databases from a CSV file",
                description=DESCRIPTION,
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
        )
    )
    parser.add_argument("file", type=Path, help="the CSV file")
    parser.add_argument(
        "--keys-out",
        type=Path,
        metavar="FILE",
        help="write generated partner keys here (CSV, mode 0600; must not exist; not kept "
        "when no key is generated); required when a new database's row has no partner_key",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar on stderr (default: when stderr is a terminal)",
    )
    parser.set_defaults(run=schools_import)
