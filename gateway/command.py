"""The ``fng-gateway`` console script: the command line's outermost edge.

It stands apart from :mod:`gateway.cli`, whose imports take a moment, so that whatever
befalls a command outside its own code still ends in its exit code and no traceback: a
Ctrl-C while the gateway's modules load (130, as shells number an interrupt), a reader that
goes away before the output is written (``| head``: 141, as a process ended by SIGPIPE), and
standard streams the caller closed (``<&-``), which are opened on the null device instead so
that nothing the command opens takes their numbers.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Final, TextIO, cast

INTERRUPTED: Final = 130
OUTPUT_CLOSED: Final = 141

#: The standard streams (0, 1, 2) that were closed when the command started and are now
#: open on the null device: a command that shows a secret once refuses when 1 is among them.
reopened: set[int] = set()


def _reopen_closed_streams() -> None:
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            reopened.add(fd)
            opened = os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one
            if opened != fd:
                os.dup2(opened, fd)
                os.close(opened)
    # Python made None of the streams that were closed when it started.
    if sys.stdin is None:
        sys.stdin = _stream(0, "r")
    if sys.stdout is None:
        sys.stdout = _stream(1, "w")
    if sys.stderr is None:
        sys.stderr = _stream(2, "w")


def _stream(fd: int, mode: str) -> TextIO:
    return cast(TextIO, open(fd, mode, encoding="utf-8", closefd=False))


def main() -> int:
    _reopen_closed_streams()
    try:
        from gateway.cli import main as run

        code = run()
    except KeyboardInterrupt:
        code = INTERRUPTED
    except BrokenPipeError:
        silence_stdout()
        return OUTPUT_CLOSED
    if code == INTERRUPTED:
        _end_now(code)
    return code


def silence_stdout() -> None:
    """Standard output to the null device, once nothing more can be written to it (the
    reader went away, the disk is full): not even Python's flush at exit then fails."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _end_now(code: int) -> None:
    """End an interrupted command at once. An interrupt that lands while a database
    driver's worker thread is being set up can leave that thread waiting for work that
    never comes, and Python's exit waits for every such thread: forever, short of a second
    Ctrl-C. What was written is flushed first; an interrupted transaction was never
    committed, and the database rolls it back."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
