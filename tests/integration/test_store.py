"""The store on PostgreSQL: connections the server has closed are not handed out."""

from __future__ import annotations

import asyncio

import asyncpg
import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.store import create_store
from gateway.store.migrate import upgrade

POOLED = 4


async def test_connections_closed_by_the_server_are_replaced(postgres_url: str) -> None:
    """PostgreSQL ends every session (as a restart or a failover does); the next reads and
    transactions get fresh connections instead of failing on the dead ones."""
    await upgrade(postgres_url)
    store = create_store(postgres_url)
    try:

        async def backend() -> int:
            async with store.read() as conn:
                await asyncio.sleep(0.05)  # held together, so the pool keeps several
                return int(await conn.scalar(sa.text("SELECT pg_backend_pid()")))

        before = set(await asyncio.gather(*(backend() for _ in range(POOLED))))
        assert len(before) == POOLED

        admin = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
        try:
            ended = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert ended == POOLED
        await asyncio.sleep(0.2)  # the sessions' ends reach this process

        after = {await backend() for _ in range(POOLED)}  # one by one: each finds a dead one
        assert not after & before

        def write(conn: Connection) -> int:
            return int(conn.scalar(sa.text("SELECT txid_current()")))

        assert all(await asyncio.gather(*(store.transact(write) for _ in range(POOLED))))
    finally:
        await store.close()
