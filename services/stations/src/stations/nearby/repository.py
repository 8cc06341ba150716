"""Nearby queries: active stations in a set of H3 cells, through the (h3_r7, status, lat, lon)
index."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import ColumnElement, Select, String, bindparam, cast, or_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine

from gonghui_shared.db import Database
from gonghui_shared.settings import ServiceSettings
from stations.stations.models import Station, StationStatus


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

    On PostgreSQL an engine of its own, unlike the service's: in autocommit (no BEGIN and
    COMMIT around a search, two round trips fewer) and without the pre-ping, which on asyncpg
    is three more round trips (BEGIN, a ping, ROLLBACK) per checkout. Together they were most
    of a search's cost. Instead of pinging, a search that meets a connection that died
    (a database restart, a failover) runs again: SQLAlchemy then replaces every connection
    older than the failure, and a search only reads, so running it twice is harmless.
    It adds `db_pool_size` connections to the service's; while searches use them, the
    service's own pool stays idle.

    SQLite (tests, development) reads through the service's own engine: nothing to save.
    """

    def __init__(self, db: Database, settings: ServiceSettings) -> None:
        self._own = db.dialect == "postgresql"
        self._engine = (
            create_async_engine(
                db.url,
                isolation_level="AUTOCOMMIT",
                # The service's pool size, and no overflow: an overflow connection is closed
                # when returned, which under load means a connect (and statements prepared
                # anew) for many searches; more searches than connections wait their turn
                # (the database has only so many cores to run them on anyway).
                pool_size=settings.db_pool_size,
                max_overflow=0,
                pool_timeout=settings.db_pool_timeout,
                connect_args={"timeout": settings.db_connect_timeout},
            )
            if self._own
            else db.engine
        )

    async def run(self, search: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """`search(connection)`, once more on a fresh connection if the first one was dead."""
        try:
            async with self._engine.connect() as conn:
                return await search(conn)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        async with self._engine.connect() as conn:
            return await search(conn)

    async def dispose(self) -> None:
        if self._own:
            await self._engine.dispose()


async def active_in_cells(
    session: AsyncSession | AsyncConnection,
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
        statement, values = _statement_and_values(chunk, station_type, box, amenities)
        result = await session.execute(statement, values)
        rows.extend(Candidate._make(row) for row in result.all())
    return rows


def candidates_query(
    ranges: Sequence[tuple[str, str]],
    station_type: str | None = None,
    *,
    box: Box | None = None,
    amenities: Sequence[str] = (),
) -> Select[*tuple[Any, ...]]:
    """The statement of `active_in_cells` for at most a chunk of ranges, values bound (for
    EXPLAIN)."""
    statement, values = _statement_and_values(ranges, station_type, box, amenities)
    return statement.params(values)


def _statement_and_values(
    ranges: Sequence[tuple[str, str]],
    station_type: str | None,
    box: Box | None,
    amenities: Sequence[str],
) -> tuple[Select[*tuple[Any, ...]], dict[str, Any]]:
    exact = [lo for lo, hi in ranges if lo == hi]
    spans = [(lo, hi) for lo, hi in ranges if lo != hi]
    codes = sorted(set(amenities))
    statement = _statement(
        len(exact), len(spans), station_type is not None, box is not None, len(codes)
    )
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
    return statement, values


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
