"""A PostgreSQL and a Redis of one test's own, which it may stop and start at will.

The machine's shared servers are never touched: these listen on free loopback ports and keep
their files in a temporary folder. PostgreSQL refuses to run as root; as root, its commands
run as the ``postgres`` user. Without the binaries (or, as root, without that user) the test
skips, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NoReturn

import pytest

from tests.conftest import CI


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _missing(what: str) -> NoReturn:
    if CI:
        pytest.fail(f"{what}, which is required when CI=true")
    pytest.skip(what)


def _postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's programs (Debian keeps each version apart)."""
    found = sorted(
        (Path(path) for path in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    for candidate in reversed(found):
        if all((candidate / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return candidate
    initdb = shutil.which("initdb")
    if initdb is not None and shutil.which("pg_ctl") is not None:
        return Path(os.path.realpath(initdb)).parent
    return None


class PrivatePostgres:
    """``initdb`` once, then :meth:`start` and :meth:`stop` as often as the test likes, on
    the same data and port."""

    def __init__(self, bin_dir: Path, root: Path, as_user: str | None) -> None:
        self._bin = bin_dir
        self.root = root
        self.port = free_port()
        self._as_user = as_user
        self.data = root / "data"
        self.log = root / "postgres.log"

    @classmethod
    def create(cls) -> PrivatePostgres:
        bin_dir = _postgres_bin()
        if bin_dir is None:
            _missing("PostgreSQL's initdb and pg_ctl are not installed")
        as_user = None
        if os.geteuid() == 0:
            # PostgreSQL will not run as root; its own account may.
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                _missing("running as root, and there is no postgres user to run PostgreSQL")
            if shutil.which("runuser") is None:
                _missing("running as root, and runuser is missing to run PostgreSQL")
            as_user = account.pw_name
        # A short path: the server's socket name must fit in 107 bytes.
        root = Path(tempfile.mkdtemp(prefix="fnggw-pg-"))
        if as_user is not None:
            account = pwd.getpwnam(as_user)
            os.chown(root, account.pw_uid, account.pw_gid)
        server = cls(bin_dir, root, as_user)
        try:
            server._run("initdb", "-D", str(server.data), "-A", "trust", "-U", "postgres", "-N")
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return server

    def _run(self, program: str, *args: str) -> None:
        command = [str(self._bin / program), *args]
        if self._as_user is not None:
            command = ["runuser", "-u", self._as_user, "--", *command]
        result = subprocess.run(command, capture_output=True, timeout=60, check=False)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise AssertionError(
                f"{program} failed: {result.stdout.decode(errors='replace')}"
                f"{result.stderr.decode(errors='replace')}\n{log[-3000:]}"
            )

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "start",
            "-D",
            str(self.data),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.log),
            "-o",
            options,
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends the sessions and shuts down cleanly; ``immediate`` drops everything
        at once, as a crash would, and the next start recovers from the WAL."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", "60")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        if self.running():
            with contextlib.suppress(AssertionError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """``redis-server`` as a child process without persistence: a restart loses every key,
    as a cache's restart does."""

    def __init__(self, binary: str, root: Path) -> None:
        self._binary = binary
        self._root = root
        self.port = free_port()
        self.log = root / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls, root: Path) -> PrivateRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            _missing("redis-server is not installed")
        return cls(binary, root)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    self._binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--dir",
                    str(self._root),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text(errors="replace")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None
