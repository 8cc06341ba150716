"""Nearby queries: active stations in a set of H3 cells, through the (h3_r7, status, lat, lon)
index."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, String, bindparam, cast, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gonghui_shared import reads
from gonghui_shared.reads import Reader
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
        found = await reads.fetch(reader, _statement(*shape), values)
        if isinstance(reader, AsyncSession | AsyncConnection):
            rows.extend(Candidate._make(row) for row in found)
        else:
            rows.extend(_candidate(record) for record in found)
    return rows


def _candidate(record: Sequence[Any]) -> Candidate:
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
