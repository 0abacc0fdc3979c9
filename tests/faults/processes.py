"""The gateway as a real child process (``fng-gateway serve``), set up as an operator would.

A :class:`Deployment` is one gateway store (SQLite, migrated, with the sandbox's demo school
registered) and the settings every process of it runs with; :meth:`Deployment.start` runs
``fng-gateway serve`` on it and waits until it listens. Each process logs to its own file,
which a failed wait shows.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet

from gateway.cli.quickstart import Registered, register_demo
from gateway.store import create_store
from gateway.store.migrate import upgrade
from gateway.tenancy.secrets import SecretBox
from gateway.tenancy.service import TenancyAdmin
from tests.conftest import Sandbox
from tests.support import Auth

COMMAND = str(Path(sys.executable).with_name("fng-gateway"))
_LISTENING = re.compile(r"fng-gateway listening on (http://\S+)")


def count(database: Path, query: str) -> int:
    """The one number a query of the gateway's SQLite store answers."""
    with sqlite3.connect(database) as conn:
        return int(conn.execute(query).fetchone()[0])


def store_now() -> str:
    """Now, as the gateway's SQLite store writes times."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat(" ")


async def wait_until(condition: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting until {what}")


class GatewayProcess:
    """``fng-gateway serve`` as a child process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                [COMMAND, "serve"], env=self.env, stdout=sink, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def listening(self, seconds: float = 60) -> str:
        """Wait until the process listens; its URL."""
        assert self.process is not None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = _LISTENING.search(self.output())
            if found:
                self.url = found.group(1)
                return self.url
            assert self.process.poll() is None, f"the gateway exited:\n{self.output()}"
            await asyncio.sleep(0.05)
        raise AssertionError(f"the gateway did not start listening:\n{self.output()}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no drain, no clean-up, as when a node dies."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        """SIGTERM, the orderly shutdown; the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)


@dataclass
class Deployment:
    """A gateway store with the demo school registered, and the processes run on it."""

    sandbox: Sandbox
    directory: Path
    demo: Registered
    env: dict[str, str]
    processes: list[GatewayProcess] = field(default_factory=list)

    @property
    def database(self) -> Path:
        return self.directory / "gateway.db"

    @property
    def auth(self) -> Auth:
        return Auth(self.demo.username, self.demo.password, self.demo.database_key)

    @classmethod
    async def create(cls, sandbox: Sandbox, directory: Path) -> Deployment:
        url = f"sqlite+aiosqlite:///{directory / 'gateway.db'}"
        key = Fernet.generate_key()
        await upgrade(url)
        store = create_store(url)
        try:
            demo = await register_demo(
                TenancyAdmin(store, SecretBox([key])), sandbox.demo, sandbox.url
            )
        finally:
            await store.close()
        env = {
            name: value for name, value in os.environ.items() if not name.startswith("FNG_GATEWAY_")
        }
        env.update(
            {
                "FNG_GATEWAY_DATABASE_URL": url,
                "FNG_GATEWAY_MASTER_KEYS": key.decode(),
                "FNG_GATEWAY_PORT": "0",
                "FNG_GATEWAY_LOG_LEVEL": "WARNING",
                "FNG_GATEWAY_LOG_FORMAT": "text",
                # Every journal sent as text is streamed, however small.
                "FNG_GATEWAY_XML__STREAM_ABOVE_BYTES": "0",
                "FNG_GATEWAY_FNG__BASE_URL": f"{sandbox.url}/fng",
                # Stopping is not what these tests are about: no wait for load balancers.
                "FNG_GATEWAY_SHUTDOWN__DRAIN_SECONDS": "0",
            }
        )
        return cls(sandbox, directory, demo, env)

    def process(self, **settings: object) -> GatewayProcess:
        """A process (not started) with these settings on top of the deployment's:
        ``fng__timeout_seconds=2`` is ``FNG_GATEWAY_FNG__TIMEOUT_SECONDS=2``."""
        env = dict(self.env)
        env.update({f"FNG_GATEWAY_{name.upper()}": str(value) for name, value in settings.items()})
        process = GatewayProcess(env, self.directory / f"gateway-{len(self.processes) + 1}.log")
        self.processes.append(process)
        return process

    async def start(self, **settings: object) -> GatewayProcess:
        process = self.process(**settings)
        process.start()
        await process.listening()
        return process

    def make_portals_due(self) -> None:
        """Every portal due for a poll, and every document waiting for another attempt due
        now: what time would do, without the test waiting for it."""
        with sqlite3.connect(self.database) as conn:
            conn.execute(
                "update portals set next_poll_at = ?, next_orders_at = ?",
                (store_now(), store_now()),
            )
            conn.execute("update eproc_documents set next_attempt_at = ?", (store_now(),))

    def close(self) -> None:
        for process in self.processes:
            if process.running:
                process.kill()
