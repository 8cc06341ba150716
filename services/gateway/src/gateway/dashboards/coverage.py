"""The 15-minute service circle, kept from events: each village's nearest active station.

`dash_village_cover` holds, per active-or-not village union with coordinates, the distance
to the nearest active station (run by any org) within `NEAREST_MAX_M`, or null. The
handlers keep it: an org event re-derives its own row; a station that opens, moves,
changes status or closes recomputes the villages around its old and its new place. A
dashboard then reads "covered" as `nearest_m <= radius` (any radius up to
`NEAREST_MAX_M`), never a station.

Which stations count for a village is the rule the dashboards always had (and stations'
own search): an active station in the box of `NEAREST_MAX_M` of latitude and twice that
of longitude around the village (enough below 60° of latitude), at a great-circle distance
of at most `NEAREST_MAX_M`. To find them without scanning a band of the province, stations
and villages carry a `cell`: a 0.05° by 0.05° square of latitude and longitude. The box
around a place lies in at most 3 by 5 cells, so a village's candidates, and a station's
villages, are one indexed `cell IN (...)` each. A plain degree grid rather than H3 hexagons:
the box is in degrees, so the cells covering it are exact, with no margin to estimate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.dashboards.locks import advisory_locks
from gateway.dashboards.models import DashOrg, DashStation, DashVillageCover

EARTH_RADIUS_M = 6371008.8  # mean Earth radius, as stations measures (IUGG R1)
METRES_PER_DEGREE_LAT = math.pi * EARTH_RADIUS_M / 180
# How far a village's nearest station is looked for: the map's limit, and the largest
# circle the figures can answer from the kept distances.
NEAREST_MAX_M = 5_000.0
# The box around a place, in degrees: longitude degrees shrink with latitude, twice the
# margin is enough up to 60°.
MARGIN_LAT = NEAREST_MAX_M / METRES_PER_DEGREE_LAT
MARGIN_LON = 2 * MARGIN_LAT
CELL_DEGREES = 0.05
# cell = (lat index + 2000) * 10_000 + (lon index + 4000): one sortable integer.
_LAT_OFFSET, _LON_OFFSET, _ROW = 2000, 4000, 10_000

# Advisory locks by region, 10 by 10 cells (0.5°): `_lock_regions`.
_REGION_CELLS = 10
_LOCK_CLASS = 0x64617368  # "dash": the first key of the two-key advisory locks

VILLAGE_UNION = "village_union"
ACTIVE = "active"

Place = tuple[float, float]  # lon, lat


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle (haversine) distance in metres, as stations computes it."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((phi2 - phi1) / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _index(degrees: float) -> int:
    return math.floor(degrees / CELL_DEGREES)


def cell_of(lon: float, lat: float) -> int:
    return (_index(lat) + _LAT_OFFSET) * _ROW + _index(lon) + _LON_OFFSET


def cells_around(lon: float, lat: float) -> list[int]:
    """The cells that cover the box around a place (every candidate is in one of them)."""
    rows = range(_index(lat - MARGIN_LAT), _index(lat + MARGIN_LAT) + 1)
    columns = range(_index(lon - MARGIN_LON), _index(lon + MARGIN_LON) + 1)
    return [(r + _LAT_OFFSET) * _ROW + c + _LON_OFFSET for r in rows for c in columns]


def _region(cell: int) -> int:
    row, column = divmod(cell, _ROW)
    return (row // _REGION_CELLS) * _ROW + column // _REGION_CELLS


async def _lock_regions(session: AsyncSession, cells: Iterable[int]) -> None:
    """Serialise the changes that can affect one another: a station's villages are in the
    cells around it, a village's stations in the cells around it, and the relation is
    symmetric; so a station event locks the regions of the cells around its places, a
    village event those of its own cells, before either reads. Otherwise a station opened
    while its village is announced could be missed by both."""
    await advisory_locks(session, region_locks(cells))


def region_locks(cells: Iterable[int]) -> list[tuple[int, int]]:
    """The advisory lock keys of the regions of `cells`."""
    return sorted({(_LOCK_CLASS, _region(cell)) for cell in cells})


def nearest_m(village: Place, stations: Iterable[Place]) -> float | None:
    """Distance to the nearest of `stations` in the village's box, within NEAREST_MAX_M."""
    lon, lat = village
    best: float | None = None
    for s_lon, s_lat in stations:
        if abs(s_lat - lat) > MARGIN_LAT or abs(s_lon - lon) > MARGIN_LON:
            continue
        d = distance_m(lon, lat, s_lon, s_lat)
        if d <= NEAREST_MAX_M and (best is None or d < best):
            best = d
    return best


async def _active_stations_in(session: AsyncSession, cells: set[int]) -> list[Place]:
    if not cells:
        return []
    query = select(DashStation.lon, DashStation.lat).where(
        DashStation.cell.in_(sorted(cells)), DashStation.status == ACTIVE
    )
    return [(lon, lat) for lon, lat in await session.execute(query)]


async def _set_nearest(session: AsyncSession, changed: dict[str, float | None]) -> None:
    """Write the villages' new distances: one statement, in one order (no deadlocks)."""
    if changed:
        await session.execute(
            update(DashVillageCover),
            [{"org_id": k, "nearest_m": v} for k, v in sorted(changed.items())],
        )


async def _recompute(session: AsyncSession, villages: list[Any]) -> dict[str, float | None]:
    """Each village's nearest active station (rows with org_id, lon, lat), from scratch."""
    if not villages:
        return {}
    cells = {cell for v in villages for cell in cells_around(v.lon, v.lat)}
    stations = await _active_stations_in(session, cells)
    return {v.org_id: nearest_m((v.lon, v.lat), stations) for v in villages}


def village_place(org: DashOrg | None) -> Place | None:
    """Where a village union is, if it is one and located: exactly the orgs with a row."""
    if org is None or org.org_type != VILLAGE_UNION or org.lon is None or org.lat is None:
        return None
    return (org.lon, org.lat)


async def org_changed(session: AsyncSession, org_id: str, was: Place | None) -> None:
    """Re-derive an org's row after an org event; `was` is `village_place` before it."""
    now = village_place(await session.get(DashOrg, org_id))
    if now == was:
        return  # not a located village, or one that did not move: nothing to do
    await _lock_regions(session, [cell_of(*place) for place in (was, now) if place is not None])
    if now is None:
        await session.execute(delete(DashVillageCover).where(DashVillageCover.org_id == org_id))
        return
    stations = await _active_stations_in(session, set(cells_around(*now)))
    await session.merge(
        DashVillageCover(
            org_id=org_id,
            cell=cell_of(*now),
            lon=now[0],
            lat=now[1],
            nearest_m=nearest_m(now, stations),
        )
    )
    await session.flush()


def _within_box(village: Any, place: Place) -> float | None:
    """The distance from the village to `place` if it counts as a candidate, else None."""
    if abs(place[1] - village.lat) > MARGIN_LAT or abs(place[0] - village.lon) > MARGIN_LON:
        return None
    d = distance_m(village.lon, village.lat, *place)
    return d if d <= NEAREST_MAX_M else None


async def station_changed(session: AsyncSession, was: Place | None, now: Place | None) -> None:
    """A station stopped being active at `was` and/or became active at `now`. A village
    whose nearest station was the one at `was` is recomputed from the stations around it;
    a village near `now` only compares its distance with what it has."""
    cells = {cell for place in (was, now) if place is not None for cell in cells_around(*place)}
    if not cells:
        return
    await _lock_regions(session, cells)
    await session.flush()  # the station's own new row and place count
    query = select(
        DashVillageCover.org_id,
        DashVillageCover.lon,
        DashVillageCover.lat,
        DashVillageCover.nearest_m,
    ).where(DashVillageCover.cell.in_(sorted(cells)))
    villages = list(await session.execute(query))
    nearest = {v.org_id: v.nearest_m for v in villages}
    if was is not None:  # the very distance kept: that station was (one of) the nearest
        lost = [
            v for v in villages if v.nearest_m is not None and _within_box(v, was) == v.nearest_m
        ]
        nearest.update(await _recompute(session, lost))
    if now is not None:
        for village in villages:
            d = _within_box(village, now)
            kept = nearest[village.org_id]
            if d is not None and (kept is None or d < kept):
                nearest[village.org_id] = d
    await _set_nearest(
        session, {v.org_id: nearest[v.org_id] for v in villages if nearest[v.org_id] != v.nearest_m}
    )


async def rebuild_all(session: AsyncSession) -> None:
    """Derive every row from dash_orgs and dash_stations (the stations' cells too), as the
    handlers would have: for a bulk load, or a read model filled before they existed."""
    stations = [
        {"station_id": station_id, "cell": cell_of(lon, lat)}
        for station_id, lon, lat in await session.execute(
            select(DashStation.station_id, DashStation.lon, DashStation.lat)
        )
    ]
    for start in range(0, len(stations), 500):
        await session.execute(update(DashStation), stations[start : start + 500])
    await session.execute(delete(DashVillageCover))
    by_cell: dict[int, list[Place]] = {}
    active = select(DashStation.lon, DashStation.lat).where(DashStation.status == ACTIVE)
    for s_lon, s_lat in await session.execute(active):
        by_cell.setdefault(cell_of(s_lon, s_lat), []).append((s_lon, s_lat))
    rows: list[dict[str, object]] = []
    for org in await session.scalars(select(DashOrg).where(DashOrg.org_type == VILLAGE_UNION)):
        if (place := village_place(org)) is None:
            continue
        org_id, (lon, lat) = org.id, place
        near = [p for cell in cells_around(lon, lat) for p in by_cell.get(cell, ())]
        rows.append(
            {
                "org_id": org_id,
                "cell": cell_of(lon, lat),
                "lon": lon,
                "lat": lat,
                "nearest_m": nearest_m((lon, lat), near),
            }
        )
    for start in range(0, len(rows), 500):
        await session.execute(insert(DashVillageCover), rows[start : start + 500])
