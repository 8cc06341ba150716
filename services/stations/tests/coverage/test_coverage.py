"""`GET /v1/coverage`: the 15-minute circle over a county whose answer is known."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from gonghui_shared.ids import new_id
from gonghui_shared.permissions import Role
from gonghui_shared.testing.feed import MembershipFeed
from stations import geo
from stations.testing import Api, insert_stations, point_at, station_values

ORIGIN = (99.85, 24.52)  # 凤庆县, south-west of the county seat
SPACING_M = 10_000.0  # villages 10 km apart: a neighbour's station is never the nearest

# Where each village's own station stands (metres, and the station's status), for 20 villages:
# 15 have an active one within 1,125 m (some just inside), 5 do not (some just outside; one
# has only a suspended station next door, one only a closed one, and active ones farther off).
COVERED = [1124.5, 1124.9, 1000, 800, 600, 400, 200, 50, 0, 1110, 950, 700, 300, 1, 1124.8]
UNCOVERED = [1125.4, 1130, 2000, 2500, 3000]


def _grid(n: int) -> list[tuple[float, float]]:
    """n points on a grid 5 wide, SPACING_M apart."""
    points = []
    for i in range(n):
        east = point_at(*ORIGIN, 90, SPACING_M * (i % 5))
        points.append(point_at(*east, 0, SPACING_M * (i // 5)))
    return points


async def _county(
    feed: MembershipFeed,
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """The feed's county (whose one village has no location) plus 20 located villages."""
    county, township, _unlocated = await feed.tree()
    villages = []
    for i, (lon, lat) in enumerate(_grid(20)):
        village = await feed.org(
            township,
            "village_union",
            f"第{i + 1}村工会委员会",
            f"530921101{i + 300:03d}",
            lon=lon,
            lat=lat,
        )
        villages.append(village | {"lon": lon, "lat": lat})
    await feed.synced()
    return county, township, villages


async def test_coverage_of_a_generated_county(app: FastAPI, api: Api, feed: MembershipFeed) -> None:
    county, township, villages = await _county(feed)
    host = {"host_org_id": county["id"], "host_org_path": county["path"]}
    rows = []
    expected_uncovered = []
    for i, village in enumerate(villages):
        bearing = 37.0 * i
        if i < 15:
            distance, status = COVERED[i], "active"
        else:
            distance, status = UNCOVERED[i - 15], "active"
        point = point_at(village["lon"], village["lat"], bearing, distance)
        row = station_values(*point, name=f"驿站{i + 1}", status=status, **host)
        rows.append(row)
        if i == 17:  # a suspended station 100 m away does not cover the village
            near = point_at(village["lon"], village["lat"], 200, 100)
            rows.append(station_values(*near, name="停用驿站", status="suspended", **host))
        if i == 18:  # nor does a closed one
            near = point_at(village["lon"], village["lat"], 10, 10)
            rows.append(station_values(*near, name="关闭驿站", status="closed", **host))
        if i >= 15:
            expected_uncovered.append(
                {
                    "org_id": village["id"],
                    "name": village["name"],
                    "region_code": village["region_code"],
                    "lon": pytest.approx(village["lon"]),
                    "lat": pytest.approx(village["lat"]),
                    "nearest_station": {
                        "id": row["id"],
                        "name": row["name"],
                        "distance_m": round(
                            geo.distance_m(village["lon"], village["lat"], *point), 1
                        ),
                        "walking_minutes": round(
                            geo.walking_minutes(
                                geo.distance_m(village["lon"], village["lat"], *point), 4.5
                            ),
                            1,
                        ),
                    },
                }
            )
    await insert_stations(app.state.runtime, rows)

    report = await api.ok("GET", "/v1/coverage", params={"org_id": county["id"]})
    assert {k: v for k, v in report.items() if k not in ("uncovered", "unlocated")} == {
        "org_id": county["id"],
        "minutes": 15,
        "radius_m": 1125,
        "walking_speed_kmh": 4.5,
        "units_total": 21,
        "units_located": 20,
        "covered": 15,
        "rate": 0.75,
    }
    assert report["uncovered"] == expected_uncovered
    assert [u["nearest_station"]["distance_m"] for u in report["uncovered"]] == [
        1125.4,
        1130.0,
        2000.0,
        2500.0,
        3000.0,
    ]
    assert [u["name"] for u in report["unlocated"]] == ["京竹林村工会委员会"]

    # A longer walk covers more: 41 minutes (3,075 m) covers all 20.
    wider = await api.ok("GET", "/v1/coverage", params={"org_id": county["id"], "minutes": 41})
    assert (wider["radius_m"], wider["covered"], wider["rate"], wider["uncovered"]) == (
        3075,
        20,
        1.0,
        [],
    )
    # The township chair sees the same villages; its subtree is the county's.
    chair = await api.ok(
        "GET",
        "/v1/coverage",
        params={"org_id": township["id"]},
        as_=api.headers(Role.org_chair, township),
    )
    assert (chair["units_total"], chair["covered"]) == (21, 15)


async def test_a_village_far_from_every_station(
    app: FastAPI, api: Api, feed: MembershipFeed
) -> None:
    county, township, _ = await feed.tree()
    village = await feed.org(
        township, "village_union", "边远村工会委员会", "530921101399", lon=99.5, lat=24.2
    )
    await feed.synced()
    far = point_at(99.5, 24.2, 45, 60_000)  # beyond the 50 km the nearest station is sought
    await insert_stations(
        app.state.runtime,
        [station_values(*far, host_org_id=county["id"], host_org_path=county["path"])],
    )
    report = await api.ok("GET", "/v1/coverage", params={"org_id": village["id"]})
    assert (report["units_total"], report["units_located"], report["covered"], report["rate"]) == (
        1,
        1,
        0,
        0.0,
    )
    assert report["uncovered"][0]["nearest_station"] is None


async def test_no_located_unit_has_no_rate(api: Api, feed: MembershipFeed) -> None:
    county, _, _ = await feed.tree()
    report = await api.ok("GET", "/v1/coverage", params={"org_id": county["id"]})
    assert (report["units_total"], report["units_located"], report["rate"]) == (1, 0, None)
    assert len(report["unlocated"]) == 1


async def test_scope_for_every_role(api: Api, feed: MembershipFeed) -> None:
    county, township, village = await feed.tree()
    other_county = await feed.org(None, "county_federation", "云县总工会", "530922000000")
    await feed.synced()
    params = {"org_id": township["id"]}
    # Every role may read stations, in its own subtree only.
    for role in Role:
        await api.ok("GET", "/v1/coverage", params=params, as_=api.headers(role, county))
        if role is not Role.platform_admin:
            body = await api.ok(
                "GET",
                "/v1/coverage",
                params=params,
                as_=api.headers(role, other_county),
                expect=403,
            )
            assert body["error"]["code"] == "out_of_scope"
    # A village's own scope does not reach up to its township.
    body = await api.ok(
        "GET", "/v1/coverage", params=params, as_=api.headers(Role.org_chair, village), expect=403
    )
    assert body["error"]["code"] == "out_of_scope"
    # 404 before 403: an unknown org is unknown whoever asks.
    body = await api.ok(
        "GET",
        "/v1/coverage",
        params={"org_id": new_id()},
        as_=api.headers(Role.org_chair, other_county),
        expect=404,
    )
    assert body["error"]["code"] == "org_not_found"
    response = await api.client.get("/v1/coverage", params=params)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("params", "field"),
    [({}, "org_id"), ({"minutes": 0}, "minutes"), ({"minutes": 121}, "minutes")],
)
async def test_bad_input_names_the_field(
    api: Api, feed: MembershipFeed, params: dict[str, Any], field: str
) -> None:
    county, _, _ = await feed.tree()
    query = {"org_id": county["id"]} | params if field != "org_id" else {}
    body = await api.ok("GET", "/v1/coverage", params=query, expect=422)
    assert field in [d["field"] for d in body["error"]["details"]]
