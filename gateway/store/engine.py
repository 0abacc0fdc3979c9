"""The store: one async engine over SQLite (embedded default) or PostgreSQL.

Hot paths (the ledger's claim and record of every post) run a whole transaction as one
synchronous function with :meth:`Store.transact`. On PostgreSQL that is the async engine's
``run_sync``; on SQLite it is a synchronous engine on a thread of its own, so a transaction
is one hand-over to that thread rather than several per statement through aiosqlite, which
made up most of the ledger's cost. On SQLite, concurrent works also share transactions
(:class:`_GroupCommit`): one flush to disk for a burst of posts. PostgreSQL's server
already flushes the commits of concurrent connections together; what concurrent writes
can share there is the statement itself (:class:`Batched`), which the ledger uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import logging
import os
import socket
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway.config import DEFAULT_CONNECT_TIMEOUT
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
    if _client_configuration(exc) is not None:
        return True  # asyncpg cannot set up the connection the URL asks for (TLS files)
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


log = logging.getLogger(__name__)

T = TypeVar("T")
Item = TypeVar("Item")


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


def _client_configuration(exc: BaseException) -> BaseException | None:
    """asyncpg's ClientConfigurationError behind ``exc`` (SQLAlchemy wraps it twice): the
    connection the URL asks for cannot be set up (a TLS root certificate that is missing)."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return None
        kind = type(seen)
        if kind.__name__ == "ClientConfigurationError" and kind.__module__.startswith("asyncpg"):
            return seen
        orig = seen.orig if isinstance(seen, DBAPIError) else None
        seen = seen.__cause__ or (orig if isinstance(orig, BaseException) else None)
    return None


def connect_timeout(url: str | URL) -> float:
    """How long to wait for PostgreSQL to accept a connection: the URL's ``timeout`` (seconds,
    asyncpg's name), or :data:`~gateway.config.DEFAULT_CONNECT_TIMEOUT`."""
    given = make_url(url).query.get("timeout")
    try:
        return float(given) if isinstance(given, str) else DEFAULT_CONNECT_TIMEOUT
    except ValueError:
        return DEFAULT_CONNECT_TIMEOUT


def sqlite_file_problem(url: str | URL) -> str | None:
    """What stops this user using the SQLite file a URL names, as a sentence, or None when
    nothing visible does: a directory, a file it may not read or write, a directory that does
    not exist or it may not write in. Checked before SQLite opens it, since a file aiosqlite
    cannot open leaves a worker thread that outlives the event loop and prints a traceback."""
    parsed = make_url(url)
    database = parsed.database
    if (
        parsed.get_backend_name() != "sqlite"
        or database in (None, "", ":memory:")
        or database.startswith("file:")  # a URI filename (?uri=true): SQLite's to read
    ):
        return None
    fix = "or set FNG_GATEWAY_DATABASE_URL to another"
    try:
        return _sqlite_path_problem(Path(database), fix)
    except RuntimeError:  # Python before 3.13: a symlink loop, as resolve() finds it
        return _looping(database, fix)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return _looping(database, fix)
        if exc.errno == errno.ENAMETOOLONG:
            return (
                f"the SQLite path in FNG_GATEWAY_DATABASE_URL has a name too long for this "
                f"system ({len(database)} characters): give a shorter path, {fix}"
            )
        return (
            f"the SQLite path {database} cannot be used ({exc.strerror or exc}): give the path "
            f"of a file this user may read and write, {fix}"
        )


def _looping(database: str, fix: str) -> str:
    return (
        f"the SQLite path {database} is a symbolic link that leads back to itself: give the "
        f"path of a file, {fix}"
    )


def _sqlite_path_problem(given: Path, fix: str) -> str | None:
    path = given.resolve(strict=False)
    if path.is_dir():
        return (
            f"the SQLite store {path} is a directory: give FNG_GATEWAY_DATABASE_URL the path of "
            "a file (a new path makes a new store)"
        )
    if path.exists():
        if not path.is_file():
            return f"the SQLite store {path} is not a regular file: give the path of one, {fix}"
        if not os.access(path, os.R_OK):
            return (
                f"the SQLite file {path} cannot be read by this user: let it read and write "
                f"the file (chmod, or run the gateway as the file's owner), {fix}"
            )
        if not os.access(path, os.W_OK):
            return (
                f"the SQLite file {path} cannot be written by this user: let it write the file "
                f"and its directory (chmod, or run the gateway as the file's owner), {fix}"
            )
        return None
    directory = path.parent
    if not directory.is_dir():
        return (
            f"cannot create the SQLite file {path}, as its directory {directory} does not "
            f"exist: create it, {fix}"
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        return (
            f"cannot create the SQLite file {path}, as this user may not write in {directory}: "
            f"let it, {fix}"
        )
    return None


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
        if "readonly database" in message:
            return (
                f"{where(parsed)} cannot be written by this user ({message}): let it write the "
                f"file and its directory, {fix}"
            )
        if isinstance(orig, OSError) or "unable to open database file" in message:
            return sqlite_file_problem(parsed) or (
                f"cannot open {where(parsed)}: make sure its directory exists and this user may "
                f"read and write there, {fix}"
            )
        return f"{where(parsed)} cannot be used ({message or type(orig).__name__}): check it, {fix}"
    server = f"the PostgreSQL server at {parsed.host or 'localhost'}:{parsed.port or 5432}"
    ssl = parsed.query.get("ssl")
    configuration = _client_configuration(exc)
    if configuration is not None:
        detail = str(configuration).strip().splitlines()[0]
        if "root certificate" in detail:
            return (
                f"the connection to {server} cannot verify the server ({detail}): with "
                f"ssl={ssl} put the server's root certificate in ~/.postgresql/root.crt or name "
                "its file with PGSSLROOTCERT, or write ssl=require (encrypted, not verified)"
            )
        return (
            f"the connection to {server} cannot be set up ({detail}): correct the options of "
            "FNG_GATEWAY_DATABASE_URL"
        )
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
        return (
            f"{server} did not answer within {connect_timeout(parsed):g} seconds: check that "
            f"PostgreSQL (not another service) listens there and is reachable, {fix}"
        )
    if isinstance(orig, ConnectionRefusedError):
        return f"cannot connect to {server} (connection refused): start it, {fix}"
    if isinstance(orig, OSError) and "rejected SSL upgrade" in str(orig):
        if ssl in ("require", "verify-ca", "verify-full"):
            return (
                f"{server} does not offer TLS, which ssl={ssl} in FNG_GATEWAY_DATABASE_URL "
                "asks for: turn TLS on in the server, or write ssl=prefer"
            )
        return (
            f"{server} did not answer as PostgreSQL does: check the host and port of "
            "FNG_GATEWAY_DATABASE_URL"
        )
    if isinstance(orig, OSError):
        reason = orig.strerror or str(orig).strip() or type(orig).__name__
        return (
            f"cannot connect to {server} ({reason}): check that PostgreSQL listens there and "
            f"is reachable, {fix}"
        )
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


@dataclass(slots=True)
class GroupCommits:
    """What :meth:`Store.transact` has written on SQLite: ``transactions`` committed (or
    rolled back), how many of them were ``flushed`` to disk, and the ``works`` they held."""

    transactions: int = 0
    flushed: int = 0
    works: int = 0


@dataclass(slots=True)
class _Queued:
    work: Callable[[Connection], Any]
    single_statement: bool
    durable: bool
    context: contextvars.Context


_FLUSHED: Final = "PRAGMA synchronous=FULL"
_NOT_FLUSHED: Final = "PRAGMA synchronous=NORMAL"

#: What a batch answers each of its items: (True, a value) or (False, what it raised).
_Answer = tuple[bool, Any]


class _Coalescing(Generic[Item, T]):
    """Calls that arrive while a batch is being handled queue for the next one, so a burst
    of callers shares one piece of work; a lone call finds nothing under way and goes at
    once. Each caller gets its own item's outcome. A cancelled caller still waits for the
    batch holding its item to end, as its item may be done all the same."""

    #: Items in one batch at most; more wait for the next.
    MAX_BATCH: Final = 256

    def __init__(self) -> None:
        self._queue: list[tuple[Item, asyncio.Future[T]]] = []
        self._running: asyncio.Task[None] | None = None

    async def _submit(self, item: Item) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append((item, future))
        if self._running is None:
            self._running = loop.create_task(self._drain())
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await future
            raise

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self.MAX_BATCH]
                del self._queue[: self.MAX_BATCH]
                try:
                    outcomes = await self._handle([item for item, _future in batch])
                except BaseException:  # the loop is going away
                    for _item, future in batch:
                        future.cancel()
                    raise
                for (_item, future), (ok, value) in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
        finally:
            self._running = None

    async def _handle(self, items: list[Item]) -> list[_Answer]:
        """Each item's outcome, in order."""
        raise NotImplementedError


class _GroupCommit(_Coalescing[_Queued, Any]):
    """SQLite's group commit: every work queued while a transaction is being written goes
    into the next one, so a burst of writers shares one ``BEGIN``, one ``COMMIT`` and one
    flush to disk, and one hand-over to the store's thread, instead of one each.

    Each caller still gets its own outcome, and only once the transaction holding its work
    is committed (and flushed to disk, if any work in it asked to be durable). A work runs
    in a savepoint of its own, so one that raises is undone alone and its caller gets the
    exception while the others commit (a single statement needs none: SQLite undoes a
    failed statement alone). A database error, or a failure of the transaction itself,
    fails every work in it, and none of them is committed.
    """

    def __init__(self, writer: Engine, lock: asyncio.Lock) -> None:
        super().__init__()
        self._writer = writer
        self._lock = lock
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="store")
        self.counts = GroupCommits()
        # The store's thread keeps one connection rather than taking one from the pool for
        # each transaction (and resetting it on return): a third of a lone write's CPU. It
        # is let go after a transaction that failed, and a fresh one taken for the next.
        self._conn: Connection | None = None

    async def run(
        self, work: Callable[[Connection], T], single_statement: bool, durable: bool
    ) -> T:
        # In a copy of the caller's context, so its log lines keep their request id.
        result: T = await self._submit(
            _Queued(work, single_statement, durable, contextvars.copy_context())
        )
        return result

    async def _handle(self, items: list[_Queued]) -> list[_Answer]:
        loop = asyncio.get_running_loop()
        try:
            async with self._lock:
                with unreachable_as_store_unavailable(self._writer.url):
                    written = loop.run_in_executor(self._thread, self._transaction, items)
                    try:
                        return await asyncio.shield(written)
                    except asyncio.CancelledError:
                        # The lock is held until the thread is out of the transaction.
                        with contextlib.suppress(Exception):
                            await written
                        raise
        except Exception as exc:  # the transaction failed: so did every work
            return [(False, exc)] * len(items)

    def _transaction(self, batch: list[_Queued]) -> list[_Answer]:
        """On the store's thread: every work of ``batch`` in one transaction, flushed to disk
        when one of them asks for it."""
        flush = any(queued.durable for queued in batch)
        self.counts.transactions += 1
        self.counts.flushed += flush
        self.counts.works += len(batch)
        if self._conn is None:
            self._conn = self._writer.connect()
        conn = self._conn
        try:
            # Chosen outside the transaction, as SQLite requires. In WAL mode a commit not
            # flushed survives the process and is lost only with the machine, and the next
            # flushed commit makes it durable too.
            driver_execute(conn, _FLUSHED if flush else _NOT_FLUSHED)
            with conn.begin():
                return [self._outcome(conn, queued) for queued in batch]
        except BaseException:
            self._conn = None
            with contextlib.suppress(Exception):
                conn.close()
            raise

    @staticmethod
    def _outcome(conn: Connection, queued: _Queued) -> _Answer:
        """One work's outcome, its changes undone alone if it raises."""
        # SQLite undoes a single statement that fails, and only it; a longer work is undone
        # by its own savepoint.
        alone = contextlib.nullcontext() if queued.single_statement else conn.begin_nested()
        try:
            with alone:
                return True, queued.context.run(queued.work, conn)
        except IntegrityError as exc:
            return False, exc
        except DBAPIError:
            raise  # the database failed, not the work: so does the transaction
        except Exception as exc:
            if queued.single_statement:
                raise  # no savepoint undoes what it did before it raised
            return False, exc

    async def close(self, dispose: Callable[[], None]) -> None:
        if self._running is not None:
            with contextlib.suppress(Exception):
                await self._running
        await asyncio.get_running_loop().run_in_executor(self._thread, self._dispose, dispose)
        self._thread.shutdown(wait=True)

    def _dispose(self, dispose: Callable[[], None]) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        dispose()


def driver_execute(conn: Connection, sql: str, parameters: Sequence[Any] = ()) -> Any:
    """Run ``sql`` (with ``?`` placeholders) on the SQLite driver's own connection under
    ``conn``, inside whatever transaction ``conn`` has begun, and return the driver's cursor.

    For the ledger's one-row writes on every post, where SQLAlchemy's execution costs
    several times what SQLite takes to run the statement. Nothing is converted: values go
    as the driver takes them, so a column SQLAlchemy converts (a datetime) is given as
    SQLAlchemy would store it (:func:`sqlite_datetime`). A driver error is raised as
    SQLAlchemy's (an :class:`~sqlalchemy.exc.IntegrityError` for a constraint), as
    ``conn.execute`` would raise it."""
    driver = conn.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    try:
        return driver.execute(sql, parameters)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, parameters, exc, sqlite3.Error) from exc


def sqlite_datetime(value: datetime) -> str:
    """A UTC datetime as SQLAlchemy stores it in SQLite (see ``UtcDateTime``)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass(slots=True)
class BatchCounts:
    """What a :class:`Batched` has run: ``statements`` for ``items``."""

    statements: int = 0
    items: int = 0


class Batched(_Coalescing[Item, T]):
    """Concurrent calls of one statement, sent as one (PostgreSQL's counterpart of the
    group commit: its server already flushes concurrent commits together, so what there is
    to share is the client's work per statement and the round trip).

    ``many`` runs one statement for a list of items and answers each, in order; ``one``
    runs one item by itself. Items that arrive while a statement is out go in the next; a
    lone item goes at once, through ``one``. If a statement of several fails, each of its
    items is run again through ``one``, so a caller gets its own outcome, never a
    neighbour's failure.
    """

    def __init__(
        self,
        store: Store,
        many: Callable[[Connection, Sequence[Item]], list[T]],
        one: Callable[[Item], Awaitable[T]],
    ) -> None:
        super().__init__()
        self._store = store
        self._many = many
        self._one = one
        self.counts = BatchCounts()

    async def __call__(self, item: Item) -> T:
        return await self._submit(item)

    async def _handle(self, items: list[Item]) -> list[_Answer]:
        self.counts.statements += 1
        self.counts.items += len(items)
        if len(items) > 1:
            try:
                answers = await self._store.transact(self._statement(items), single_statement=True)
            except Exception as exc:
                log.warning(
                    "a batched store statement failed (%s); its %d items go one by one",
                    type(exc).__name__,
                    len(items),
                )
            else:
                if len(answers) == len(items):
                    return [(True, answer) for answer in answers]
        # Alone, the simpler statement is the faster.
        outcomes = await asyncio.gather(
            *(self._one(item) for item in items), return_exceptions=True
        )
        return [(not isinstance(outcome, BaseException), outcome) for outcome in outcomes]

    def _statement(self, items: Sequence[Item]) -> Callable[[Connection], list[T]]:
        return lambda conn: self._many(conn, items)


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
        # PostgreSQL commits a lone statement by itself: as a transaction of its own it needs
        # no BEGIN and COMMIT, two round trips of the three.
        self._autocommit = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else None
        )
        self._sync_engine = sync_engine
        self._group = (
            _GroupCommit(sync_engine.execution_options(gateway_write=True), self._write_lock)
            if sync_engine is not None and self._write_lock is not None
            else None
        )

    @property
    def group_commits(self) -> GroupCommits | None:
        """How many transactions :meth:`transact` has written and how many works they held
        (None where works are not grouped: PostgreSQL, in-memory SQLite)."""
        return self._group.counts if self._group is not None else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def sqlite_driver(self) -> bool:
        """Whether :meth:`transact` gives its works a connection of the standard library's
        sqlite3 driver (a SQLite file), on which they may use :func:`driver_execute`."""
        return self._group is not None

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
        self,
        work: Callable[[Connection], T],
        *,
        single_statement: bool = False,
        durable: bool = True,
    ) -> T:
        """Run ``work`` in a write transaction (committed when it returns, rolled back if it
        raises) and return what it returns, once that transaction is committed. ``work`` is
        synchronous and must not touch the event loop: on SQLite it runs on the store's own
        thread.

        ``durable`` (the default) waits until the commit is flushed to disk. Without it, on a
        SQLite file, the commit survives the process but not the machine until the next
        durable one: for records that can be rebuilt, never for a promise made before an
        action (PostgreSQL flushes every commit).

        ``single_statement`` promises that ``work`` executes one statement and raises only
        what that statement raises; the statement is then its own transaction where the
        database allows it (PostgreSQL).

        On a SQLite file, works that arrive while a transaction is being written share the
        next one: the group commit of :class:`_GroupCommit`."""
        if single_statement and self._autocommit is not None:
            with unreachable_as_store_unavailable(self.engine.url):
                async with self._autocommit.connect() as conn:
                    return await conn.run_sync(work)
        if self._group is None:
            async with self.write() as conn:
                return await conn.run_sync(work)
        return await self._group.run(work, single_statement, durable)

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except (DBAPIError, OSError):
            return False
        return True

    async def close(self) -> None:
        await self.engine.dispose()
        if self._group is not None and self._sync_engine is not None:
            await self._group.close(self._sync_engine.dispose)


def create_store(url: str, **engine_options: Any) -> Store:
    """The store a URL names. A SQLite file this user cannot use is refused at once
    (:class:`StoreUnavailable`, saying why); connections to PostgreSQL wait at most the URL's
    ``timeout`` (:func:`connect_timeout`) to be accepted."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        problem = sqlite_file_problem(parsed)
        if problem is not None:
            raise StoreUnavailable(problem)
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
        # Bounded, so a host that never answers (or a port that is not PostgreSQL's) is
        # reported in seconds; the URL's own timeout, a string, would reach asyncpg as one.
        connect_args = {
            "timeout": connect_timeout(parsed),
            **engine_options.pop("connect_args", {}),
        }
        engine = create_async_engine(parsed, connect_args=connect_args, **engine_options)
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
        try:
            # Take transaction control from the driver, so BEGIN is ours to issue.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
        except BaseException:
            # A file SQLite opened but cannot use (read-only, say): the connection is
            # closed now, while the event loop its worker thread answers still runs.
            with contextlib.suppress(Exception):
                dbapi_connection.close()
            raise

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("gateway_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
