"""Nearby search: the 15-minute union service circle (15分钟工会服务圈).

How it stays fast with 100,000 stations: every station stores its H3 cell at resolution 7
(`h3_r7`, ~1.4 km edge, indexed together with `status`, `lat` and `lon`). A search turns the
circle into the few cells that can hold a point of it (`covering_cells`) and asks the
database for the active stations in those cells (an index lookup, never a scan) that lie in
the circle's bounding box (checked on the index entries: a 15-minute circle meets 3 to 8 r7
cells, 15-40 km², but its box is 5 km²) and offer the amenities asked for. Only those rows
are sent; the exact great-circle distance is computed in Python for them, and opening hours
only for the page's rows. What a result says of the station itself (location in both datums,
map links) is computed once per version of the station and cached.

Large circles use coarser cells (r6 from ~5.6 km, r5 from ~15 km): the r7 children of a
coarser cell form one contiguous run of r7 ids, so each coarse cell becomes one
`h3_r7 BETWEEN lo AND hi` range on the same index; the number of ranges stays in the dozens
at any radius up to the 20 km bound.

A page needs only the nearest `limit + 1` matches, so a search looks in growing circles
(1.5 km beyond the cursor, then doubling up to the radius) and stops at the first that holds
them: a 2-hour circle in the middle of a city costs about what a 15-minute one does.

Results are ordered by (distance, id); the cursor carries the last pair (and the instant
`open_now` is evaluated at, so every page of one search answers the same question).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

import h3
import opening_hours
from h3.api import basic_int as h3_int
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.clock import CHINA
from gonghui_shared.errors import Unprocessable
from gonghui_shared.pagination import InvalidCursor
from stations import geo, hours
from stations.config import StationsSettings
from stations.nearby import repository
from stations.nearby.repository import Candidate, Reader
from stations.nearby.schemas import DEFAULT_MINUTES, MAX_MINUTES, MAX_RADIUS_M
from stations.stations import amenities as vocabulary
from stations.stations.models import StationType

DEFAULT_SPEED_KMH: float = StationsSettings.model_fields["walking_speed_kmh"].default


# The first circle searched, beyond the cursor: holds any circle up to 20 minutes' walk at
# once, so the default 15-minute search is one query.
_FIRST_STEP_M = 1500.0


class RadiusAndMinutes(Unprocessable):
    code = "radius_and_minutes"
    message = "Give either radius_m or minutes, not both"
    message_zh = "radius_m 与 minutes 只能给出其一"


class RadiusTooLarge(Unprocessable):
    code = "radius_too_large"
    message = f"The search radius may not exceed {MAX_RADIUS_M:.0f} m"
    message_zh = f"搜索半径不能超过 {MAX_RADIUS_M:.0f} 米"


class UnknownAmenity(Unprocessable):
    code = "unknown_amenity"
    message = "Unknown amenity code"
    message_zh = "未知的设施代码"


# --- the cells that cover a circle ----------------------------------------------------------

_AVG_EDGE_M = {res: h3.average_hexagon_edge_length(res, "m") for res in range(8)}
# The shortest hexagon edge anywhere is ~0.71 of the average at resolutions 3-7 (measured over
# the globe); 0.65 leaves a margin, so the grid disk below always holds the whole circle.
_MIN_EDGE_FACTOR = 0.65
# The farthest a point of an r7 cell lies from its centre: the longest edge is ~1.10 of the
# average (measured), and a hexagon's vertices are one edge from its centre.
_R7_REACH_M = 1.2 * _AVG_EDGE_M[7]
# A circle of up to 4 average edges meets a few dozen cells of a resolution at most.
_EDGES_PER_RADIUS = 4.0


def resolution_for(radius_m: float) -> int:
    """The finest resolution (at most 7, the stored one) whose cells are large enough that a
    circle of `radius_m` meets only a few dozen: r7 up to ~5.6 km, r6 ~15 km, r5 ~39 km."""
    for res in range(7, 0, -1):
        if radius_m <= _EDGES_PER_RADIUS * _AVG_EDGE_M[res]:
            return res
    return 0


def _unit(lat: float, lon: float) -> tuple[float, float, float]:
    """A point as a unit vector: the angle between two of them (their dot product's arc
    cosine) is the great-circle distance of `geo.distance_m` over the Earth's radius."""
    phi, lam = math.radians(lat), math.radians(lon)
    cos_phi = math.cos(phi)
    return cos_phi * math.cos(lam), cos_phi * math.sin(lam), math.sin(phi)


@lru_cache(maxsize=65_536)
def _centre_and_reach(cell: int) -> tuple[str, float, float, float, float]:
    """The cell's id, its centre as a unit vector, and how far the cell extends from it (the
    farthest vertex) as an angle, with 1% and 1 m of slack: edges are arcs, vertices only
    sample them. Cached: searches around one town keep meeting the same few hundred cells."""
    x, y, z = _unit(*h3_int.cell_to_latlng(cell))
    vertices = (_unit(v_lat, v_lon) for v_lat, v_lon in h3_int.cell_to_boundary(cell))
    farthest = min(x * vx + y * vy + z * vz for vx, vy, vz in vertices)
    reach_m = math.acos(min(1.0, farthest)) * geo.EARTH_RADIUS_M
    return h3.int_to_str(cell), x, y, z, (reach_m * 1.01 + 1.0) / geo.EARTH_RADIUS_M


def covering_cells(lon: float, lat: float, radius_m: float) -> list[str]:
    """The H3 cells (at `resolution_for(radius_m)`) that may hold a point within `radius_m`.

    The grid disk of k rings around the centre cell contains every point within
    k x 1.5 x (shortest edge) - (cell size) of the centre, so k = ceil(r / min edge) + 1 holds
    the whole circle; its cells that cannot reach the circle (centre farther than radius +
    the cell's own reach) are dropped, which leaves 3-8 cells for a 15-minute circle.
    `tests/nearby/test_cells.py` checks the cover on random circles, boundary points included.
    The disk is walked with h3's integer ids (a 15-minute disk has 37 cells, and the string
    API costs several times more) and cached per centre cell with each cell's centre as a
    unit vector, so that the test of a cell is a dot product against the cosine of the angle
    it may be off by (several times cheaper than a haversine).
    """
    res = resolution_for(radius_m)
    if res < geo.H3_COARSE:
        # H3 nests only approximately: a station's r7 cell belongs to the coarse cell that holds
        # the r7 cell's centre, which can lie outside the circle by up to an r7 cell's reach.
        radius_m += _R7_REACH_M
    k = math.ceil(radius_m / (_MIN_EDGE_FACTOR * _AVG_EDGE_M[res])) + 1
    px, py, pz = _unit(lat, lon)
    angle = radius_m / geo.EARTH_RADIUS_M  # at most a few thousandths: cos falls all the way
    found = [
        cell
        for cell, x, y, z, reach in _disk(h3_int.latlng_to_cell(lat, lon, res), k)
        if px * x + py * y + pz * z >= math.cos(angle + reach)
    ]
    return sorted(found)


@lru_cache(maxsize=8192)
def _disk(origin: int, k: int) -> tuple[tuple[str, float, float, float, float], ...]:
    """The cells within `k` rings of `origin`, each as `_centre_and_reach` has it. Cached (a
    few hundred bytes an entry: the cells' tuples are _centre_and_reach's): searches from
    one town start from the same few cells."""
    return tuple(_centre_and_reach(cell) for cell in h3_int.grid_disk(origin, k))


_RES_SHIFT = 52
_DIGIT_BITS = 3
_MAX_DIGITS = 15


def r7_range(cell: str) -> tuple[str, str]:
    """The first and last r7 id under a cell of resolution <= 7 (itself twice at r7).

    An H3 id holds the resolution, the base cell, then one 3-bit digit per resolution (7 =
    unused). The r7 descendants of a cell share everything but digits res+1..7, which run from
    0 to 6, so they are exactly the r7 ids between the two returned here, in numeric order;
    r7 ids are all 15 hex digits, so string order is numeric order too.
    """
    res = h3.get_resolution(cell)
    if res == geo.H3_COARSE:
        return cell, cell
    n = h3.str_to_int(cell)
    n = (n & ~(0xF << _RES_SHIFT)) | (geo.H3_COARSE << _RES_SHIFT)
    lo = hi = n
    for digit in range(res + 1, geo.H3_COARSE + 1):
        shift = _DIGIT_BITS * (_MAX_DIGITS - digit)
        lo &= ~(0b111 << shift)
        hi = (hi & ~(0b111 << shift)) | (6 << shift)
    return h3.int_to_str(lo), h3.int_to_str(hi)


def r7_ranges(cells: Iterable[str]) -> list[tuple[str, str]]:
    return sorted({r7_range(cell) for cell in cells})


def parent_at(h3_r7: str, res: int) -> str:
    """The cell of resolution `res` holding a station's r7 cell."""
    return h3_r7 if res == geo.H3_COARSE else h3.cell_to_parent(h3_r7, res)


async def active_within(
    session: Reader,
    lon: float,
    lat: float,
    radius_m: float,
    station_type: str | None = None,
    amenities: Sequence[str] = (),
) -> list[tuple[float, Candidate]]:
    """(distance, station row) of every active station within `radius_m` of a WGS-84 point,
    unordered; with `amenities`, only those offering them all.

    The database gets the cells (the index) and the circle's bounding box and amenities (row
    filters), so it returns little more than the circle's matches (the box's corners hold
    ~21% of it); the exact distance is computed here for those only."""
    ranges = r7_ranges(covering_cells(lon, lat, radius_m))
    box = geo.bounding_box(lon, lat, radius_m)
    rows = await repository.active_in_cells(
        session, ranges, station_type, box=box, amenities=amenities
    )
    found = []
    for row in rows:
        d = geo.distance_m(lon, lat, row.lon, row.lat)
        if d <= radius_m:
            found.append((d, row))
    return found


async def nearest(
    session: AsyncSession, lon: float, lat: float, *, start_m: float, max_m: float
) -> tuple[float, Candidate] | None:
    """The nearest active station within `max_m`, searching circles that double from
    `start_m`: each step is an index lookup, never a scan of every station."""
    radius = start_m
    while True:
        radius = min(radius, max_m)
        found = await active_within(session, lon, lat, radius)
        if found:
            return min(found, key=lambda hit: (hit[0], hit[1].id))
        if radius >= max_m:
            return None
        radius *= 2


# --- the search -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Circle:
    radius_m: float
    minutes: float


def circle(radius_m: float | None, minutes: float | None, speed_kmh: float) -> Circle:
    """The radius searched: given, or walked in `minutes` (15 by default) at `speed_kmh`."""
    if radius_m is not None and minutes is not None:
        raise RadiusAndMinutes(details={"field": "radius_m"})
    if minutes is not None and not 0 < minutes <= MAX_MINUTES:
        raise Unprocessable(
            f"minutes must be in (0, {MAX_MINUTES:.0f}]",
            f"minutes 应在 (0, {MAX_MINUTES:.0f}] 之内",
            details={"field": "minutes"},
        )
    if radius_m is None:
        minutes = DEFAULT_MINUTES if minutes is None else minutes
        radius_m = geo.walking_distance_m(minutes, speed_kmh)
        field = "minutes"
    else:
        minutes = geo.walking_minutes(radius_m, speed_kmh)
        field = "radius_m"
    if not 0 < radius_m <= MAX_RADIUS_M:
        raise RadiusTooLarge(details={"field": field, "radius_m": radius_m})
    return Circle(radius_m=radius_m, minutes=minutes)


def _encode_cursor(distance: float, station_id: str, at: datetime) -> str:
    raw = json.dumps({"d": distance, "id": station_id, "at": at.isoformat()}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str, datetime]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        distance, station_id = float(data["d"]), str(data["id"])
        at = datetime.fromisoformat(data["at"])
    except (binascii.Error, ValueError, TypeError, KeyError) as exc:
        raise InvalidCursor(details={"field": "cursor"}) from exc
    if not math.isfinite(distance) or at.tzinfo is None:
        raise InvalidCursor(details={"field": "cursor"})
    return distance, station_id, at


# ParserError exists at runtime but not in the library's type stub.
_PARSER_ERROR: type[Exception] = opening_hours.ParserError  # type: ignore[attr-defined]
_HOURS_ERRORS = (_PARSER_ERROR, ZoneInfoNotFoundError, ValueError)


def _open(row: Candidate, at: datetime) -> bool:
    try:
        return hours.is_open(row.opening_hours, at, row.timezone)
    except _HOURS_ERRORS:
        # Hours are validated when written; a row that still fails counts as closed rather
        # than failing everyone's search.
        return False


def _fill(
    found: list[tuple[float, Candidate]],
    wanted: set[str],
    after: tuple[float, str] | None,
    open_now: bool,
    at: datetime,
    limit: int,
    opened: dict[str, bool],
) -> tuple[list[tuple[float, Candidate, bool]], bool]:
    """The page from the stations `found` in a circle, and whether more match after it.

    The page is final when more match (every station outside the circle is farther than all
    of them) or when the circle is the whole search area. Opening hours are evaluated lazily,
    nearest first, only until the page is full (`opened` remembers them across circles).
    """
    hits = sorted(
        (
            (distance, row)
            for distance, row in found
            if wanted.issubset(row.amenities or ())
            and (after is None or (distance, row.id) > after)
        ),
        key=lambda hit: (hit[0], hit[1].id),
    )
    page: list[tuple[float, Candidate, bool]] = []
    for distance, row in hits:
        is_open = opened.get(row.id)
        if is_open is None:
            is_open = opened[row.id] = _open(row, at)
        if open_now and not is_open:
            continue
        if len(page) == limit:
            return page, True
        page.append((distance, row, is_open))
    return page, False


@lru_cache(maxsize=8192)
def _station_part(
    station_id: str,
    name: str,
    station_type: str,
    address: str | None,
    lon: float,
    lat: float,
    amenities: tuple[str, ...],
    opening_hours: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a result says of the station itself, before and after the per-search fields.

    Computed once per version of a station: the GCJ-02 conversion and the map links cost
    more than the rest of a result together. The key is every value the part is
    made of, so an edited station is a new entry and a stale one is never served.
    """
    gcj02 = geo.wgs84_to_gcj02(lon, lat)
    head = {
        "id": station_id,
        "name": name,
        "station_type": station_type,
        "address": address,
        "location": geo.both(lon, lat, gcj02=gcj02),
        "amenities": list(amenities),
        "opening_hours": opening_hours,
    }
    return head, {"navigation": geo.deep_links(lon, lat, name, gcj02=gcj02)}


def _item(distance: float, row: Candidate, open_now: bool, speed_kmh: float) -> dict[str, Any]:
    """One result, shaped as `NearbyStation` (its fields in its order)."""
    head, tail = _station_part(
        row.id,
        row.name,
        row.station_type,
        row.address,
        row.lon,
        row.lat,
        tuple(row.amenities or ()),
        row.opening_hours,
    )
    return {
        **head,
        "open_now": open_now,
        "distance_m": round(distance, 1),
        "walking_minutes": round(geo.walking_minutes(distance, speed_kmh), 1),
        **tail,
    }


async def search(
    session: Reader,
    *,
    lon: float,
    lat: float,
    crs: geo.Crs | str = geo.Crs.wgs84,
    radius_m: float | None = None,
    minutes: float | None = None,
    amenities: Sequence[str] = (),
    open_now: bool = False,
    at: datetime | None = None,
    station_type: StationType | str | None = None,
    cursor: str | None = None,
    limit: int = 20,
    speed_kmh: float = DEFAULT_SPEED_KMH,
) -> dict[str, Any]:
    """Active stations within walking distance of a point, nearest first (ties by id): a
    `NearbyPage` as plain data, ready for `to_json`.

    `amenities`: a station must offer all of them. `open_now`: only stations open at `at`
    (default now; a naive `at` is Beijing time) in their own time zone.
    """
    area = circle(radius_m, minutes, speed_kmh)
    if unknown := vocabulary.unknown(list(amenities)):
        raise UnknownAmenity(
            f"Unknown amenity: {', '.join(unknown)}",
            f"未知的设施代码：{', '.join(unknown)}",
            details={"field": "amenity", "unknown": unknown, "allowed": list(vocabulary.CODES)},
        )
    w_lon, w_lat = geo.to_wgs84(lon, lat, crs)
    after: tuple[float, str] | None = None
    if cursor:
        after_d, after_id, at = _decode_cursor(cursor)
        after = (after_d, after_id)
    if at is None:
        at = datetime.now(UTC)
    elif at.tzinfo is None:
        at = at.replace(tzinfo=CHINA)

    type_filter = StationType(station_type).value if station_type else None
    wanted = set(amenities)
    opened: dict[str, bool] = {}
    # Growing circles: a page needs only the nearest limit + 1 matches, so a 2-hour circle in
    # a city stops at the first circle that holds them instead of fetching thousands.
    reach = min(area.radius_m, (after[0] if after else 0.0) + _FIRST_STEP_M)
    while True:
        found = await active_within(session, w_lon, w_lat, reach, type_filter, sorted(wanted))
        page, more = _fill(found, wanted, after, open_now, at, limit, opened)
        if more or reach >= area.radius_m:
            break
        reach = min(area.radius_m, reach * 2)

    last = page[-1] if page else None
    return {
        "center": geo.both(w_lon, w_lat),
        "walking_speed_kmh": speed_kmh,
        "minutes": round(area.minutes, 2),
        "radius_m": round(area.radius_m, 1),
        "open_at": at,
        "items": [_item(d, row, is_open, speed_kmh) for d, row, is_open in page],
        "next_cursor": _encode_cursor(last[0], last[1].id, at) if more and last else None,
    }
