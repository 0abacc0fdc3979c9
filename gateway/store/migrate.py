"""Apply the gateway's migrations (``fng-gateway migrate``, or at start-up).

Safe to run from several processes at once: on PostgreSQL an advisory lock (in env.py) lets
one replica migrate while the others wait and then find nothing left to do; on SQLite a lock
file beside the database does the same; within one process a lock does.

A store may be newer than this code (another replica, of a newer gateway, migrated it during
a rolling upgrade): migrations stay backward compatible while older replicas still serve, so
such a store is used as it is, never "upgraded" by code that does not know its revision. A
store whose revision says it is current but whose tables are not all there is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script.revision import ResolutionError
from alembic.util import CommandError
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError

from gateway.errors import StoreUnavailable
from gateway.store.engine import Store, create_store, unreachable_as_store_unavailable, where
from gateway.store.tables import metadata

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: The newest revision (a test keeps it equal to the migrations' head).
HEAD: Final = "0006"
#: Alembic keeps its context in module globals: one migration at a time per process.
_ONE_AT_A_TIME = threading.Lock()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    # The URL's connect timeout is the store's (create_store passes it to asyncpg as a
    # number); env.py's engine would hand asyncpg the URL's text. The migration connects
    # only after the store answered (see upgrade), so asyncpg's own default bounds it.
    parsed = make_url(url)
    if "timeout" in parsed.query and parsed.get_backend_name() == "postgresql":
        url = parsed.difference_update_query(["timeout"]).render_as_string(hide_password=False)
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


def _newer(version: str) -> bool:
    """Whether a revision is newer than this code's (the rule :func:`require_current` and
    :func:`ensure_current` share): revisions are numbered, so a newer one sorts after."""
    return version > HEAD


def _newer_store(url: str, version: str) -> StoreUnavailable:
    return StoreUnavailable(
        f"{where(url)} was migrated by a newer gateway (revision {version}; this one knows "
        f"revisions up to {HEAD}): run that version's `fng-gateway migrate`, or upgrade this one"
    )


def upgrade_sync(url: str) -> None:
    try:
        with (
            unreachable_as_store_unavailable(url),
            _ONE_AT_A_TIME,
            _sqlite_file_lock(url),
        ):
            command.upgrade(alembic_config(url), "head")
    except CommandError as exc:
        cause = exc.__cause__
        if not isinstance(cause, ResolutionError) or not cause.argument:
            raise
        version = str(cause.argument)
        if _newer(version):
            raise _newer_store(url, version) from None
        raise StoreUnavailable(
            f"{where(url)} is at revision {version}, which no migration of this gateway "
            f"makes (it knows revisions up to {HEAD}): point FNG_GATEWAY_DATABASE_URL at the "
            "gateway's store, or run the gateway that migrated this one"
        ) from None


async def upgrade(url: str, store: Store | None = None) -> None:
    """Migrate to the newest revision (through ``store``, or one opened for the purpose, the
    store is first asked its revision: it answers within the connect timeout, and a store a
    newer gateway migrated is refused saying so); then check its tables are all there."""
    own = store is None
    used = create_store(url) if store is None else store
    try:
        version = await _version(used)
        if version is not None and _newer(version):
            raise _newer_store(url, version)
        await asyncio.to_thread(upgrade_sync, url)
        await _check_tables(used, HEAD)
    finally:
        if own:
            await used.close()


async def _version(store: Store) -> str | None:
    """The store's revision; None when it was never migrated. Raises StoreUnavailable when
    it cannot be reached."""
    try:
        async with store.read() as conn:
            version = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
    except DBAPIError:
        return None  # no alembic_version table: never migrated
    return None if version is None else str(version)


def _missing(conn: Connection) -> list[str]:
    """The tables and columns of this code's schema that the database lacks."""
    inspector = sa.inspect(conn)
    present = set(inspector.get_table_names())
    missing = [f"the table {name}" for name in metadata.tables if name not in present]
    if missing:
        return missing
    columns = inspector.get_multi_columns(filter_names=list(metadata.tables))
    found = {table: {column["name"] for column in listed} for (_, table), listed in columns.items()}
    return [
        f"the column {name}.{column.name}"
        for name, table in metadata.tables.items()
        for column in table.columns
        if column.name not in found.get(name, set())
    ]


async def _check_tables(store: Store, version: str) -> None:
    """Refuse a store that says it is at ``version`` but lacks some of the tables or columns
    this code uses (one dropped by hand, a restore gone wrong)."""
    async with store.read() as conn:
        missing = await conn.run_sync(_missing)
    if missing:
        listed = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise StoreUnavailable(
            f"{where(store.engine.url)} is at revision {version} but lacks {listed}, so its "
            "schema is damaged: restore the store from a backup, or point "
            "FNG_GATEWAY_DATABASE_URL at the gateway's store"
        )


async def ensure_current(store: Store, url: str) -> None:
    """Migrate unless the store is already at :data:`HEAD` (a cheap query, not Alembic) or
    newer (a newer gateway migrated it: this code uses it as it is)."""
    version = await _version(store)
    if version is not None and _newer(version):
        log.info(
            "the store is at revision %s, newer than this gateway's %s: a newer gateway "
            "migrated it, and this one uses it as it is",
            version,
            HEAD,
        )
        await _check_tables(store, version)
    elif version != HEAD:
        await upgrade(url, store)
    else:
        await _check_tables(store, version)


async def require_current(store: Store) -> None:
    """Refuse a store this code's migrations have not reached (``auto_migrate`` off). A newer
    one is fine: migrations stay backward compatible while older replicas still serve."""
    version = await _version(store)
    if version is None or not (version == HEAD or _newer(version)):
        state = "was never migrated" if version is None else f"is at revision {version}"
        raise StoreUnavailable(
            f"{where(store.engine.url)} {state}, and this gateway needs revision {HEAD}: run "
            "`fng-gateway migrate` (FNG_GATEWAY_AUTO_MIGRATE is false)"
        )
    await _check_tables(store, version)


async def make_ready(store: Store, url: str, *, auto_migrate: bool) -> None:
    """What a process does with its store before using it: bring it up to date, or, with
    ``auto_migrate`` off, refuse one that is behind; either way refuse one whose tables are
    not all there."""
    if auto_migrate:
        await ensure_current(store, url)
    else:
        await require_current(store)
