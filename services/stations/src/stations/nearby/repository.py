"""Nearby queries: active stations in a set of H3 cells, through the (h3_r7, status) index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

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


def _cell_condition(ranges: Sequence[tuple[str, str]]) -> ColumnElement[bool]:
    """`h3_r7 IN (…)` for whole r7 cells, `h3_r7 BETWEEN lo AND hi` for coarser ones (the r7
    children of a coarser cell are one contiguous run of the index)."""
    exact = [lo for lo, hi in ranges if lo == hi]
    conditions: list[ColumnElement[bool]] = [
        Station.h3_r7.between(lo, hi) for lo, hi in ranges if lo != hi
    ]
    if exact:
        conditions.insert(0, Station.h3_r7.in_(exact))
    return or_(*conditions) if len(conditions) > 1 else conditions[0]


async def active_in_cells(
    session: AsyncSession, ranges: Sequence[tuple[str, str]], station_type: str | None = None
) -> list[Candidate]:
    """Active stations whose r7 cell is in one of the (lo, hi) ranges (lo == hi: that cell)."""
    rows: list[Candidate] = []
    for start in range(0, len(ranges), _CHUNK):
        query = candidates_query(ranges[start : start + _CHUNK], station_type)
        rows.extend(Candidate._make(row) for row in (await session.execute(query)).all())
    return rows


def candidates_query(
    ranges: Sequence[tuple[str, str]], station_type: str | None = None
) -> Select[*tuple[Any, ...]]:
    """The statement of `active_in_cells` for at most a chunk of ranges (also for EXPLAIN)."""
    query = select(*_COLUMNS).where(
        _cell_condition(ranges), Station.status == StationStatus.active.value
    )
    if station_type is not None:
        query = query.where(Station.station_type == station_type)
    return query
