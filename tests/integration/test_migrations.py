"""Migrations build exactly the tables the code declares, and replicas may run them together."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
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
