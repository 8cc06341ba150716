"""Hot reads without SQLAlchemy's execution layer: `ReadPool` and `fetch`.

A service's busiest reads (stations' nearby search, membership's member lookup) are one small
statement each. Through an `AsyncSession` SQLAlchemy's layers (the session, the greenlet hop,
result and ORM row handling, the pool's reset) cost several times what the driver does; a
read through `ReadPool` goes to asyncpg directly, with the statement compiled once by
SQLAlchemy (`fetch`), so it is still written, and tested, as SQLAlchemy Core.

SQLite (tests, development) reads through the service's own engine, in a `Database.reading()`
session: nothing to save there, and one statement serves both paths.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, TypeAlias, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from sqlalchemy import Select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gonghui_shared.db import DRIVER_ERRORS, Database, as_sqlalchemy_error, asyncpg_connect_args
from gonghui_shared.settings import ServiceSettings

# What a read gets: on PostgreSQL one of the pool's own asyncpg connections; else (SQLite,
# and callers that already hold one) a SQLAlchemy session or connection.
Reader: TypeAlias = AsyncSession | AsyncConnection | PoolConnectionProxy
T = TypeVar("T")
AnySelect: TypeAlias = Select[*tuple[Any, ...]]


class ReadPool:
    """The connections hot reads go through, one per read, with a retry on a dead one.

    On PostgreSQL an asyncpg pool of its own, beside the service's SQLAlchemy engine: in
    autocommit (no BEGIN and COMMIT around a read), without a pre-ping and without a reset
    when a connection goes back (a read leaves no session state behind: no transaction,
    setting, LISTEN or lock). Instead of pinging, a read that meets a connection that died (a
    database restart, a failover) runs again, on a fresh connection, after every pooled one
    is marked for replacement (as SQLAlchemy does after a disconnect); a read is harmless to
    run twice. Driver errors come out as SQLAlchemy's (`as_sqlalchemy_error`), so an outage
    answers 503 `database_unavailable` as everywhere else. Connections open on demand, up
    to `db_read_pool_size` besides the service's own pool: a service that never reads
    through it opens none.
    """

    def __init__(self, db: Database, settings: ServiceSettings) -> None:
        self._db = db
        self._acquire_timeout = settings.db_pool_timeout
        self._pool: asyncpg.Pool | None = None
        # Reads wait for a connection here, first come first served. asyncpg's own queue is
        # not fair: a read arriving as a connection comes back takes it ahead of the one
        # woken for it, which then queues again at the back. With 16 searches at once and 4
        # connections, stations' nearby p99 was 67 ms against a p50 of 11 ms; behind this gate
        # the pool always has a connection free when asked.
        self._turns = asyncio.Semaphore(settings.db_read_pool_size)
        if db.dialect == "postgresql":
            self._pool = asyncpg.create_pool(
                **asyncpg_connect_args(db.url),
                # Connections open on demand, so the service starts while the database is
                # down (its /readyz says so) and picks up once it is back.
                min_size=0,
                # More reads than connections wait their turn: a read holds its connection
                # for one round trip, so a few serve thousands of reads a second.
                max_size=settings.db_read_pool_size,
                timeout=settings.db_connect_timeout,
                reset=_nothing_to_reset,
            )

    @property
    def direct(self) -> bool:
        """Reads go to asyncpg directly (PostgreSQL), not through the engine."""
        return self._pool is not None

    async def open(self) -> None:
        """Ready the pool (it opens no connection yet)."""
        if self._pool is not None:
            await self._pool

    async def run(self, read: Callable[[Reader], Awaitable[T]]) -> T:
        """`read(connection)`, once more on a fresh connection if the first one was dead."""
        try:
            return await self._run(read)
        except sa_exc.DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        if self._pool is not None:
            # The others most likely died with it: each is replaced when next handed out.
            await self._pool.expire_connections()
        return await self._run(read)

    async def _run(self, read: Callable[[Reader], Awaitable[T]]) -> T:
        if self._pool is None:
            # A reading session: in autocommit, so on SQLite without BEGIN IMMEDIATE, which
            # would queue the read behind the writer.
            async with self._db.reading() as session:
                return await read(session)
        try:
            async with asyncio.timeout(self._acquire_timeout):
                await self._turns.acquire()
        except TimeoutError as exc:
            raise sa_exc.TimeoutError(
                f"no read connection free within {self._acquire_timeout:g} s"
            ) from exc
        try:
            async with self._pool.acquire() as raw:
                return await read(raw)
        except DRIVER_ERRORS as exc:
            raise as_sqlalchemy_error(exc) from exc
        finally:
            self._turns.release()

    async def dispose(self) -> None:
        if self._pool is None:
            return
        try:
            # Waits for reads still running; one stuck on a dead link must not hold the
            # shutdown up for ever.
            await asyncio.wait_for(self._pool.close(), self._acquire_timeout)
        except TimeoutError:
            self._pool.terminate()


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


_POSTGRES = pg_asyncpg.dialect()


@lru_cache(maxsize=512)
def postgres_sql(statement: AnySelect) -> tuple[str, tuple[str, ...]]:
    """A statement as asyncpg runs it: its text and its parameters' names in order ($1, $2,
    ...), compiled once by SQLAlchemy's asyncpg dialect."""
    compiled = statement.compile(dialect=_POSTGRES)
    return compiled.string, tuple(compiled.positiontup or ())


async def _nothing_to_reset(connection: asyncpg.Connection) -> None:
    """In place of asyncpg's reset (a round trip per read): see `ReadPool`."""
