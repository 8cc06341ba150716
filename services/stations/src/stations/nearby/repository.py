"""Nearby queries: active stations in a set of H3 cells, through the (h3_r7, status, lat, lon)
index."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from typing import Any, NamedTuple, TypeAlias, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from sqlalchemy import ColumnElement, Select, String, bindparam, cast, or_, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gonghui_shared.db import Database
from gonghui_shared.settings import ServiceSettings
from stations.stations.models import Station, StationStatus

# What a search reads through: on PostgreSQL one of `SearchReads`' own asyncpg connections;
# else (SQLite, coverage, tests) a SQLAlchemy session or connection.
Reader: TypeAlias = AsyncSession | AsyncConnection | PoolConnectionProxy


class Candidate(NamedTuple):
    """What a nearby result and its filters need of a station (WGS-84 lon/lat)."""

    id: str
    name: str
    station_type: str
    address: str | None
    lon: float
    lat: float
    h3_r7: str
    amenities: list[str]
    opening_hours: str
    timezone: str


# Columns, not ORM objects: those cost several times more per row, and a dense city can put a
# few hundred candidates in a 15-minute circle.
_COLUMNS = (
    Station.id,
    Station.name,
    Station.station_type,
    Station.address,
    Station.lon,
    Station.lat,
    Station.h3_r7,
    Station.amenities,
    Station.opening_hours,
    Station.timezone,
)

# Ranges per statement: keeps each statement well under SQLite's and asyncpg's parameter limits.
_CHUNK = 400


# A lon/lat box: west, south, east, north (degrees, WGS-84).
Box = tuple[float, float, float, float]
T = TypeVar("T")


class SearchReads:
    """The connections searches read through, one per search, with a retry on a dead one.

    On PostgreSQL an asyncpg pool of its own, beside the service's SQLAlchemy engine: in
    autocommit (no BEGIN and COMMIT around a search), without a pre-ping and without a reset
    when a connection goes back (a search leaves no session state behind: no transaction,
    setting, LISTEN or lock), and without SQLAlchemy's execution layer, which cost several
    times what the driver does for a search's one small query. Each statement shape is
    compiled once by SQLAlchemy (`_statement`) and prepared once per connection by asyncpg.
    Instead of pinging, a search that meets a connection that died (a database restart, a
    failover) runs again, on a fresh connection, after every pooled one is marked for
    replacement (as SQLAlchemy does after a disconnect); a search only reads, so running it
    twice is harmless. Driver errors come out as SQLAlchemy's (`_as_sqlalchemy_error`), so
    an outage answers 503 `database_unavailable` as everywhere else. The pool holds up to
    `db_pool_size` connections besides the service's; while searches use them, the
    service's own pool stays idle.

    SQLite (tests, development) reads through the service's own engine: nothing to save.
    """

    def __init__(self, db: Database, settings: ServiceSettings) -> None:
        self._db = db
        self._acquire_timeout = settings.db_pool_timeout
        self._pool: asyncpg.Pool | None = None
        if db.dialect == "postgresql":
            self._pool = asyncpg.create_pool(
                **_connect_args(db.url),
                # Connections open on demand, so the service starts while the database is
                # down (its /readyz says so) and picks up once it is back.
                min_size=0,
                # The service's pool size: more searches than connections wait their turn
                # (the database has only so many cores to run them on anyway).
                max_size=settings.db_pool_size,
                timeout=settings.db_connect_timeout,
                reset=_nothing_to_reset,
            )

    async def open(self) -> None:
        """Ready the pool (it opens no connection yet)."""
        if self._pool is not None:
            await self._pool

    async def run(self, search: Callable[[Reader], Awaitable[T]]) -> T:
        """`search(connection)`, once more on a fresh connection if the first one was dead."""
        try:
            return await self._run(search)
        except sa_exc.DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        if self._pool is not None:
            # The others most likely died with it: each is replaced when next handed out.
            await self._pool.expire_connections()
        return await self._run(search)

    async def _run(self, search: Callable[[Reader], Awaitable[T]]) -> T:
        if self._pool is None:
            async with self._db.engine.connect() as conn:
                return await search(conn)
        try:
            async with self._pool.acquire(timeout=self._acquire_timeout) as raw:
                return await search(raw)
        except _DRIVER_ERRORS as exc:
            raise _as_sqlalchemy_error(exc) from exc

    async def dispose(self) -> None:
        if self._pool is None:
            return
        try:
            # Waits for searches still running; one stuck on a dead link must not hold the
            # shutdown up for ever.
            await asyncio.wait_for(self._pool.close(), self._acquire_timeout)
        except TimeoutError:
            self._pool.terminate()


async def _nothing_to_reset(connection: asyncpg.Connection) -> None:
    """In place of asyncpg's reset (a round trip per search): see `SearchReads`."""


def _connect_args(url: str) -> dict[str, Any]:
    """asyncpg.connect's arguments for a SQLAlchemy `postgresql+asyncpg://` URL, read as
    SQLAlchemy's dialect reads it, less the options only the dialect understands."""
    _, args = pg_asyncpg.dialect().create_connect_args(make_url(url))
    for dialect_only in ("prepared_statement_cache_size", "prepared_statement_name_func"):
        args.pop(dialect_only, None)
    return dict(args)


# OSError: asyncpg raises the socket's own when it cannot connect or the link breaks.
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)

# The errors after which the connection is gone: a lost link (class 08) or the server ending
# the session (57P01 at a restart, 57P02, 57P03).
_DISCONNECTS = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
)


def _as_sqlalchemy_error(exc: Exception) -> Exception:
    """A driver error as the SQLAlchemy error the service's handlers know, as SQLAlchemy's
    own asyncpg dialect would report it: after a disconnect, an invalidated one (the search
    runs again; a lasting outage answers 503); a PostgreSQL error as an OperationalError
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


async def active_in_cells(
    reader: Reader,
    ranges: Sequence[tuple[str, str]],
    station_type: str | None = None,
    *,
    box: Box | None = None,
    amenities: Sequence[str] = (),
) -> list[Candidate]:
    """Active stations whose r7 cell is in one of the (lo, hi) ranges (lo == hi: that cell);
    with `box`, only those inside it; with `amenities`, only those that offer them all."""
    rows: list[Candidate] = []
    for start in range(0, len(ranges), _CHUNK):
        chunk = ranges[start : start + _CHUNK]
        shape, values = _shape_and_values(chunk, station_type, box, amenities)
        if isinstance(reader, AsyncSession | AsyncConnection):
            result = await reader.execute(_statement(*shape), values)
            rows.extend(Candidate._make(row) for row in result.all())
        else:
            sql, names = _postgres_sql(*shape)
            records = await reader.fetch(sql, *[values[name] for name in names])
            rows.extend(_candidate(record) for record in records)
    return rows


def _candidate(record: asyncpg.Record) -> Candidate:
    """A row read by asyncpg itself: the JSON list comes as its text (SQLAlchemy's JSON type
    decodes it on the other path)."""
    id_, name, station_type, address, lon, lat, h3_r7, amenities, hours, timezone = record
    return Candidate(
        id_, name, station_type, address, lon, lat, h3_r7, json.loads(amenities), hours, timezone
    )


def candidates_query(
    ranges: Sequence[tuple[str, str]],
    station_type: str | None = None,
    *,
    box: Box | None = None,
    amenities: Sequence[str] = (),
) -> Select[*tuple[Any, ...]]:
    """The statement of `active_in_cells` for at most a chunk of ranges, values bound (for
    EXPLAIN)."""
    shape, values = _shape_and_values(ranges, station_type, box, amenities)
    return _statement(*shape).params(values)


# A statement's shape: (cells, spans, typed, boxed, amenities), the arguments of `_statement`.
Shape = tuple[int, int, bool, bool, int]


def _shape_and_values(
    ranges: Sequence[tuple[str, str]],
    station_type: str | None,
    box: Box | None,
    amenities: Sequence[str],
) -> tuple[Shape, dict[str, Any]]:
    exact = [lo for lo, hi in ranges if lo == hi]
    spans = [(lo, hi) for lo, hi in ranges if lo != hi]
    codes = sorted(set(amenities))
    shape = (len(exact), len(spans), station_type is not None, box is not None, len(codes))
    values: dict[str, Any] = {"status": StationStatus.active.value}
    for i, cell in enumerate(exact):
        values[f"cell{i}"] = cell
    for i, (lo, hi) in enumerate(spans):
        values[f"lo{i}"], values[f"hi{i}"] = lo, hi
    if station_type is not None:
        values["station_type"] = station_type
    if box is not None:
        values["west"], values["south"], values["east"], values["north"] = box
    for i, code in enumerate(codes):
        values[f"amenity{i}"] = _quoted_pattern(code)
    return shape, values


# LIKE's escape character in the amenity patterns.
_ESCAPE = "/"


def _quoted_pattern(code: str) -> str:
    """A LIKE pattern for `"code"` anywhere in the stored JSON list: quoted, so that no code
    matches inside another, and with LIKE's wildcards (`_` is in most codes) escaped."""
    literal = (
        code.replace(_ESCAPE, _ESCAPE * 2).replace("%", _ESCAPE + "%").replace("_", _ESCAPE + "_")
    )
    return f'%"{literal}"%'


@lru_cache(maxsize=256)
def _statement(
    exact: int, spans: int, typed: bool, boxed: bool, amenities: int
) -> Select[*tuple[Any, ...]]:
    """The candidates statement of one shape, its values as bound parameters, built once: a
    search then pays neither for building it nor for SQLAlchemy's compiling it (its cache key
    is memoised on the object), and PostgreSQL sees a few distinct statements, prepared once
    per connection.

    `h3_r7 IN (…)` holds whole r7 cells, `h3_r7 BETWEEN lo AND hi` coarser ones (the r7
    children of a coarser cell are one contiguous run of the index). The cells find the rows
    through the index; the box and the amenities filter the rows found, so that rows the
    search would discard are neither sent nor decoded. An amenity is a text match on the
    stored JSON list (alike on PostgreSQL's json and SQLite's text); callers still check the
    decoded list.
    """
    cells: list[ColumnElement[bool]] = []
    if exact:
        # One parameter per cell rather than an "expanding" list, which SQLAlchemy would
        # render anew at every execution: a circle meets only a few cells, so few shapes.
        cells.append(Station.h3_r7.in_([bindparam(f"cell{i}") for i in range(exact)]))
    cells += [Station.h3_r7.between(bindparam(f"lo{i}"), bindparam(f"hi{i}")) for i in range(spans)]
    statement = select(*_COLUMNS).where(
        or_(*cells) if len(cells) > 1 else cells[0],
        Station.status == bindparam("status"),
    )
    if typed:
        statement = statement.where(Station.station_type == bindparam("station_type"))
    if boxed:
        statement = statement.where(
            Station.lat.between(bindparam("south"), bindparam("north")),
            Station.lon.between(bindparam("west"), bindparam("east")),
        )
    for i in range(amenities):
        text = cast(Station.amenities, String)
        statement = statement.where(text.like(bindparam(f"amenity{i}"), escape=_ESCAPE))
    return statement


_POSTGRES = pg_asyncpg.dialect()


@lru_cache(maxsize=256)
def _postgres_sql(
    exact: int, spans: int, typed: bool, boxed: bool, amenities: int
) -> tuple[str, tuple[str, ...]]:
    """`_statement` of one shape as asyncpg runs it: its text and its parameters' names in
    order ($1, $2, ...), compiled once by SQLAlchemy's asyncpg dialect."""
    compiled = _statement(exact, spans, typed, boxed, amenities).compile(dialect=_POSTGRES)
    return compiled.string, tuple(compiled.positiontup or ())
