"""Hot reads without SQLAlchemy's execution layer: `ReadPool` and `fetch`.

A service's busiest reads (stations' nearby search, membership's member lookup) are one small
statement each, and so is each batch of its audit rows. Through an `AsyncSession`
SQLAlchemy's layers (the session, the greenlet hop, result and ORM row handling, the pool's
reset) cost several times what the driver does; a read through `ReadPool` goes to asyncpg
directly, with the statement compiled once by SQLAlchemy (`fetch`), so it is still written,
and tested, as SQLAlchemy Core.

SQLite (tests, development) reads through the service's own engine, in a `Database.reading()`
session: nothing to save there, and one statement serves both paths.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, TypeAlias, TypeVar

import asyncpg
from sqlalchemy import Select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from gonghui_shared.db import DRIVER_ERRORS, Database, as_sqlalchemy_error, asyncpg_connect_args
from gonghui_shared.settings import ServiceSettings

# What a read gets: on PostgreSQL one of the pool's own asyncpg connections; else (SQLite,
# and callers that already hold one) a SQLAlchemy session or connection.
Reader: TypeAlias = AsyncSession | AsyncConnection | asyncpg.Connection
T = TypeVar("T")
AnySelect: TypeAlias = Select[*tuple[Any, ...]]


class ReadPool:
    """The connections hot reads go through, one per read, with a retry on a dead one.

    On PostgreSQL, asyncpg connections of its own beside the service's SQLAlchemy engine,
    in autocommit (no BEGIN and COMMIT around a read), without a pre-ping and without a
    reset when a connection comes back: a read leaves no session state behind (no
    transaction, setting, LISTEN or lock). Instead of pinging, a read that meets a
    connection that died (a database restart, a failover) runs again on a fresh one, after
    the idle ones are closed (as SQLAlchemy does after a disconnect); a read is harmless to
    run twice. Driver errors come out as SQLAlchemy's (`as_sqlalchemy_error`), so an outage
    answers 503 `database_unavailable` as everywhere else. Connections open on demand, up to
    `db_read_pool_size`: a service that never reads through here opens none, and starts
    while the database is down (its /readyz says so).

    The audit trail's rows go in through it too (`audit.writer`): one statement a batch, in
    autocommit, and as harmless to run twice as a read (a row already there is left as it is).

    The connections are kept here rather than in an asyncpg pool: what this pool needs of
    one is a list and a semaphore, and asyncpg's acquire and release (a task per release,
    its reset and inactivity hooks) cost as much CPU as the read itself. 16 readers of
    `SELECT 1` on 4 connections: 104 µs of the client's CPU a read through asyncpg's pool,
    47 µs through this one.
    """

    def __init__(self, db: Database, settings: ServiceSettings) -> None:
        self._db = db
        self._size = settings.db_read_pool_size
        self._acquire_timeout = settings.db_pool_timeout
        self._connect_timeout = settings.db_connect_timeout
        self._connect_args = asyncpg_connect_args(db.url) if db.dialect == "postgresql" else None
        # Reads wait for a turn here, first come first served, and a turn always finds a
        # connection idle or room to open one. (asyncpg's own queue is not fair: a read
        # arriving as a connection came back took it ahead of the one woken for it. With 16
        # searches at once on 4 connections, stations' nearby p99 was 67 ms against a p50
        # of 11 ms.)
        self._turns = asyncio.Semaphore(self._size)
        # The last connection given back is the first lent again: the warmest.
        self._idle: list[asyncpg.Connection] = []
        self._open: set[asyncpg.Connection] = set()  # idle and lent
        self._disposed = False

    @property
    def direct(self) -> bool:
        """Reads go to asyncpg directly (PostgreSQL), not through the engine."""
        return self._connect_args is not None

    async def run(self, read: Callable[[Reader], Awaitable[T]]) -> T:
        """`read(connection)`, once more on a fresh connection if the first one was dead."""
        try:
            return await self._run(read)
        except sa_exc.DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        # The others most likely died with it.
        for connection in self._idle:
            self._close(connection)
        self._idle.clear()
        return await self._run(read)

    async def _run(self, read: Callable[[Reader], Awaitable[T]]) -> T:
        if self._connect_args is None:
            # A reading session: in autocommit, so on SQLite without BEGIN IMMEDIATE, which
            # would queue the read behind the writer.
            async with self._db.reading() as session:
                return await read(session)
        await self._take_turn()
        connection: asyncpg.Connection | None = None
        try:
            connection = self._idle.pop() if self._idle else await self._connect()
            result = await read(connection)
        except BaseException as exc:
            failure = as_sqlalchemy_error(exc) if isinstance(exc, DRIVER_ERRORS) else exc
            if connection is not None:
                self._after_failure(connection, exc, failure)
            if failure is exc:
                raise
            raise failure from exc
        else:
            self._idle.append(connection)  # before the turn goes: the next reader finds it
            return result
        finally:
            self._turns.release()

    async def _take_turn(self) -> None:
        if not self._turns.locked():
            await self._turns.acquire()  # free: returns at once, no timer to set
            return
        try:
            async with asyncio.timeout(self._acquire_timeout):
                await self._turns.acquire()
        except TimeoutError as exc:
            raise sa_exc.TimeoutError(
                f"no read connection free within {self._acquire_timeout:g} s"
            ) from exc

    async def _connect(self) -> asyncpg.Connection:
        assert self._connect_args is not None
        connection = await asyncpg.connect(**self._connect_args, timeout=self._connect_timeout)
        self._open.add(connection)
        return connection

    def _after_failure(
        self, connection: asyncpg.Connection, exc: BaseException, failure: BaseException
    ) -> None:
        """Keep a connection whose statement PostgreSQL refused: it is ready for the next.
        Close one in any other state (its link broken, its read cancelled mid-statement)."""
        reusable = (
            isinstance(exc, asyncpg.PostgresError)
            and not getattr(failure, "connection_invalidated", False)
            and not connection.is_closed()
            and not connection.is_in_transaction()
        )
        if reusable:
            self._idle.append(connection)
        else:
            self._close(connection)

    def _close(self, connection: asyncpg.Connection) -> None:
        self._open.discard(connection)
        connection.terminate()

    async def dispose(self) -> None:
        """Close the connections once the reads in progress are done; past
        `db_pool_timeout`, one stuck on a dead link is cut off."""
        if self._connect_args is None or self._disposed:
            return
        self._disposed = True
        try:
            async with asyncio.timeout(self._acquire_timeout):
                for _ in range(self._size):
                    await self._turns.acquire()  # every turn: no read is running
        except TimeoutError:
            pass
        idle, self._idle = self._idle, []
        await asyncio.gather(
            *(connection.close(timeout=self._connect_timeout) for connection in idle),
            return_exceptions=True,
        )
        for connection in self._open - set(idle):
            connection.terminate()
        self._open.clear()


async def fetch(
    reader: Reader, statement: AnySelect, values: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """The rows of a Core statement whose values are bound parameters (`bindparam(name)`),
    on either kind of reader. Build the statement once (a module constant, or cached per
    shape): asyncpg's text is compiled once per statement object, and prepared once per
    connection. On asyncpg values go and come as the driver takes and gives them, without
    the column types' own processing: a JSON column's value, for one, comes as text (decoded
    through SQLAlchemy), and a `UtcDateTime` as asyncpg's aware datetime (UTC, as the type
    would make it). Pass values the driver takes as they are."""
    if isinstance(reader, AsyncSession | AsyncConnection):
        return (await reader.execute(statement, values)).all()
    sql, names = postgres_sql(statement)
    records: Sequence[Sequence[Any]] = await reader.fetch(sql, *[values[name] for name in names])
    return records


# The dialect statements are compiled with for asyncpg, here and in the audit writer.
POSTGRES_DIALECT = pg_asyncpg.dialect()


@lru_cache(maxsize=512)
def postgres_sql(statement: ClauseElement) -> tuple[str, tuple[str, ...]]:
    """A statement as asyncpg runs it: its text and its parameters' names in order ($1, $2,
    ...), compiled once by SQLAlchemy's asyncpg dialect."""
    compiled = statement.compile(dialect=POSTGRES_DIALECT)
    assert isinstance(compiled, SQLCompiler)
    return compiled.string, tuple(compiled.positiontup or ())
