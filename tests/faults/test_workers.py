"""``fng-gateway serve --workers N``: N processes on one port, sharing the store, that drain
together on SIGTERM; a worker that dies takes the others down so that the whole is restarted.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp

from tests.conftest import Sandbox
from tests.faults.clients import Client, Submissions, assert_in_fng_once
from tests.faults.processes import Deployment, GatewayProcess, wait_until

POST = "JournalInterface/PostJournals"


def workers_of(gateway: GatewayProcess) -> list[int]:
    assert gateway.process is not None
    children = Path(f"/proc/{gateway.process.pid}/task/{gateway.process.pid}/children")
    return [int(pid) for pid in children.read_text().split()]


def cpu_ticks(pid: int) -> int:
    """User and system CPU time of a process so far, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def started(deployment: Deployment, **settings: object) -> tuple[GatewayProcess, list[int]]:
    gateway = await deployment.start(workers=2, eproc__enabled="false", **settings)

    async def two() -> bool:
        return len(workers_of(gateway)) == 2

    await wait_until(two, 30, "two workers run")
    return gateway, workers_of(gateway)


async def test_workers_share_the_port_and_drain_together_on_sigterm(
    deployment: Deployment, sandbox: Sandbox
) -> None:
    gateway, workers = await started(deployment, shutdown__drain_seconds=1)
    sent = Submissions(sandbox.demo)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        client = Client(http, gateway.url, deployment.auth, bound=60)
        before = {pid: cpu_ticks(pid) for pid in workers}
        await sent.post_journals(client, "BK1", 1)
        await asyncio.gather(*(client.get_banks() for _ in range(300)))
        used = {pid: cpu_ticks(pid) - before[pid] for pid in workers}
        assert all(used[pid] > 5 for pid in workers), used  # both took calls

        await sandbox.faults({"target": "fng", "path": POST, "kind": "latency",
                              "latency_ms": 1500, "count": 1})  # fmt: skip
        call = asyncio.create_task(sent.post_journals(client, "BK1", 1))

        async def held() -> bool:
            async with http.get(f"{sandbox.url}/_sandbox/faults") as response:
                return not (await response.json())["rules"]

        await wait_until(held, 10, "FNG holds the post")
        assert await asyncio.to_thread(gateway.stop) == 0, gateway.output()
        await call
    assert {answer.outcome for answer in client.answers} == {"success"}
    assert [pid for pid in workers if alive(pid)] == []
    await assert_in_fng_once(sandbox, sent)


async def test_a_worker_that_dies_stops_the_others(deployment: Deployment) -> None:
    gateway, workers = await started(deployment)
    os.kill(workers[0], signal.SIGKILL)
    assert gateway.process is not None
    code = await asyncio.to_thread(gateway.process.wait, 60)
    assert code == 5, gateway.output()
    assert not alive(workers[1])
    last = gateway.output().strip().splitlines()[-1]
    assert f"a worker (pid {workers[0]}) exited with code -9" in last
