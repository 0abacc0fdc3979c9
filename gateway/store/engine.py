"""The store: one async engine over SQLite (embedded default) or PostgreSQL.

Hot paths (the ledger's claim and record of every post) run a whole transaction as one
synchronous function with :meth:`Store.transact`. On PostgreSQL that is the async engine's
``run_sync``; on SQLite it is a synchronous engine on a thread of its own, so a transaction
is one hand-over to that thread rather than several per statement through aiosqlite, which
made up most of the ledger's cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway.errors import StoreUnavailable

#: SQLSTATE classes that say the server cannot serve now, not that a statement is wrong:
#: 08 connection exception, 53 insufficient resources, 57 operator intervention (a shutdown
#: or restart under way, "the database system is starting up"), and what stops the gateway
#: using it at all: 28 the user refused, 3D the database does not exist.
_UNAVAILABLE_STATES = ("08", "53", "57", "28", "3D")


def _unavailable(exc: Exception) -> bool:
    """Whether a database error means the store cannot be reached, rather than a fault in
    what was asked of it. A connection lost in the middle of a statement (PostgreSQL
    restarted) comes as a plain DBAPIError, not an OperationalError."""
    if isinstance(exc, DBAPIError) and "file is not a database" in str(exc.orig):
        return True  # SQLite's word for a file that is something else
    if isinstance(exc, OperationalError) and "no such table" in str(exc.orig):
        return False  # SQLite's word for a store not migrated: a fault in what was asked
    if isinstance(exc, OperationalError | OSError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        state = getattr(exc.orig, "sqlstate", None)
        return isinstance(state, str) and state[:2] in _UNAVAILABLE_STATES
    return False


T = TypeVar("T")


def where(url: str | URL) -> str:
    """The store a URL names, for people: never its password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database in (None, "", ":memory:"):
            return "an in-memory SQLite database"
        return f"the SQLite file {Path(database).resolve()}"
    return (
        f"the PostgreSQL database {parsed.database or '(default)'} on "
        f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    )


def describe_failure(exc: BaseException, url: str | URL) -> str:
    """What a failure to use the store means and what to do, in one sentence (no secrets)."""
    parsed = make_url(url)
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    state = getattr(orig, "sqlstate", None)
    fix = "or set FNG_GATEWAY_DATABASE_URL to another"
    if parsed.get_backend_name() == "sqlite":
        message = str(orig).strip()
        if "file is not a database" in message:
            return (
                f"{where(parsed)} is not a SQLite database: give FNG_GATEWAY_DATABASE_URL the "
                "path of the gateway's store (a new path makes a new store)"
            )
        if isinstance(orig, OSError) or "unable to open database file" in message:
            return (
                f"cannot open {where(parsed)}: make sure its directory exists and this user may "
                f"write there, {fix}"
            )
        return f"{where(parsed)} cannot be used ({message}): {fix}"
    server = f"the PostgreSQL server at {parsed.host or 'localhost'}:{parsed.port or 5432}"
    if state == "3D000":
        return (
            f"the database {parsed.database!r} does not exist on {server}: create it "
            f"(createdb {parsed.database}), {fix}"
        )
    if isinstance(state, str) and state.startswith("28"):
        return (
            f"{server} refused the user {parsed.username!r} ({str(orig).strip()}): check the "
            "user and password in FNG_GATEWAY_DATABASE_URL"
        )
    if isinstance(orig, socket.gaierror):
        return f"the host {parsed.host!r} of FNG_GATEWAY_DATABASE_URL is not known: correct it"
    if isinstance(orig, TimeoutError):
        return f"{server} did not answer in time: check that it runs and is reachable, {fix}"
    if isinstance(orig, OSError):
        reason = (
            "connection refused"
            if isinstance(orig, ConnectionRefusedError)
            else orig.strerror or type(orig).__name__
        )
        return f"cannot connect to {server} ({reason}): start it, {fix}"
    detail = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return f"{where(parsed)} cannot be used ({detail}): check it, {fix}"


@contextlib.contextmanager
def unreachable_as_store_unavailable(url: str | URL) -> Iterator[None]:
    """A database error that means the store cannot be reached (or does not exist, or refuses
    the user) becomes :class:`StoreUnavailable` saying so; any other passes as it is."""
    try:
        yield
    except (DBAPIError, OSError) as exc:
        if not _unavailable(exc):
            raise
        raise StoreUnavailable(describe_failure(exc, url)) from exc


class Store:
    """Short transactions on one engine: :meth:`read`, :meth:`write` and :meth:`transact`.

    On SQLite, write transactions begin ``IMMEDIATE`` so two writers queue on the
    database lock (with a busy timeout) instead of failing on a lock upgrade.
    """

    def __init__(self, engine: AsyncEngine, sync_engine: Engine | None = None) -> None:
        self.engine = engine
        self._writer = engine.execution_options(gateway_write=True)
        # SQLite has one writer at a time. Queueing this process's writers here, rather than
        # in SQLite's busy handler (which sleeps and polls), hands the lock straight on.
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._sync_writer = (
            sync_engine.execution_options(gateway_write=True) if sync_engine else None
        )
        self._sync_engine = sync_engine
        # PostgreSQL commits a lone statement by itself: as a transaction of its own it needs
        # no BEGIN and COMMIT, two round trips of the three.
        self._autocommit = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else None
        )
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="store") if sync_engine else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        with unreachable_as_store_unavailable(self.engine.url):
            async with self.engine.connect() as conn:
                yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        async with contextlib.AsyncExitStack() as stack:
            if self._write_lock is not None:
                await stack.enter_async_context(self._write_lock)
            with unreachable_as_store_unavailable(self.engine.url):
                async with self._writer.begin() as conn:
                    yield conn

    async def transact(
        self, work: Callable[[Connection], T], *, single_statement: bool = False
    ) -> T:
        """Run ``work`` in one write transaction (committed when it returns, rolled back if
        it raises) and return what it returns. ``work`` is synchronous and must not touch
        the event loop: on SQLite it runs on the store's own thread.

        ``single_statement`` promises that ``work`` executes one statement, which is then
        its own transaction where the database allows it (PostgreSQL)."""
        if single_statement and self._autocommit is not None:
            with unreachable_as_store_unavailable(self.engine.url):
                async with self._autocommit.connect() as conn:
                    return await conn.run_sync(work)
        if self._sync_writer is None or self._thread is None:
            async with self.write() as conn:
                return await conn.run_sync(work)
        assert self._write_lock is not None
        writer = self._sync_writer

        def run() -> T:
            with writer.begin() as conn:
                return work(conn)

        async with self._write_lock:
            with unreachable_as_store_unavailable(self.engine.url):
                # Shielded: a cancelled caller still waits for the transaction to end, so
                # the write lock is never released while the thread is inside one.
                # In a copy of the caller's context, so its log lines keep their request id.
                context = contextvars.copy_context()
                future = asyncio.get_running_loop().run_in_executor(self._thread, context.run, run)
                try:
                    return await asyncio.shield(future)
                except asyncio.CancelledError:
                    with contextlib.suppress(Exception):
                        await future
                    raise

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except (DBAPIError, OSError):
            return False
        return True

    async def close(self) -> None:
        await self.engine.dispose()
        if self._thread is not None and self._sync_engine is not None:
            await asyncio.get_running_loop().run_in_executor(
                self._thread, self._sync_engine.dispose
            )
            self._thread.shutdown(wait=True)


def create_store(url: str, **engine_options: Any) -> Store:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(parsed, connect_args={"timeout": 30}, **engine_options)
        _configure_sqlite(engine.sync_engine)
        if parsed.database in (None, "", ":memory:"):
            return Store(engine)  # a private in-memory database: one engine only
        # The same file through the standard library's driver, for Store.transact; its
        # connections are made and used on the store's thread only.
        sync_engine = create_engine(
            parsed.set(drivername="sqlite"),
            connect_args={"timeout": 30, "check_same_thread": False},
            **engine_options,
        )
        _configure_sqlite(sync_engine)
        return Store(engine, sync_engine)
    else:
        # A fixed pool: callers beyond it queue for a connection rather than open and close
        # overflow connections under load.
        engine_options.setdefault("pool_size", 20)
        engine_options.setdefault("max_overflow", 0)
        engine_options.setdefault("pool_timeout", 30)
        engine = create_async_engine(parsed, **engine_options)
        _skip_closed_connections(engine.sync_engine)
    return Store(engine)


def _skip_closed_connections(engine: Engine) -> None:
    """A pooled connection the server has closed (PostgreSQL restarted or failed over) is
    replaced before it is handed out.

    asyncpg notices a closed socket as soon as the event loop does, so asking it costs
    nothing; SQLAlchemy's ``pool_pre_ping`` instead spends three round trips (BEGIN, a query,
    ROLLBACK) on every checkout, which was a tenth of the gateway's CPU on each journal. A
    connection lost while in use is still caught by SQLAlchemy, which then renews the pool.
    """

    @event.listens_for(engine, "checkout")
    def _on_checkout(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        driver = record.driver_connection
        if driver is not None and driver.is_closed():
            raise DisconnectionError("the server closed this pooled connection")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver, so BEGIN is ours to issue.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("gateway_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
