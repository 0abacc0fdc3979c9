"""The gateway killed (SIGKILL) in the middle of the eProcurement pipeline, and started again:
every document ends up in FNG exactly once and acknowledged, nothing invalid is acknowledged.

The gateway runs as a real process (``fng-gateway serve``) against the sandbox in this test's
process; a sandbox fault holds it at the step where it is killed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from gateway.quickstart import register_demo
from gateway.store import create_store
from gateway.store.migrate import upgrade
from gateway.tenancy.secrets import SecretBox
from gateway.tenancy.service import RegistryService
from tests.conftest import Sandbox

COMMAND = str(Path(sys.executable).with_name("fng-gateway"))


def count(database: Path, query: str) -> int:
    with sqlite3.connect(database) as conn:
        return int(conn.execute(query).fetchone()[0])


async def wait_until(condition: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting until {what}")


class Gateway:
    """``fng-gateway serve`` as a child process."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [COMMAND, "serve"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        finally:
            if self.process.stderr is not None:
                self.process.stderr.close()


STEPS: dict[str, dict[str, Any]] = {
    # FetchDoc done and recorded; FNG never answers the delivery.
    "after FetchDoc": {
        "target": "fng",
        "path": "EProcurement/Documents",
        "kind": "latency",
        "latency_ms": 120_000,
        "count": 1,
    },
    # FNG holds the document; the portal never answers the acknowledgement.
    "after the FNG post": {
        "target": "portal",
        "action": "UpdateDocumentStatus",
        "kind": "latency",
        "latency_ms": 120_000,
        "count": 1,
    },
    # The portal marked it processed, but its answer was lost before the gateway recorded it.
    "before the acknowledgement is recorded": {
        "target": "portal",
        "action": "UpdateDocumentStatus",
        "kind": "drop_after",
        "count": 1,
    },
}


@pytest.mark.parametrize("step", list(STEPS))
async def test_killed_at_each_step_and_restarted(
    step: str, tmp_path: Path, sandbox: Sandbox
) -> None:
    database = tmp_path / "gateway.db"
    url = f"sqlite+aiosqlite:///{database}"
    key = Fernet.generate_key()
    await upgrade(url)
    store = create_store(url)
    await register_demo(RegistryService(store, SecretBox([key])), sandbox.demo, sandbox.url)
    await store.close()
    env = {name: value for name, value in os.environ.items() if not name.startswith("FNG_GATEWAY_")}
    env.update(
        {
            "FNG_GATEWAY_DATABASE_URL": url,
            "FNG_GATEWAY_MASTER_KEYS": key.decode(),
            "FNG_GATEWAY_PORT": "0",
            "FNG_GATEWAY_LOG_LEVEL": "WARNING",
            "FNG_GATEWAY_FNG__BASE_URL": f"{sandbox.url}/fng",
            "FNG_GATEWAY_EPROC__TICK_SECONDS": "0.2",
            "FNG_GATEWAY_EPROC__POLL_TIMEOUT_SECONDS": "4",
            "FNG_GATEWAY_EPROC__CALL_TIMEOUT_SECONDS": "60",
        }
    )
    valid = sorted(
        uuid for uuid, _t, outcome in sandbox.demo.portal_documents if outcome == "valid"
    )
    await sandbox.faults(STEPS[step])

    async def reached() -> bool:
        if step == "after FetchDoc":
            return count(database, "select count(*) from eproc_documents") > 0
        if step == "after the FNG post":
            return bool((await sandbox.stats())["documents_received"])
        portal = await sandbox.state.portal(sandbox.demo.portal_name)
        acknowledged = any(d["processed"] for d in portal["documents"])
        return (
            acknowledged
            and count(database, "select count(*) from eproc_documents where state = 'delivered'")
            > 0
        )

    gateway = Gateway(env)
    gateway.start()
    try:
        await wait_until(reached, 60, step)
    finally:
        gateway.kill()
    await sandbox.clear_faults()
    if step == "before the acknowledgement is recorded":
        # The failed poll put the portal in back-off; time would pass, this test cannot wait.
        with sqlite3.connect(database) as conn:
            conn.execute(
                "update portals set next_poll_at = ?",
                (datetime.now(UTC).replace(tzinfo=None).isoformat(" "),),
            )

    async def finished() -> bool:
        documents = [d["document_id"] for d in await sandbox.state.documents()]
        portal = await sandbox.state.portal(sandbox.demo.portal_name)
        processed = sorted(d["uuid"] for d in portal["documents"] if d["processed"])
        return sorted(documents) == valid and processed == valid

    restarted = Gateway(env)
    restarted.start()
    try:
        await wait_until(finished, 90, "every valid document is in FNG and acknowledged")
    finally:
        assert restarted.stop() == 0
    documents = [d["document_id"] for d in await sandbox.state.documents()]
    assert sorted(documents) == valid  # once each
    assert (await sandbox.stats())["documents_received"] == len(valid)
    assert count(
        database, "select count(*) from eproc_documents where state = 'acknowledged'"
    ) == len(valid)
