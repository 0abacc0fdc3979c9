"""A slow-drip body: headers promising a large body, then a byte now and then, or nothing.

The client is a raw socket (asyncio streams), so nothing between it and the gateway buffers or
times out on its behalf. The gateway must give up after its body timeout (one second here)
with a BODY_TIMEOUT fault in the caller's SOAP version, and nothing may reach FNG.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Final

import pytest

from tests.conftest import Gateway, GatewayWith, Sandbox
from tests.hostile.corpus import (
    SERVICES,
    VERSIONS,
    Answer,
    Target,
    assert_fault,
    content_type,
    seen_by_fng,
)

TIMEOUT: Final = 1.0
#: How late the answer may come after the timeout on a busy machine.
SLACK: Final = 3.0
FRAMINGS: Final = ("content-length", "chunked", "silent")


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:] if line)
    }
    body = await reader.readexactly(int(headers["content-length"]))
    return Answer(status, headers.get("content-type", ""), body)


async def drip(target: Target, framing: str) -> tuple[Answer, float]:
    """Send the headers and the first bytes of a valid request, then one byte every 100 ms
    (or nothing at all); return the answer and how long after the headers it came."""
    server = target.gateway.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    data = target.envelope().encode()
    length = "Transfer-Encoding: chunked" if framing == "chunked" else "Content-Length: 1000000"
    writer.write(
        f"POST /soap/{target.service} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
        f"Content-Type: {content_type(target.version)}\r\n{length}\r\n\r\n".encode()
    )
    started = time.monotonic()

    async def dribble() -> None:
        if framing == "silent":
            return
        for byte in data:
            piece = bytes([byte])
            writer.write(b"1\r\n" + piece + b"\r\n" if framing == "chunked" else piece)
            await writer.drain()
            await asyncio.sleep(0.1)

    sender = asyncio.create_task(dribble())
    try:
        answer = await asyncio.wait_for(read_answer(reader), TIMEOUT + SLACK + 5)
        return answer, time.monotonic() - started
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.fixture
async def impatient(gateway_with: GatewayWith) -> Gateway:
    return await gateway_with(xml={"body_timeout_seconds": TIMEOUT})


@pytest.mark.parametrize("version", VERSIONS)
async def test_slow_drip_body_times_out(impatient: Gateway, sandbox: Sandbox, version: str) -> None:
    """Every service and framing at once, each on its own connection."""
    before = await seen_by_fng(sandbox)
    targets = [Target(service, version, impatient, sandbox.demo) for service in SERVICES]
    runs = [(target, framing) for target in targets for framing in FRAMINGS]
    results = await asyncio.gather(*(drip(target, framing) for target, framing in runs))
    for (target, framing), (answer, took) in zip(runs, results, strict=True):
        assert TIMEOUT <= took < TIMEOUT + SLACK, (target.service, framing, took)
        assert_fault(answer, version, "BODY_TIMEOUT")
    after = await seen_by_fng(sandbox)
    assert (after.stats, after.journals, after.budgets) == (
        before.stats,
        before.journals,
        before.budgets,
    )
