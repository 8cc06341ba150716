"""`GET /v1/stations/nearby`: the 15-minute circle, checked against a brute-force reference."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from gonghui_shared.clock import CHINA
from gonghui_shared.ids import new_id
from gonghui_shared.permissions import Role
from stations import geo, hours
from stations.stations.amenities import CODES
from stations.stations.models import Station, StationType
from stations.testing import Api, insert_stations, point_at, station_values

CENTRE = (115.8582, 28.6829)  # Nanchang, 八一广场
HOST = {"id": new_id(), "path": f"/{new_id()}/"}
TYPES = [t.value for t in StationType]
HOURS = [
    "24/7",
    "24/7",
    "Mo-Fr 08:00-18:00",
    "Mo-Su 22:00-06:00",  # crosses midnight
    "Mo-Fr 08:00-12:00,14:00-18:00; PH off",
    "off",
]
# A Tuesday morning and a late Saturday night, Beijing time.
TIMES = [datetime(2026, 11, 24, 9, 30, tzinfo=CHINA), datetime(2026, 11, 28, 23, 15, tzinfo=CHINA)]


def _random_station(rng: random.Random, lon: float, lat: float) -> dict[str, Any]:
    return station_values(
        lon,
        lat,
        host_org_id=HOST["id"],
        host_org_path=HOST["path"],
        name=f"驿站{rng.randrange(10**6)}",
        station_type=rng.choice(TYPES),
        status=rng.choices(["active", "suspended", "closed"], [90, 5, 5])[0],
        amenities=sorted(rng.sample(CODES, rng.randint(0, 6))),
        opening_hours=rng.choice(HOURS),
    )


async def _load_random(
    app: FastAPI, rng: random.Random, queries: list[dict[str, Any]]
) -> list[dict[str, set[str]]]:
    """2,000+ stations: dense within 3 km of the centre, sparser to 12 km, and for each query
    circle six active ones 0.3 m inside and six 0.3 m outside its boundary (their ids are
    returned, per query)."""
    rows = []
    for _ in range(1400):
        rows.append(
            _random_station(
                rng, *point_at(*CENTRE, rng.uniform(0, 360), 3000 * rng.random() ** 0.5)
            )
        )
    for _ in range(600):
        rows.append(
            _random_station(rng, *point_at(*CENTRE, rng.uniform(0, 360), rng.uniform(0, 12000)))
        )
    boundaries = []
    for q in queries:
        boundary: dict[str, set[str]] = {"inside": set(), "outside": set()}
        for offset in (-0.3, 0.3) * 6:
            point = point_at(q["lon"], q["lat"], rng.uniform(0, 360), q["radius"] + offset)
            row = _random_station(rng, *point) | {"status": "active"}
            boundary["inside" if offset < 0 else "outside"].add(row["id"])
            rows.append(row)
        boundaries.append(boundary)
    await insert_stations(app.state.runtime, rows)
    return boundaries


async def _brute_force(
    app: FastAPI,
    lon: float,
    lat: float,
    radius: float,
    *,
    amenities: list[str],
    station_type: str | None,
    open_at: datetime | None,
) -> list[tuple[str, float]]:
    """Every row, haversine in Python: the answer the indexed search must reproduce."""
    async with app.state.runtime.db.sessions() as session:
        stations = (await session.scalars(select(Station))).all()
    hits = []
    for s in stations:
        d = geo.distance_m(lon, lat, s.lon, s.lat)
        if s.status != "active" or d > radius:
            continue
        if station_type and s.station_type != station_type:
            continue
        if not set(amenities) <= set(s.amenities):
            continue
        if open_at and not hours.is_open(s.opening_hours, open_at, s.timezone):
            continue
        hits.append((d, s.id))
    return [(station_id, round(d, 1)) for d, station_id in sorted(hits)]


async def _all_pages(api: Api, params: dict[str, Any], as_: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await api.ok(
            "GET",
            "/v1/stations/nearby",
            params={**params, "cursor": cursor} if cursor else params,
            as_=as_,
        )
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert len(page["items"]) == params["limit"]


async def test_results_equal_a_brute_force_reference_on_random_data(app: FastAPI, api: Api) -> None:
    rng = random.Random(20261124)
    queries = []
    for radius in (1125, 300, 2000, 4000, 8000, 1125, 650, 15000):
        lon, lat = point_at(*CENTRE, rng.uniform(0, 360), rng.uniform(0, 2500))
        queries.append({"lon": lon, "lat": lat, "radius": radius})
    boundaries = await _load_random(app, rng, queries)
    as_ = api.headers(Role.member, HOST, member_no="360102202600001")

    checked = 0
    for n, q in enumerate(queries):
        amenities = rng.sample(["drinking_water", "phone_charging", "toilets", "microwave"], n % 3)
        station_type = rng.choice(TYPES) if n % 4 == 3 else None
        open_at = TIMES[n % 2] if n % 3 == 1 else None
        params: dict[str, Any] = {
            "lon": q["lon"],
            "lat": q["lat"],
            "limit": rng.choice([7, 20, 100]),
        }
        if q["radius"] == 1125 and n == 0:
            pass  # the default: 15 minutes at 4.5 km/h
        else:
            params["radius_m"] = q["radius"]
        if amenities:
            params["amenity"] = amenities
        if station_type:
            params["type"] = station_type
        if open_at:
            params |= {"open_now": "true", "at": open_at.isoformat()}
        got = await _all_pages(api, params, as_)
        expected = await _brute_force(
            app,
            q["lon"],
            q["lat"],
            q["radius"],
            amenities=amenities,
            station_type=station_type,
            open_at=open_at,
        )
        assert [(item["id"], item["distance_m"]) for item in got] == expected, params
        assert all(item["open_now"] for item in got) or not open_at
        checked += len(expected)
    assert checked > 500  # the comparison is not vacuous

    # Without filters, the boundary stations split exactly at the radius.
    for q, boundary in zip(queries, boundaries, strict=True):
        params = {"lon": q["lon"], "lat": q["lat"], "radius_m": q["radius"], "limit": 100}
        ids = {item["id"] for item in await _all_pages(api, params, as_)}
        assert boundary["inside"] <= ids and not boundary["outside"] & ids


async def test_gcj02_query_point_is_converted(app: FastAPI, api: Api) -> None:
    rng = random.Random(2)
    rows = [
        _random_station(rng, *point_at(*CENTRE, rng.uniform(0, 360), rng.uniform(0, 1500)))
        | {"status": "active", "amenities": []}
        for _ in range(150)
    ]
    await insert_stations(app.state.runtime, rows)
    g_lon, g_lat = geo.wgs84_to_gcj02(*CENTRE)
    by_wgs = await api.ok(
        "GET", "/v1/stations/nearby", params={"lon": CENTRE[0], "lat": CENTRE[1], "limit": 100}
    )
    by_gcj = await api.ok(
        "GET",
        "/v1/stations/nearby",
        params={"lon": g_lon, "lat": g_lat, "crs": "gcj02", "limit": 100},
    )
    # The GCJ-02 point is ~500 m off the WGS-84 one in Nanchang; converted, it is the same point.
    assert geo.distance_m(*CENTRE, g_lon, g_lat) > 300
    assert [i["id"] for i in by_gcj["items"]] == [i["id"] for i in by_wgs["items"]]
    assert [i["distance_m"] for i in by_gcj["items"]] == pytest.approx(
        [i["distance_m"] for i in by_wgs["items"]], abs=0.15
    )
    assert by_gcj["center"]["wgs84"] == pytest.approx({"lon": CENTRE[0], "lat": CENTRE[1]})
    assert by_gcj["center"]["gcj02"] == pytest.approx({"lon": g_lon, "lat": g_lat})
    item = by_wgs["items"][0]
    station_lon, station_lat = item["location"]["wgs84"]["lon"], item["location"]["wgs84"]["lat"]
    assert item["location"]["gcj02"] == pytest.approx(
        dict(zip(("lon", "lat"), geo.wgs84_to_gcj02(station_lon, station_lat), strict=True)),
        abs=1e-6,
    )
    amap = item["navigation"]["amap"]
    assert f"position={item['location']['gcj02']['lon']:.6f}" in amap


async def test_minutes_become_the_stated_radius(app: FastAPI, api: Api) -> None:
    near, far = point_at(*CENTRE, 90, 740), point_at(*CENTRE, 90, 1120)
    await insert_stations(
        app.state.runtime,
        [
            station_values(*near, host_org_id=HOST["id"], host_org_path=HOST["path"]),
            station_values(*far, host_org_id=HOST["id"], host_org_path=HOST["path"]),
        ],
    )
    params = {"lon": CENTRE[0], "lat": CENTRE[1]}
    default = await api.ok("GET", "/v1/stations/nearby", params=params)
    assert (default["walking_speed_kmh"], default["minutes"], default["radius_m"]) == (
        4.5,
        15,
        1125,
    )
    assert [i["distance_m"] for i in default["items"]] == [740.0, 1120.0]
    assert [i["walking_minutes"] for i in default["items"]] == [9.9, 14.9]
    ten = await api.ok("GET", "/v1/stations/nearby", params=params | {"minutes": 10})
    assert (ten["minutes"], ten["radius_m"]) == (10, 750)
    assert len(ten["items"]) == 1
    by_radius = await api.ok("GET", "/v1/stations/nearby", params=params | {"radius_m": 900})
    assert (by_radius["radius_m"], by_radius["minutes"]) == (900, 12)


async def test_every_listed_amenity_is_required_and_open_now_filters(
    app: FastAPI, api: Api
) -> None:
    def at(distance: float, **fields: Any) -> dict[str, Any]:
        point = point_at(*CENTRE, 0, distance)
        return station_values(*point, host_org_id=HOST["id"], host_org_path=HOST["path"], **fields)

    rows = [
        at(100, name="水+电", amenities=["drinking_water", "phone_charging"]),
        at(200, name="水", amenities=["drinking_water"]),
        at(
            300,
            name="水+电+夜",
            amenities=["drinking_water", "phone_charging"],
            opening_hours="Mo-Su 22:00-06:00",
        ),
        at(
            400,
            name="电",
            amenities=["phone_charging", "toilets"],
            opening_hours="Mo-Fr 08:00-18:00",
        ),
        at(500, name="停用", amenities=["drinking_water", "phone_charging"], status="suspended"),
    ]
    await insert_stations(app.state.runtime, rows)
    base = {"lon": CENTRE[0], "lat": CENTRE[1]}

    async def names(**params: Any) -> list[str]:
        page = await api.ok("GET", "/v1/stations/nearby", params=base | params)
        return [i["name"] for i in page["items"]]

    assert await names() == ["水+电", "水", "水+电+夜", "电"]
    assert await names(amenity="drinking_water") == ["水+电", "水", "水+电+夜"]
    both = ["drinking_water", "phone_charging"]
    assert await names(amenity=both) == ["水+电", "水+电+夜"]
    tuesday_morning, saturday_night = TIMES
    assert await names(open_now="true", at=tuesday_morning.isoformat()) == ["水+电", "水", "电"]
    assert await names(open_now="true", at=saturday_night.isoformat()) == [
        "水+电",
        "水",
        "水+电+夜",
    ]
    page = await api.ok(
        "GET", "/v1/stations/nearby", params=base | {"at": saturday_night.isoformat()}
    )
    assert [i["open_now"] for i in page["items"]] == [True, True, True, False]
    assert await names(type="worker_home") == []


async def test_pages_are_stable_and_cover_everything_once(app: FastAPI, api: Api) -> None:
    rng = random.Random(7)
    # Several stations at one address on purpose: equal distances are ordered by id, across
    # page boundaries too.
    shared = [point_at(*CENTRE, rng.uniform(0, 360), rng.uniform(0, 1100)) for _ in range(4)]
    points = [rng.choice(shared) for _ in range(45)]
    points += [point_at(*CENTRE, rng.uniform(0, 360), rng.uniform(0, 1100)) for _ in range(50)]
    rows = [
        station_values(*point, host_org_id=HOST["id"], host_org_path=HOST["path"])
        for point in points
    ]
    await insert_stations(app.state.runtime, rows)
    params = {"lon": CENTRE[0], "lat": CENTRE[1], "limit": 10}
    first = await _all_pages(api, params, api.platform)
    again = await _all_pages(api, params, api.platform)
    assert [i["id"] for i in first] == [i["id"] for i in again]
    assert sorted(i["id"] for i in first) == sorted(r["id"] for r in rows)
    keys = [(i["distance_m"], i["id"]) for i in first]
    assert keys == sorted(keys)

    # A station opened after page one does not shift or repeat what comes later.
    page1 = await api.ok("GET", "/v1/stations/nearby", params=params)
    last = page1["items"][-1]["distance_m"]
    await insert_stations(
        app.state.runtime,
        [station_values(*CENTRE, host_org_id=HOST["id"], host_org_path=HOST["path"])],
    )
    page2 = await api.ok(
        "GET", "/v1/stations/nearby", params=params | {"cursor": page1["next_cursor"]}
    )
    assert page2["items"][0]["distance_m"] >= last
    assert [i["id"] for i in page2["items"]] == [i["id"] for i in first[10:20]]


@pytest.mark.parametrize(
    ("params", "status", "code", "field"),
    [
        ({"minutes": 10, "radius_m": 500}, 422, "radius_and_minutes", "radius_m"),
        ({"radius_m": 20001}, 422, "validation_error", "radius_m"),
        ({"radius_m": 0}, 422, "validation_error", "radius_m"),
        ({"minutes": 121}, 422, "validation_error", "minutes"),
        ({"minutes": -1}, 422, "validation_error", "minutes"),
        ({"lat": 91}, 422, "validation_error", "lat"),
        ({"lon": "east"}, 422, "validation_error", "lon"),
        ({"crs": "bd09"}, 422, "validation_error", "crs"),
        ({"amenity": ["drinking_water", "jacuzzi"]}, 422, "unknown_amenity", "amenity"),
        ({"type": "spa"}, 422, "validation_error", "type"),
        ({"limit": 0}, 422, "validation_error", "limit"),
        ({"limit": 101}, 422, "validation_error", "limit"),
        ({"at": "tomorrow"}, 422, "validation_error", "at"),
        ({"cursor": "bm90LWEtY3Vyc29y"}, 400, "invalid_cursor", "cursor"),
        ({"cursor": "%%%"}, 400, "invalid_cursor", "cursor"),
    ],
)
async def test_bad_input_is_rejected_with_the_field(
    api: Api, params: dict[str, Any], status: int, code: str, field: str
) -> None:
    query = {"lon": CENTRE[0], "lat": CENTRE[1]} | params
    body = await api.ok("GET", "/v1/stations/nearby", params=query, expect=status)
    error = body["error"]
    assert error["code"] == code
    details = error["details"]
    fields = [d["field"] for d in details] if isinstance(details, list) else [details["field"]]
    assert field in fields


async def test_any_role_may_search_but_a_token_is_required(api: Api) -> None:
    params = {"lon": CENTRE[0], "lat": CENTRE[1]}
    for role in Role:
        await api.ok("GET", "/v1/stations/nearby", params=params, as_=api.headers(role, HOST))
    response = await api.client.get("/v1/stations/nearby", params=params)
    assert response.status_code == 401
