"""Migrations build exactly the tables the code declares, and replicas may run them together."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from gateway.store import create_store
from gateway.store.migrate import HEAD, alembic_config, upgrade
from gateway.store.tables import metadata


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


class TestMigrations:
    def test_head_constant_is_the_migrations_head(self) -> None:
        """The quick "is the store current?" check compares against the real head."""
        script = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://"))
        assert script.get_current_head() == HEAD

    async def test_head_matches_the_tables_in_code(self, database_url: str) -> None:
        await upgrade(database_url)
        store = create_store(database_url)
        try:
            async with store.engine.connect() as conn:
                assert await conn.run_sync(_differences) == []
        finally:
            await store.close()

    async def test_replicas_migrating_at_once(self, database_url: str) -> None:
        """Three replicas running ``fng-gateway migrate`` together all succeed."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FNG_GATEWAY_")}
        env["FNG_GATEWAY_DATABASE_URL"] = database_url
        command = str(Path(sys.executable).with_name("fng-gateway"))
        processes = [
            await asyncio.create_subprocess_exec(
                command,
                "migrate",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(3)
        ]
        results = [await process.communicate() for process in processes]
        assert [process.returncode for process in processes] == [0, 0, 0], results
        store = create_store(database_url)
        try:
            async with store.engine.connect() as conn:
                assert await conn.run_sync(_differences) == []
        finally:
            await store.close()


class TestPortalSettingsMigration:
    def test_portals_keep_their_supplier_and_address_and_orders_their_sends(
        self, tmp_path: Path
    ) -> None:
        """0006 moves each portal's supplier DUNS into its set of suppliers, lets a portal
        registered with a plain http address go on being polled, and counts one send for an
        order already sent."""
        path = tmp_path / "old.db"
        config = alembic_config(f"sqlite+aiosqlite:///{path}")
        command.upgrade(config, "0005")
        moment = "2026-11-30 10:00:00.000000"
        with sqlite3.connect(path) as conn:
            for portal_id, url in ((1, "http://127.0.0.1:8081/p"), (2, "https://p.example/ws")):
                conn.execute(
                    "INSERT INTO portals (id, database_id, name, url, username, password_enc, "
                    "supplier_duns, enabled, poll_seconds, password_changed_at, next_poll_at, "
                    "failures, created_at) VALUES (?, 1, ?, ?, 'u', 'x', ?, 1, 300, ?, ?, 0, ?)",
                    (
                        portal_id,
                        f"p{portal_id}",
                        url,
                        f"12345678{portal_id}",
                        moment,
                        moment,
                        moment,
                    ),
                )
            for order_id, state in (("o-1", "sent"), ("o-2", "quarantined")):
                conn.execute(
                    "INSERT INTO eproc_orders (database_id, order_id, portal_id, state, content, "
                    "created_at, updated_at) VALUES (1, ?, 1, ?, x'3c4f2f3e', ?, ?)",
                    (order_id, state, moment, moment),
                )
        command.upgrade(config, "head")
        with sqlite3.connect(path) as conn:
            suppliers = conn.execute("SELECT portal_id, duns FROM portal_suppliers ORDER BY 1")
            assert suppliers.fetchall() == [(1, "123456781"), (2, "123456782")]
            allowed = conn.execute("SELECT id, allow_http, require_handshake_codes FROM portals")
            assert sorted(allowed.fetchall()) == [(1, 1, 1), (2, 0, 1)]
            sends = conn.execute("SELECT order_id, sends FROM eproc_orders ORDER BY 1")
            assert sends.fetchall() == [("o-1", 1), ("o-2", 0)]
        command.downgrade(config, "0005")
        with sqlite3.connect(path) as conn:
            back = conn.execute("SELECT id, supplier_duns FROM portals ORDER BY 1").fetchall()
        assert back == [(1, "123456781"), (2, "123456782")]
