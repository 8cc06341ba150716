"""Coverage of the 15-minute union service circle (15分钟工会服务圈) over an org subtree.

The units are the village and community unions (村（社区）工会) of the subtree, located where
membership's org events put them. A unit is covered when an active station (of any org: a
villager walks to the nearest one, whoever runs it) lies within `minutes` of walking.

One indexed query answers every unit at once: the union of the H3 cells covering each unit's
circle, bucketed back by cell. Only the uncovered units search further, each in doubling
circles (also index lookups), for the nearest station to report, up to 50 km.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.auth import Principal
from gonghui_shared.permissions import Action
from stations import geo
from stations.coverage import repository
from stations.coverage.schemas import CoverageRead, NearestStation, UncoveredUnit, UnlocatedUnit
from stations.nearby import repository as nearby_repository
from stations.nearby import service as nearby
from stations.nearby.repository import Candidate
from stations.replicas.service import org_in_scope

# How far an uncovered unit's nearest station is looked for; beyond it, `nearest_station` is null.
NEAREST_MAX_M = 50_000.0


def _nearest_read(hit: tuple[float, Candidate] | None, speed_kmh: float) -> NearestStation | None:
    if hit is None:
        return None
    distance, row = hit
    return NearestStation(
        id=row.id,
        name=row.name,
        distance_m=round(distance, 1),
        walking_minutes=round(geo.walking_minutes(distance, speed_kmh), 1),
    )


async def _nearest_within(
    session: AsyncSession, points: dict[str, tuple[float, float]], radius_m: float
) -> dict[str, tuple[float, Candidate] | None]:
    """The nearest active station within `radius_m` of each unit's point (None if none), from
    one query over the union of their cells."""
    res = nearby.resolution_for(radius_m)
    covers = {key: nearby.covering_cells(lon, lat, radius_m) for key, (lon, lat) in points.items()}
    cells = set().union(*covers.values()) if covers else set()
    rows = await nearby_repository.active_in_cells(session, nearby.r7_ranges(cells))
    by_cell: dict[str, list[Candidate]] = defaultdict(list)
    for row in rows:
        by_cell[nearby.parent_at(row.h3_r7, res)].append(row)
    found: dict[str, tuple[float, Candidate] | None] = {}
    for key, (lon, lat) in points.items():
        hits = [
            (geo.distance_m(lon, lat, row.lon, row.lat), row)
            for cell in covers[key]
            for row in by_cell.get(cell, ())
        ]
        inside = [hit for hit in hits if hit[0] <= radius_m]
        found[key] = min(inside, key=lambda hit: (hit[0], hit[1].id)) if inside else None
    return found


async def coverage(
    session: AsyncSession,
    principal: Principal,
    org_id: str,
    *,
    minutes: float = nearby.DEFAULT_MINUTES,
    speed_kmh: float = nearby.DEFAULT_SPEED_KMH,
) -> CoverageRead:
    """Which units of the org's subtree have an active station within `minutes` of walking."""
    org = await org_in_scope(session, principal, org_id, Action.stations_read)
    area = nearby.circle(None, minutes, speed_kmh)
    units = list(await repository.units_in(session, org.path))
    located = {
        unit.id: (unit.lon, unit.lat)
        for unit in units
        if unit.lon is not None and unit.lat is not None
    }
    within = await _nearest_within(session, located, area.radius_m)

    uncovered = []
    for unit in units:
        if unit.id not in located or within[unit.id] is not None:
            continue
        lon, lat = located[unit.id]
        hit = await nearby.nearest(
            session, lon, lat, start_m=area.radius_m * 2, max_m=NEAREST_MAX_M
        )
        uncovered.append(
            UncoveredUnit(
                org_id=unit.id,
                name=unit.name,
                region_code=unit.region_code,
                lon=lon,
                lat=lat,
                nearest_station=_nearest_read(hit, speed_kmh),
            )
        )
    covered = len(located) - len(uncovered)
    return CoverageRead(
        org_id=org.id,
        minutes=area.minutes,
        radius_m=round(area.radius_m, 1),
        walking_speed_kmh=speed_kmh,
        units_total=len(units),
        units_located=len(located),
        covered=covered,
        rate=round(covered / len(located), 4) if located else None,
        uncovered=uncovered,
        unlocated=[
            UnlocatedUnit(org_id=unit.id, name=unit.name, region_code=unit.region_code)
            for unit in units
            if unit.id not in located
        ],
    )
