"""Apply the gateway's migrations (``fng-gateway migrate``, or at start-up).

Safe to run from several processes at once: on PostgreSQL an advisory lock (in env.py) lets
one replica migrate while the others wait and then find nothing left to do; on SQLite a lock
file beside the database does the same; within one process a lock does.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from gateway.errors import StoreUnavailable
from gateway.store.engine import Store, unreachable_as_store_unavailable, where

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: The newest revision (a test keeps it equal to the migrations' head).
HEAD: Final = "0006"
#: Alembic keeps its context in module globals: one migration at a time per process.
_ONE_AT_A_TIME = threading.Lock()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    # Alembic reads options through configparser: escape its interpolation character.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@contextlib.contextmanager
def _sqlite_file_lock(url: str) -> Iterator[None]:
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock = Path(f"{database}.migrate-lock")
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade_sync(url: str) -> None:
    with (
        unreachable_as_store_unavailable(url),
        _ONE_AT_A_TIME,
        _sqlite_file_lock(url),
    ):
        command.upgrade(alembic_config(url), "head")


async def upgrade(url: str) -> None:
    """Migrate to the newest revision."""
    await asyncio.to_thread(upgrade_sync, url)


async def _version(store: Store) -> str | None:
    """The store's revision; None when it was never migrated. Raises StoreUnavailable when
    it cannot be reached."""
    try:
        async with store.read() as conn:
            version = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
    except DBAPIError:
        return None  # no alembic_version table: never migrated
    return None if version is None else str(version)


async def ensure_current(store: Store, url: str) -> None:
    """Migrate unless the store is already at :data:`HEAD` (a cheap query, not Alembic)."""
    try:
        version = await _version(store)
    except StoreUnavailable:
        version = None  # Alembic connects again, and says why it cannot
    if version != HEAD:
        await upgrade(url)


async def require_current(store: Store) -> None:
    """Refuse a store this code's migrations have not reached (``auto_migrate`` off). A newer
    one is fine: migrations stay backward compatible while older replicas still serve."""
    version = await _version(store)
    if version is None or version < HEAD:
        state = "was never migrated" if version is None else f"is at revision {version}"
        raise StoreUnavailable(
            f"{where(store.engine.url)} {state}, and this gateway needs revision {HEAD}: run "
            "`fng-gateway migrate` (FNG_GATEWAY_AUTO_MIGRATE is false)"
        )


async def make_ready(store: Store, url: str, *, auto_migrate: bool) -> None:
    """What a process does with its store before using it: bring it up to date, or, with
    ``auto_migrate`` off, refuse one that is behind."""
    if auto_migrate:
        await ensure_current(store, url)
    else:
        await require_current(store)
