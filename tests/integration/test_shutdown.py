"""SIGTERM while calls are in flight: readiness goes 503 first, no call in flight fails, and the
process exits within its grace period, as Kubernetes expects of a pod being stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from cryptography.fernet import Fernet

from gateway.cli.quickstart import register_demo
from gateway.store import create_store
from gateway.store.migrate import upgrade
from gateway.tenancy.secrets import SecretBox
from gateway.tenancy.service import TenancyAdmin
from tests.conftest import Sandbox
from tests.support import Auth, operation, post_journals_body, sample_journal, soap_call

COMMAND = str(Path(sys.executable).with_name("fng-gateway"))
DRAIN, GRACE = 1.5, 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_sigterm_drains_then_finishes_calls_in_flight(
    tmp_path: Path, sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    key = Fernet.generate_key()
    await upgrade(url)
    store = create_store(url)
    demo = await register_demo(TenancyAdmin(store, SecretBox([key])), sandbox.demo, sandbox.url)
    await store.close()
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("FNG_GATEWAY_")}
    env.update(
        {
            "FNG_GATEWAY_DATABASE_URL": url,
            "FNG_GATEWAY_MASTER_KEYS": key.decode(),
            "FNG_GATEWAY_PORT": str(port),
            "FNG_GATEWAY_FNG__BASE_URL": f"{sandbox.url}/fng",
            "FNG_GATEWAY_EPROC__ENABLED": "false",
            "FNG_GATEWAY_SHUTDOWN__DRAIN_SECONDS": str(DRAIN),
            "FNG_GATEWAY_SHUTDOWN__GRACE_SECONDS": str(GRACE),
        }
    )
    process = subprocess.Popen(
        [COMMAND, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                async with http.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        # Every FNG call now takes a second, so calls are in flight when SIGTERM comes.
        await sandbox.faults({"target": "fng", "kind": "latency", "latency_ms": 1000})
        auth = Auth(demo.username, demo.password, demo.database_key)
        draining = asyncio.Event()
        outcomes: list[str] = []
        timeline: list[tuple[float, int]] = []

        async def client(number: int) -> None:
            """A caller behind a load balancer: sends until readiness says otherwise."""
            sent = 0
            while not draining.is_set():
                sent += 1
                body = (
                    post_journals_body(sample_journal(f"S{number}-{sent}"))
                    if number == 0
                    else operation("GetBanks", systemIdentifier="TPPCS")
                )
                try:
                    answer = await soap_call(http, f"{base}/soap/ejournal", body, auth)
                    outcomes.append("fault" if answer.is_fault else "ok")
                except aiohttp.ClientError as exc:
                    outcomes.append(f"error: {exc!r}")

        async def watch_readiness() -> None:
            while True:
                try:
                    async with http.get(f"{base}/readyz") as response:
                        timeline.append((time.monotonic(), response.status))
                        if response.status == 503:
                            draining.set()
                except aiohttp.ClientError:
                    timeline.append((time.monotonic(), 0))
                    draining.set()
                    return
                await asyncio.sleep(0.05)

        clients = [asyncio.create_task(client(n)) for n in range(4)]
        watcher = asyncio.create_task(watch_readiness())
        await asyncio.sleep(2.5)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        await asyncio.gather(*clients)
        exit_code = await asyncio.to_thread(process.wait, DRAIN + GRACE + 5)
        exited = time.monotonic()
        await watcher
    finally:
        if process.poll() is None:
            process.kill()
    after = [status for at, status in timeline if at >= signalled]
    assert after and after[0] == 503, timeline  # readiness went 503 first ...
    first_refusal = next((at for at, status in timeline if at >= signalled and status == 0), None)
    assert first_refusal is None or first_refusal - signalled >= DRAIN  # ... before the door shut
    assert outcomes and set(outcomes) == {"ok"}, outcomes  # nothing in flight failed
    assert exit_code == 0
    assert exited - signalled < DRAIN + GRACE
