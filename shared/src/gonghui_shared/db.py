"""Async SQLAlchemy: one engine per service, one transaction per request.

The same code runs on SQLite (aiosqlite, the embedded default) and PostgreSQL
(asyncpg). The request owns the transaction: `Database.transaction()` commits
when the block succeeds and rolls back when it raises; services only flush.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

import asyncpg
from sqlalchemy import DateTime, MetaData, Table, bindparam, event, insert, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql import Insert
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

# Constraint names are part of the schema; migrations depend on them being stable.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC, on SQLite too (which keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store timezone-aware values")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` and `sqlite://` URLs and pick the async driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str, *, connect_timeout: float | None = None, **kwargs: Any) -> AsyncEngine:
    """The engine; on PostgreSQL `pool_timeout` and `connect_timeout` bound how long a
    request waits for a connection, so an outage or a full pool answers 503 quickly
    instead of holding the request (asyncpg alone waits 60 s to connect)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        # Pool sizes are PostgreSQL's concern: SQLite has one writer whatever the pool.
        kwargs.pop("pool_size", None)
        kwargs.pop("max_overflow", None)
        kwargs.pop("pool_timeout", None)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        _make_sqlite_serialisable(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    if connect_timeout is not None:
        kwargs.setdefault("connect_args", {})["timeout"] = connect_timeout
    engine = create_async_engine(url, **kwargs)
    _replace_closed_connections(engine)
    return engine


def _replace_closed_connections(engine: AsyncEngine) -> None:
    """Connections pooled before an outage are replaced, not handed out broken.

    SQLAlchemy's `pool_pre_ping` would do it with a round trip (BEGIN, a ping, ROLLBACK on
    asyncpg) at every checkout, which measured as much as the query of a member lookup.
    asyncpg learns of a closed socket by itself, so asking it costs nothing; a connection
    that died silently fails its first statement, and SQLAlchemy then invalidates the
    whole pool, so only that request sees the outage (503 `database_unavailable`).
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is not None and driver.is_closed():
            # The pool discards this connection and checks out (or opens) another.
            raise sa_exc.DisconnectionError("the pooled connection was closed")


def _make_sqlite_serialisable(engine: AsyncEngine) -> None:
    # pysqlite starts transactions lazily, so a read-then-write transaction can
    # fail with "database is locked" instead of waiting. We take the write lock
    # up front (BEGIN IMMEDIATE) and let readers proceed under WAL.
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return  # `Database.reading()`: each statement on its own, no write lock
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def insert_ignoring_conflicts(session: AsyncSession, table: Any) -> Insert:
    """`INSERT … ON CONFLICT DO NOTHING` in the session's dialect."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing()


async def insert_unless_conflicting(session: AsyncSession, record: Any) -> bool:
    """Insert a new ORM object's row unless a unique constraint holds its like already;
    whether it was inserted. One statement (`INSERT … ON CONFLICT DO NOTHING RETURNING`)
    where `session.add` and a flush in a savepoint, to survive the IntegrityError, take
    three round trips and the unit of work. The object stays out of the session, so give
    it every value a column would default (its id, its timestamps)."""
    table = type(record).__table__
    values = {column.key: getattr(record, column.key) for column in table.columns}
    unset = [key for key, value in values.items() if value is None and table.c[key].default]
    if unset:
        raise ValueError(f"give {type(record).__name__} its {', '.join(unset)}: no defaults here")
    statement = _insert_unless_conflicting(table, session.get_bind().dialect.name)
    return await session.scalar(statement, values) is not None


@lru_cache(maxsize=64)
def _insert_unless_conflicting(table: Any, dialect: str) -> Any:
    """Made once per table: a statement built per call costs SQLAlchemy more than the
    round trip (`gonghui_shared.bus.outbox`)."""
    module = postgresql if dialect == "postgresql" else sqlite
    key = next(iter(table.primary_key.columns))
    return module.insert(table).on_conflict_do_nothing().returning(key)


async def bulk_insert(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many new rows (each a dict of the same columns) in the session's transaction.

    On PostgreSQL this is one binary `COPY … FROM STDIN` on the session's connection: a
    roster import writes three rows a person, and executemany spent more of its time in
    SQLAlchemy's per-row parameter processing and in the server's per-row executor than
    in storing them. Values go through each column type's own bind processing (JSON as
    text, timestamps made UTC), as an INSERT's would. A COPY fills no Python-side column
    default, so a row that leaves one out is refused, as `insert_unless_conflicting`
    refuses it. SQLite takes one executemany INSERT.
    """
    if not rows:
        return
    keys = tuple(rows[0])
    unset = [c.key for c in table.columns if c.key not in keys and c.default is not None]
    if unset:
        raise ValueError(f"give every {table.name} row its {', '.join(unset)}: no defaults here")
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        await session.execute(insert(table), list(rows))
        return
    records = driver_records(table, keys, rows, dialect)
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert isinstance(driver, asyncpg.Connection)
    if not driver.is_in_transaction():
        # SQLAlchemy sends BEGIN with its first statement: send one, so the COPY is part
        # of the session's transaction and not a commit of its own.
        await connection.exec_driver_sql("SELECT 1")
    try:
        await driver.copy_records_to_table(
            table.name, schema_name=table.schema, columns=list(keys), records=records
        )
    except asyncpg.IntegrityConstraintViolationError as exc:
        # Callers catch SQLAlchemy's error, as they would around an INSERT.
        raise sa_exc.IntegrityError(f"COPY {table.name}", None, exc) from exc
    except DRIVER_ERRORS as exc:
        raise as_sqlalchemy_error(exc) from exc


def driver_records(
    table: Table, keys: tuple[str, ...], rows: Sequence[dict[str, Any]], dialect: Any
) -> list[list[Any]]:
    """`rows` as asyncpg takes them: each the values of `keys` in that order, through each
    column type's bind processing for `dialect` (JSON as text, timestamps made UTC), as
    SQLAlchemy would send them."""
    values_of = itemgetter(*keys)  # as executemany does: the first row's columns, from each
    records = [list(values_of(row)) if len(keys) > 1 else [values_of(row)] for row in rows]
    for index, process in _bind_processors(table, keys, dialect):
        for record in records:
            if record[index] is not None:
                record[index] = process(record[index])
    return records


@lru_cache(maxsize=64)
def _bind_processors(table: Table, keys: tuple[str, ...], dialect: Any) -> list[tuple[int, Any]]:
    """The columns whose values the dialect converts (JSON, our UTC timestamps), by position."""
    processors = [table.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in keys]
    return [(index, process) for index, process in enumerate(processors) if process is not None]


# OSError: asyncpg raises the socket's own when it cannot connect or the link breaks.
DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)

# The errors after which the connection is gone: a lost link (class 08) or the server ending
# the session (57P01 at a restart, 57P02, 57P03).
_DISCONNECTS = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
)


def as_sqlalchemy_error(exc: Exception) -> Exception:
    """A driver error as the SQLAlchemy error the service's handlers know, as SQLAlchemy's
    own asyncpg dialect would report it (for the hot reads of `gonghui_shared.reads` and a
    bulk insert's COPY, which talk to asyncpg itself): after a disconnect, an invalidated
    one (a lasting outage answers 503); a PostgreSQL error as an OperationalError
    carrying its sqlstate (which tells an outage, such as 53300 with too many connections,
    from a mistake). Other OSErrors stay as they are: the handlers take a connection error
    for an outage."""
    gone = isinstance(exc, _DISCONNECTS) or (
        isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc)
    )
    if isinstance(exc, asyncpg.PostgresError):
        return sa_exc.OperationalError(None, None, exc, connection_invalidated=gone)
    if isinstance(exc, asyncpg.InterfaceError):
        return sa_exc.InterfaceError(None, None, exc, connection_invalidated=gone)
    return exc


# A table whose rows changed this much since its last ANALYZE is analysed before a bulk
# check leans on its statistics: autovacuum analyses at a tenth changed, but only on its
# next round (once a minute), and a roster imported right after another would be planned
# against the table as it was before both.
STALE_SHARE = 0.2
STALE_MIN_ROWS = 10_000
# Seconds to open the analysis's own connection; past them the check goes on without it.
_ANALYZE_CONNECT_TIMEOUT = 10

_CHANGED_SINCE_ANALYZE = text(
    "SELECT relname, n_live_tup, n_mod_since_analyze FROM pg_stat_user_tables"
    " WHERE schemaname = current_schema() AND relname IN :names"
).bindparams(bindparam("names", expanding=True))


async def analyze_if_stale(session: AsyncSession, tables: Sequence[Table]) -> list[str]:
    """ANALYZE (PostgreSQL) those of `tables` with at least STALE_MIN_ROWS rows and
    STALE_SHARE of them changed since their statistics were taken; returns their names.

    Without fresh statistics the planner takes `hash IN (500 values)` on a table that has
    grown by a bulk import for a sizeable share of it and scans it whole: 68 ms instead of
    4 ms a batch at 200,000 rows, and a 100,000-row roster check went from 0.3 s to 6 s
    after one import and to 21 s after four.

    The counts are read on the session's connection. An analysis runs on a connection of
    its own, outside the pool and in autocommit: the caller's transaction keeps no lock of
    it to its end, and a caller holding the pool's last connection does not wait for
    another. The statistics only speed queries up, so an analysis that cannot run is
    logged and skipped.
    """
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return []
    names = [table.name for table in tables]
    counts = await session.execute(_CHANGED_SINCE_ANALYZE, {"names": names})
    stale = [
        name
        for name, live, changed in counts
        if changed >= STALE_MIN_ROWS and changed >= STALE_SHARE * live
    ]
    if not stale:
        return []
    quote = bind.dialect.identifier_preparer.quote
    url = bind.engine.url.render_as_string(hide_password=False)
    try:
        connection = await asyncpg.connect(
            **asyncpg_connect_args(url), timeout=_ANALYZE_CONNECT_TIMEOUT
        )
        try:
            for name in stale:
                started = time.perf_counter()
                await connection.execute(f"ANALYZE {quote(name)}")
                log.info(
                    "analysed a table after bulk changes",
                    extra={"table": name, "ms": round((time.perf_counter() - started) * 1000, 1)},
                )
        finally:
            await connection.close()
    except DRIVER_ERRORS as exc:
        log.warning(
            "could not analyse tables after bulk changes",
            extra={"tables": stale, "error": str(exc)},
        )
        return []
    return stale


def asyncpg_connect_args(url: str) -> dict[str, Any]:
    """asyncpg.connect's arguments for a SQLAlchemy `postgresql+asyncpg://` URL, read as
    SQLAlchemy's dialect reads it, less the options only the dialect understands."""
    _, args = pg_asyncpg.dialect().create_connect_args(make_url(url))
    for dialect_only in ("prepared_statement_cache_size", "prepared_statement_name_func"):
        args.pop(dialect_only, None)
    return dict(args)


async def reserve_block(session: AsyncSession, table: Any, count: int, **key: Any) -> int:
    """Take `count` consecutive values of the counter row `key` of `table` (a `last_value`
    column, made at 0 when missing); returns the last one taken.

    One UPDATE takes the whole block and locks the row until the transaction ends
    (PostgreSQL), so concurrent writers queue here and never share a number; on SQLite
    the transaction already holds the write lock (BEGIN IMMEDIATE).
    """
    await session.execute(insert_ignoring_conflicts(session, table).values(**key, last_value=0))
    value = await session.scalar(
        update(table)
        .where(*(table.c[name] == value for name, value in key.items()))
        .values(last_value=table.c.last_value + count)
        .returning(table.c.last_value)
    )
    assert value is not None  # the row was inserted above if it was missing
    return int(value)


class Database:
    """The engine, its session factory, and what runs after a commit."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = normalise_url(url)
        self.engine = create_engine(self.url, **engine_kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Reads of one statement need no transaction: on PostgreSQL each statement of a
        # `reading()` session runs in autocommit, which spares the BEGIN and COMMIT round
        # trips (two of a member lookup's three). SQLite reads skip BEGIN IMMEDIATE too,
        # so they do not queue behind the writer (see `_make_sqlite_serialisable`).
        self._reads = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )
        self._after_commit: list[Callable[[AsyncSession], None]] = []

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def after_commit(self, hook: Callable[[AsyncSession], None]) -> None:
        """Run `hook(session)` after every successful commit (the outbox relay's wake-up)."""
        self._after_commit.append(hook)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
        for hook in self._after_commit:
            hook(session)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only: each statement sees what was committed when it began,
        not a snapshot shared with the next one. Nothing it writes is kept transactional."""
        async with self._reads() as session:
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        await self.engine.dispose()
