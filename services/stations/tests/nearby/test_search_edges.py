"""The 15-minute circle at its edges: the radius, H3 cell boundaries, the bounding box, the
amenity pre-filter in SQL, station status and hours, the page's shape, a dead connection."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import h3
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from gonghui_shared.clock import CHINA
from gonghui_shared.ids import new_id
from gonghui_shared.reads import ReadPool
from stations import geo
from stations.nearby import repository
from stations.nearby import service as nearby
from stations.nearby.schemas import NearbyPage
from stations.testing import Api, insert_stations, point_at, station_values

CENTRE = (115.8582, 28.6829)  # Nanchang
HOST = {"id": new_id(), "path": f"/{new_id()}/"}
FIFTEEN_MINUTES_M = 1125.0  # at the default 4.5 km/h


def _station(lon: float, lat: float, **fields: Any) -> dict[str, Any]:
    return station_values(lon, lat, host_org_id=HOST["id"], host_org_path=HOST["path"], **fields)


async def _nearby(api: Api, lon: float, lat: float, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = await api.ok(
        "GET", "/v1/stations/nearby", params={"lon": lon, "lat": lat, "limit": 100, **params}
    )
    return body


async def test_the_fifteen_minute_edge_is_exact_every_way(app: FastAPI, api: Api) -> None:
    """Stations 10 cm inside and outside 1,125 m, all round (north, south, east and west are
    where the bounding box is tight)."""
    inside, outside = [], []
    for bearing in range(0, 360, 15):
        inside.append(_station(*point_at(*CENTRE, bearing, FIFTEEN_MINUTES_M - 0.1)))
        outside.append(_station(*point_at(*CENTRE, bearing, FIFTEEN_MINUTES_M + 0.1)))
    await insert_stations(app.state.runtime, inside + outside)

    page = await _nearby(api, *CENTRE)

    assert page["radius_m"] == FIFTEEN_MINUTES_M
    assert {i["id"] for i in page["items"]} == {s["id"] for s in inside}
    assert all(i["walking_minutes"] == 15.0 for i in page["items"])


async def test_stations_across_h3_cell_boundaries_are_found(app: FastAPI, api: Api) -> None:
    """A query point 5 m from a corner of its r7 cell, where three cells meet: stations all
    round the corner and all round the radius lie in the three cells; every one within the
    radius is found, none beyond it."""
    cell = h3.latlng_to_cell(CENTRE[1], CENTRE[0], geo.H3_COARSE)
    v_lat, v_lon = h3.cell_to_boundary(cell)[0]
    c_lat, c_lon = h3.cell_to_latlng(cell)
    t = 5.0 / geo.distance_m(v_lon, v_lat, c_lon, c_lat)
    here = (v_lon + (c_lon - v_lon) * t, v_lat + (c_lat - v_lat) * t)
    assert h3.latlng_to_cell(here[1], here[0], geo.H3_COARSE) == cell
    inside = [_station(*point_at(v_lon, v_lat, bearing, 30.0)) for bearing in range(0, 360, 30)]
    inside += [_station(*point_at(*here, b, FIFTEEN_MINUTES_M - 1)) for b in range(0, 360, 20)]
    outside = [_station(*point_at(*here, b, FIFTEEN_MINUTES_M + 1)) for b in range(0, 360, 20)]
    await insert_stations(app.state.runtime, inside + outside)
    assert len({r["h3_r7"] for r in inside[:12]}) == 3  # all three cells at the corner

    page = await _nearby(api, *here)

    assert {i["id"] for i in page["items"]} == {r["id"] for r in inside}


async def test_across_the_180th_meridian_without_a_bounding_box(app: FastAPI, api: Api) -> None:
    """Where no lon/lat box holds the circle (here: Fiji, across ±180°), the cells alone
    find the stations."""
    west_of_line = (179.998, -17.0)
    east_of_line = point_at(*west_of_line, 90, 800.0)
    assert east_of_line[0] < 0
    far = point_at(*west_of_line, 270, 1200.0)
    rows = [_station(*east_of_line), _station(*far)]
    await insert_stations(app.state.runtime, rows)
    assert geo.bounding_box(*west_of_line, FIFTEEN_MINUTES_M) is None

    page = await _nearby(api, *west_of_line)

    assert [(i["id"], i["distance_m"]) for i in page["items"]] == [(rows[0]["id"], 800.0)]


async def test_amenities_filter_in_sql_matches_whole_codes_only(app: FastAPI) -> None:
    """The database pre-filters on the stored JSON text: a code matches only whole, `_` is
    not a wildcard, and every listed code is required."""
    near = [point_at(*CENTRE, 45 * n, 100.0 + n) for n in range(6)]
    rows = [
        _station(*near[0], name="water", amenities=["drinking_water"]),
        _station(*near[1], name="both", amenities=["drinking_water", "wifi"]),
        # Not in the vocabulary, but in the text: would match a careless LIKE.
        _station(*near[2], name="x", amenities=["drinkingXwater", "wifi_6"]),
        _station(*near[3], name="prefix", amenities=["drinking_water_hot"]),
        _station(*near[4], name="none", amenities=[]),
        _station(*near[5], name="wifi", amenities=["wifi"]),
    ]
    await insert_stations(app.state.runtime, rows)
    ranges = nearby.r7_ranges(nearby.covering_cells(*CENTRE, 500.0))

    async def names(*codes: str) -> set[str]:
        async with app.state.runtime.db.engine.connect() as conn:
            found = await repository.active_in_cells(conn, ranges, amenities=codes)
        return {row.name for row in found}

    assert await names() == {"water", "both", "x", "prefix", "none", "wifi"}
    assert await names("drinking_water") == {"water", "both"}
    assert await names("wifi") == {"both", "wifi"}
    assert await names("wifi", "drinking_water") == {"both"}


async def test_status_excludes_and_hours_only_flag(app: FastAPI, api: Api) -> None:
    """Suspended and closed stations are never listed; one closed by its hours is listed as
    closed at that moment, and left out when asking for `open_now`."""
    rows = [
        _station(*point_at(*CENTRE, 0, 100), name="open"),
        _station(*point_at(*CENTRE, 0, 200), name="suspended", status="suspended"),
        _station(*point_at(*CENTRE, 0, 300), name="closed", status="closed"),
        _station(*point_at(*CENTRE, 0, 400), name="weekdays", opening_hours="Mo-Fr 08:00-18:00"),
    ]
    await insert_stations(app.state.runtime, rows)
    sunday = datetime(2026, 11, 29, 10, 0, tzinfo=CHINA)
    monday = datetime(2026, 11, 30, 10, 0, tzinfo=CHINA)

    on_sunday = await _nearby(api, *CENTRE, at=sunday.isoformat())
    on_monday = await _nearby(api, *CENTRE, at=monday.isoformat())
    open_on_sunday = await _nearby(api, *CENTRE, at=sunday.isoformat(), open_now="true")

    assert [(i["name"], i["open_now"]) for i in on_sunday["items"]] == [
        ("open", True),
        ("weekdays", False),
    ]
    assert [(i["name"], i["open_now"]) for i in on_monday["items"]] == [
        ("open", True),
        ("weekdays", True),
    ]
    assert [i["name"] for i in open_on_sunday["items"]] == ["open"]


async def test_the_page_is_exactly_a_nearby_page(app: FastAPI, api: Api) -> None:
    """The page is written from plain data: it must be what `NearbyPage` (the documented
    schema) would write, field for field, with no field missing or extra."""
    rows = [
        _station(
            *point_at(*CENTRE, 30 * n, 50.0 + 90 * n),
            name=f"驿站 {n} & <co>",
            address=None if n % 2 else f"南昌市东湖区{n}号",
            amenities=["drinking_water", "phone_charging"][: n % 3],
            opening_hours="Mo-Fr 08:00-18:00" if n % 2 else "24/7",
        )
        for n in range(12)
    ]
    await insert_stations(app.state.runtime, rows)

    for params in ({}, {"limit": 5}, {"crs": "gcj02", "amenity": "drinking_water"}):
        page = await _nearby(api, *CENTRE, **params)
        assert page["items"]
        assert NearbyPage.model_validate(page).model_dump(mode="json") == page
        if "limit" in params:
            assert page["next_cursor"] is not None


async def test_a_search_meeting_a_dead_connection_runs_again(app: FastAPI) -> None:
    reads: ReadPool = app.state.runtime.reads
    calls: list[AsyncConnection] = []

    async def search(conn: AsyncConnection) -> str:
        calls.append(conn)
        if len(calls) == 1:
            raise DBAPIError("SELECT", {}, ConnectionError("gone"), connection_invalidated=True)
        return "found"

    assert await reads.run(search) == "found"
    assert len(calls) == 2

    async def broken(conn: AsyncConnection) -> str:
        raise DBAPIError("SELECT", {}, ValueError("bad"), connection_invalidated=False)

    with pytest.raises(DBAPIError):
        await reads.run(broken)
