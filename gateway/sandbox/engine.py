"""The sandbox's SQLite plumbing: the engine, its transactions, and the signing key."""

from __future__ import annotations

import json
from typing import Any, Final

import sqlalchemy as sa
from joserfc.jwk import RSAKey
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from gateway.sandbox import tables as t
from gateway.sandbox.simsid import tokens

_SIGNING_KEY: Final = "signing_key"


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


async def load_or_create_signing_key(writer: AsyncEngine, offered: RSAKey | None) -> RSAKey:
    """The state's signing key: the one it keeps, else ``offered``, else a new one."""
    async with writer.begin() as conn:
        text = await conn.scalar(
            sa.select(t.settings.c.value).where(t.settings.c.name == _SIGNING_KEY)
        )
        if text is not None:
            return RSAKey.import_key(json.loads(text))
        if offered is not None and not offered.is_private:
            raise ValueError("the signing key must be a private RSA key")
        key = offered or tokens.generate_signing_key()
        await conn.execute(
            sa.insert(t.settings).values(
                name=_SIGNING_KEY, value=json.dumps(key.as_dict(private=True))
            )
        )
    return key
