"""Fixtures of the fault-injection suite: gateway deployments whose processes the tests
start, kill and restart, against a sandbox served from the test's process on loopback.

``deployment`` is one test's own. A :class:`Rig` is kept for a whole module (one per test
worker): its gateway process lives through every fault the module's tests inject in turn,
which is what recovering by itself means, and spares a process start per test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

from gateway.sandbox import SandboxState, create_sandbox_app, seed_demo
from tests.conftest import Sandbox
from tests.faults.clients import Submissions
from tests.faults.processes import Deployment, GatewayProcess


@pytest.fixture
async def deployment(tmp_path: Path, sandbox: Sandbox) -> AsyncIterator[Deployment]:
    deployed = await Deployment.create(sandbox, tmp_path)
    try:
        yield deployed
    finally:
        deployed.close()


@dataclass
class Rig:
    sandbox: Sandbox
    deployment: Deployment
    gateway: GatewayProcess
    http: aiohttp.ClientSession
    sent: Submissions


@pytest_asyncio.fixture(loop_scope="module")
async def faults_cleared(rig: Rig) -> AsyncIterator[None]:
    """For a module with a ``rig``: a test that fails midway leaves no fault behind for the
    next one."""
    yield
    await rig.sandbox.clear_faults()


@asynccontextmanager
async def open_rig(directory: Path, **settings: object) -> AsyncIterator[Rig]:
    """A sandbox with its demo school and a gateway process with these settings (as for
    :meth:`Deployment.start`), started; both stopped at the end."""
    state = await SandboxState.open(f"sqlite+aiosqlite:///{directory / 'sandbox.db'}")
    server = TestServer(create_sandbox_app(state))
    try:
        demo = await seed_demo(state)
        await server.start_server()
        sandbox = Sandbox(state, demo, str(server.make_url("")).rstrip("/"), server)
        deployment = await Deployment.create(sandbox, directory)
        try:
            gateway = await deployment.start(**settings)
            async with aiohttp.ClientSession() as http:
                yield Rig(sandbox, deployment, gateway, http, Submissions(demo))
        finally:
            deployment.close()
    finally:
        await server.close()
        await state.close()
