"""The one store under every part of the sandbox's state: SQLite through SQLAlchemy Core
(aiosqlite).

Writes are serialized twice: by a lock within the process and by ``BEGIN IMMEDIATE`` in
the database, so two journals can never be checked against the same ledger and both be
posted, nor two budgets with one serial number both be imported, even by two sandbox
processes sharing a file. An in-memory database is one connection shared by the whole
process, so there every read takes the lock too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from gateway.sandbox import tables as t


def create_engine(url: str) -> tuple[AsyncEngine, bool]:
    """An engine on a SQLite URL, and whether the database lives in memory.

    Transactions begun on ``execution_options(sandbox_write=True)`` are ``BEGIN IMMEDIATE``.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise ValueError("the sandbox keeps its state in SQLite (sqlite+aiosqlite://…)")
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or parsed.query.get("mode") == "memory"
    if in_memory:
        engine = create_async_engine(parsed, poolclass=StaticPool)
    else:
        engine = create_async_engine(parsed, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver, so BEGIN is ours to issue.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("sandbox_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine, in_memory


class SandboxStore:
    """Transactions on the sandbox's database, and its small settings. Open with
    :meth:`open`, then :meth:`close`."""

    def __init__(self, engine: AsyncEngine, *, in_memory: bool) -> None:
        self._engine = engine
        self._writer = engine.execution_options(sandbox_write=True)
        self._in_memory = in_memory
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, url: str) -> SandboxStore:
        """Open (and create, if new) the database at an ``sqlite+aiosqlite`` URL."""
        engine, in_memory = create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(t.metadata.create_all)
        return cls(engine, in_memory=in_memory)

    async def close(self) -> None:
        await self._engine.dispose()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection to read with, from one snapshot."""
        if self._in_memory:
            async with self._lock, self._engine.connect() as conn:
                yield conn
        else:
            async with self._engine.connect() as conn:
                yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, the only one at a time; committed when the block ends."""
        async with self._lock, self._writer.begin() as conn:
            yield conn

    async def get_setting(self, name: str) -> str | None:
        async with self.read() as conn:
            value = await conn.scalar(
                sa.select(t.settings.c.value).where(t.settings.c.name == name)
            )
        return value

    async def put_setting(self, name: str, value: str) -> None:
        async with self.write() as conn:
            await conn.execute(sa.delete(t.settings).where(t.settings.c.name == name))
            await conn.execute(sa.insert(t.settings).values(name=name, value=value))
