"""Stations over HTTP: coordinates in both systems, deep links, amenities, hours, lifecycle."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI

from gonghui_shared.permissions import Role
from gonghui_shared.testing.feed import MembershipFeed
from stations import geo
from stations.stations.amenities import CODES
from stations.testing import Api, outbox_events, station_body

# A village service point in Fengqing as Amap shows it (GCJ-02).
GCJ = (99.9318, 24.5812)


def loc(station: dict[str, Any], crs: str) -> tuple[float, float]:
    point = station["location"][crs]
    return point["lon"], point["lat"]


async def create(api: Api, org: dict[str, Any], as_: dict[str, str] | None = None, **fields: Any):
    return await api.ok(
        "POST", "/v1/stations", as_=as_, expect=201, json=station_body(org, **fields)
    )


async def error(api: Api, method: str, url: str, status: int, code: str, **kw: Any) -> dict:
    kw.setdefault("headers", api.platform)
    response = await api.client.request(method, url, **kw)
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code, body
    return body


# -- creating, coordinates, deep links ----------------------------------------------------


async def test_create_with_gcj02_stores_wgs84_and_answers_in_both(
    app: FastAPI, api: Api, feed: MembershipFeed
) -> None:
    county, _, village = await feed.tree()
    admin = api.headers(Role.county_admin, county)
    station = await create(
        api,
        village,
        admin,
        station_type="village_service_point",
        name="京竹林村邮乐购工会服务点",
        host_partner="中国邮政村邮乐购",
        lon=GCJ[0],
        lat=GCJ[1],
        crs="gcj02",
        contact_name="杨定忠",
        contact_phone="138 8701 2345",
        photos=["stations/jzl/front.jpg", "https://img.example.cn/jzl/inside.jpg"],
        checked_on="2026-11-20",
    )
    expected_wgs = geo.gcj02_to_wgs84(*GCJ)
    assert geo.distance_m(*loc(station, "wgs84"), *expected_wgs) < 1.0
    assert geo.distance_m(*loc(station, "gcj02"), *GCJ) < 1.0
    # the stored point really is WGS-84: a few hundred metres from the GCJ-02 input
    assert geo.distance_m(*loc(station, "wgs84"), *GCJ) > 100
    assert (station["h3_r7"], station["h3_r9"]) == geo.cells(*expected_wgs)
    assert station["region_code"] == village["region_code"]  # the host org's by default
    assert station["host_org_path"] == village["path"]
    assert station["monthly_subsidy"] == "100.00"  # the village service point default
    assert station["contact_phone"] == "+8613887012345"
    assert station["status"] == "active" and station["open_now"] is True  # 24/7 by default
    assert station["opening_hours"] == "24/7" and station["timezone"] == "Asia/Shanghai"
    assert station["checked_on"] == "2026-11-20" and len(station["photos"]) == 2
    assert station["station_type_label_zh"] == "村级工会服务点"

    read = await api.ok("GET", f"/v1/stations/{station['id']}", as_=admin)
    assert read["location"] == station["location"]

    [opened] = await outbox_events(app.state.runtime, "stations.station.opened")
    assert opened["aggregate_id"] == station["id"] and opened["org_path"] == village["path"]
    data = opened["data"]
    assert geo.distance_m(data["lon"], data["lat"], *expected_wgs) < 0.01  # events carry WGS-84
    assert data["station_type"] == "village_service_point" and data["host_org_id"] == village["id"]
    assert data["amenities"] == ["drinking_water", "phone_charging", "seating"]


async def test_wgs84_is_the_default_and_is_stored_as_given(api: Api, feed: MembershipFeed) -> None:
    _, _, village = await feed.tree()
    station = await create(api, village, lon=115.8582, lat=28.6820)
    assert loc(station, "wgs84") == (115.8582, 28.682)
    assert geo.distance_m(*loc(station, "gcj02"), *geo.wgs84_to_gcj02(115.8582, 28.6820)) < 0.01
    assert station["monthly_subsidy"] == "0.00"  # not a village service point
    explicit = await create(api, village, crs="wgs84", monthly_subsidy="250.5")
    assert explicit["monthly_subsidy"] == "250.50"


async def test_deep_links_carry_each_apps_coordinates(api: Api, feed: MembershipFeed) -> None:
    _, _, village = await feed.tree()
    station = await create(
        api, village, name="凤山 爱心驿站&饮水点", lon=GCJ[0], lat=GCJ[1], crs="gcj02"
    )
    g_lon, g_lat = loc(station, "gcj02")
    w_lon, w_lat = loc(station, "wgs84")
    links = station["deep_links"]

    amap = parse_qs(urlsplit(links["amap"]).query)
    a_lon, a_lat = (float(v) for v in amap["position"][0].split(","))
    assert geo.distance_m(a_lon, a_lat, *GCJ) < 1.0  # GCJ-02, lon first
    assert amap["coordinate"] == ["gaode"] and amap["name"] == ["凤山 爱心驿站&饮水点"]

    baidu = urlsplit(links["baidu"])
    assert baidu.scheme == "baidumap"
    query = parse_qs(baidu.query)
    b_lat, b_lon = (float(v) for v in query["location"][0].split(","))
    assert geo.distance_m(b_lon, b_lat, g_lon, g_lat) < 1.0  # GCJ-02, lat first
    assert query["coord_type"] == ["gcj02"] and query["title"] == ["凤山 爱心驿站&饮水点"]

    geo_lat, geo_lon = (float(v) for v in links["geo"].removeprefix("geo:").split(","))
    assert geo.distance_m(geo_lon, geo_lat, w_lon, w_lat) < 1.0  # WGS-84
    assert geo.distance_m(geo_lon, geo_lat, g_lon, g_lat) > 100


async def test_a_point_outside_mainland_china_is_not_shifted(
    api: Api, feed: MembershipFeed
) -> None:
    _, _, village = await feed.tree()
    station = await create(api, village, lon=114.1588, lat=22.2783, crs="gcj02")  # Hong Kong
    assert loc(station, "wgs84") == loc(station, "gcj02") == (114.1588, 22.2783)


# -- amenities, hours, other validation ----------------------------------------------------


async def test_amenity_vocabulary_is_public(api: Api) -> None:
    response = await api.client.get("/v1/amenities")
    assert response.status_code == 200
    amenities = {a["code"]: a for a in response.json()}
    assert tuple(amenities) == CODES and len(CODES) == 15
    assert amenities["drinking_water"]["osm_tags"] == ["amenity=drinking_water"]
    assert amenities["phone_charging"]["osm_tags"] == ["amenity=device_charging_station"]
    assert amenities["nursing_room"]["label_zh"] == "爱心妈咪小屋"
    assert (
        amenities["breakfast"]["osm_tags"] == []
        and amenities["breakfast"]["label_zh"] == "爱心早餐"
    )


async def test_unknown_amenities_are_refused_with_the_allowed_list(
    api: Api, feed: MembershipFeed
) -> None:
    _, _, village = await feed.tree()
    body = await error(
        api,
        "POST",
        "/v1/stations",
        422,
        "unknown_amenity",
        json=station_body(village, amenities=["drinking_water", "karaoke", "spa"]),
    )
    assert body["details"]["field"] == "amenities"
    assert body["details"]["unknown"] == ["karaoke", "spa"]
    assert body["details"]["allowed"] == list(CODES)
    # duplicates and order do not matter: stored once each, in vocabulary order
    station = await create(api, village, amenities=["wifi", "toilets", "wifi", "drinking_water"])
    assert station["amenities"] == ["drinking_water", "toilets", "wifi"]


async def test_invalid_opening_hours_timezone_phone_photos(api: Api, feed: MembershipFeed) -> None:
    _, _, village = await feed.tree()
    body = await error(
        api,
        "POST",
        "/v1/stations",
        422,
        "invalid_opening_hours",
        json=station_body(village, opening_hours="Mo-Fx 08:00-18:00"),
    )
    assert body["details"]["field"] == "opening_hours" and "wday" in body["details"]["parser"]
    await error(
        api,
        "POST",
        "/v1/stations",
        422,
        "invalid_opening_hours",
        json=station_body(village, opening_hours="   "),
    )
    body = await error(
        api,
        "POST",
        "/v1/stations",
        422,
        "invalid_timezone",
        json=station_body(village, timezone="Asia/Beijing"),
    )
    assert body["details"]["field"] == "timezone"
    body = await error(
        api,
        "POST",
        "/v1/stations",
        422,
        "validation_error",
        json=station_body(village, contact_phone="12345"),
    )
    assert [f["field"] for f in body["details"]] == ["contact_phone"]
    body = await error(
        api,
        "POST",
        "/v1/stations",
        422,
        "validation_error",
        json=station_body(village, photos=[f"p/{i}.jpg" for i in range(21)]),
    )
    assert [f["field"] for f in body["details"]] == ["photos"]
    body = await error(
        api,
        "POST",
        "/v1/stations",
        422,
        "validation_error",
        json=station_body(village, crs="bd09", lat=91, monthly_subsidy="1.001"),
    )
    assert {f["field"] for f in body["details"]} == {"crs", "lat", "monthly_subsidy"}
    await error(
        api,
        "POST",
        "/v1/stations",
        404,
        "org_not_found",
        json=station_body({"id": "0193a1c2-0000-7000-8000-000000000000"}),
    )


async def test_open_now_and_open_at(api: Api, feed: MembershipFeed) -> None:
    _, _, village = await feed.tree()
    weekdays = await create(api, village, opening_hours="Mo-Fr 08:00-18:00")
    url = f"/v1/stations/{weekdays['id']}/open"

    monday_9 = await api.ok("GET", url, params={"at": "2026-11-23T09:00:00"})  # local time
    assert monday_9["open"] is True and monday_9["state"] == "open"
    assert monday_9["at"] == "2026-11-23T09:00:00+08:00"
    assert monday_9["next_change"] == "2026-11-23T18:00:00+08:00"
    # the same instant in UTC
    utc = await api.ok("GET", url, params={"at": "2026-11-23T01:00:00Z"})
    assert utc["open"] is True and utc["at"] == "2026-11-23T09:00:00+08:00"
    evening = await api.ok("GET", url, params={"at": "2026-11-23T10:30:00+00:00"})  # 18:30
    assert evening["open"] is False and evening["next_change"] == "2026-11-24T08:00:00+08:00"
    saturday = await api.ok("GET", url, params={"at": "2026-11-28T10:00:00+08:00"})
    assert saturday["open"] is False and saturday["next_change"] == "2026-11-30T08:00:00+08:00"

    night = await create(api, village, opening_hours="Mo-Su 22:00-06:00")
    url = f"/v1/stations/{night['id']}/open"
    assert (await api.ok("GET", url, params={"at": "2026-11-23T23:30:00"}))["open"] is True
    assert (await api.ok("GET", url, params={"at": "2026-11-24T02:00:00"}))["open"] is True
    assert (await api.ok("GET", url, params={"at": "2026-11-24T06:00:00"}))["open"] is False

    always = await create(api, village)  # 24/7
    now = await api.ok("GET", f"/v1/stations/{always['id']}/open")
    assert now["open"] is True and now["next_change"] is None
    never = await create(api, village, opening_hours="2020 Jan 01 08:00-09:00")
    assert never["open_now"] is False and always["open_now"] is True

    await error(api, "GET", url, 422, "validation_error", params={"at": "tomorrow"})
    # were 500s (the kind of input the fuzzer found on /v1/audit): no such time in the
    # station's zone or in UTC
    for at in ("0001-01-01T00:00:00+00:01", "9999-12-31T23:00:00Z"):
        await error(api, "GET", url, 422, "validation_error", params={"at": at})


async def test_a_station_in_another_time_zone_is_evaluated_there(
    api: Api, feed: MembershipFeed
) -> None:
    _, _, village = await feed.tree()
    station = await create(api, village, opening_hours="Mo-Fr 08:00-18:00", timezone="UTC")
    answer = await api.ok(
        "GET", f"/v1/stations/{station['id']}/open", params={"at": "2026-11-23T09:00:00+08:00"}
    )
    assert answer["open"] is False and answer["at"] == "2026-11-23T01:00:00Z"


# -- updating -------------------------------------------------------------------------------


async def test_patch_fields_and_the_changed_names(
    app: FastAPI, api: Api, feed: MembershipFeed
) -> None:
    _, _, village = await feed.tree()
    station = await create(api, village, address="凤山镇京竹林村", contact_name="杨定忠")
    url = f"/v1/stations/{station['id']}"
    patched = await api.ok(
        "PATCH",
        url,
        json={
            "amenities": ["microwave", "drinking_water", "first_aid_kit"],
            "opening_hours": "Mo-Su 06:00-09:00,17:00-21:00",
            "photos": ["a.jpg"],
            "checked_on": "2026-11-23",
            "address": None,  # nullable fields may be cleared
            "contact_name": "杨定忠",  # unchanged: not reported
            "monthly_subsidy": 80,
        },
    )
    assert patched["amenities"] == ["drinking_water", "microwave", "first_aid_kit"]
    assert patched["address"] is None and patched["monthly_subsidy"] == "80.00"
    [updated] = await outbox_events(app.state.runtime, "stations.station.updated")
    assert set(updated["data"]["changed"]) == {
        "amenities",
        "opening_hours",
        "photos",
        "checked_on",
        "address",
        "monthly_subsidy",
    }
    assert updated["data"]["amenities"] == patched["amenities"]

    # nothing changed: no event
    await api.ok("PATCH", url, json={"photos": ["a.jpg"], "name": station["name"]})
    assert len(await outbox_events(app.state.runtime, "stations.station.updated")) == 1


async def test_patch_location_with_crs(app: FastAPI, api: Api, feed: MembershipFeed) -> None:
    _, _, village = await feed.tree()
    station = await create(api, village, lon=115.8582, lat=28.6820)
    url = f"/v1/stations/{station['id']}"
    moved_gcj = (115.8700, 28.6900)
    moved = await api.ok(
        "PATCH", url, json={"lon": moved_gcj[0], "lat": moved_gcj[1], "crs": "gcj02"}
    )
    assert geo.distance_m(*loc(moved, "wgs84"), *geo.gcj02_to_wgs84(*moved_gcj)) < 1.0
    assert geo.distance_m(*loc(moved, "gcj02"), *moved_gcj) < 1.0
    assert (moved["h3_r7"], moved["h3_r9"]) == geo.cells(*geo.gcj02_to_wgs84(*moved_gcj))
    assert moved["h3_r9"] != station["h3_r9"]
    events = await outbox_events(app.state.runtime, "stations.station.updated")
    assert [e["data"]["changed"] for e in events] == [["location"]]
    assert (
        geo.distance_m(events[0]["data"]["lon"], events[0]["data"]["lat"], *loc(moved, "wgs84"))
        < 0.01
    )

    # sending back the GCJ-02 point the response gave is not a move
    again = await api.ok("PATCH", url, json={**moved["location"]["gcj02"], "crs": "gcj02"})
    assert again["location"] == moved["location"]
    assert len(await outbox_events(app.state.runtime, "stations.station.updated")) == 1

    body = await error(api, "PATCH", url, 422, "incomplete_location", json={"lon": 115.9})
    assert body["details"] == {"field": "lat"}


async def test_patch_rejects_null_for_required_fields_and_bad_values(
    api: Api, feed: MembershipFeed
) -> None:
    _, _, village = await feed.tree()
    station = await create(api, village)
    url = f"/v1/stations/{station['id']}"
    for field in (
        "name",
        "amenities",
        "opening_hours",
        "timezone",
        "photos",
        "lon",
        "station_type",
    ):
        body = await error(api, "PATCH", url, 422, "validation_error", json={field: None})
        assert [f["field"] for f in body["details"]] == [field]
    await error(api, "PATCH", url, 422, "invalid_opening_hours", json={"opening_hours": "often"})
    await error(api, "PATCH", url, 422, "unknown_amenity", json={"amenities": ["sauna"]})
    await error(api, "PATCH", url, 422, "invalid_timezone", json={"timezone": "China/Beijing"})
    await error(
        api, "PATCH", "/v1/stations/nope", 404, "station_not_found", json={"name": "新名称"}
    )
    unchanged = await api.ok("GET", url)
    assert unchanged["amenities"] == station["amenities"] and unchanged["name"] == station["name"]


# -- lifecycle ------------------------------------------------------------------------------


async def test_lifecycle_and_illegal_transitions(
    app: FastAPI, api: Api, feed: MembershipFeed
) -> None:
    _, _, village = await feed.tree()
    station = await create(api, village)
    url = f"/v1/stations/{station['id']}"

    suspended = await api.ok("POST", f"{url}/suspend", json={"reason": "店铺装修"})
    assert suspended["status"] == "suspended" and suspended["status_reason"] == "店铺装修"
    assert suspended["open_now"] is False  # 24/7 hours, but suspended
    closed_now = await api.ok("GET", f"{url}/open", params={"at": "2026-11-23T10:00:00"})
    assert closed_now["open"] is False and closed_now["state"] == "closed"
    assert closed_now["status"] == "suspended" and closed_now["next_change"] is None
    body = await error(
        api, "POST", f"{url}/suspend", 409, "invalid_station_transition", json={"reason": "再次"}
    )
    assert body["details"]["status"] == "suspended"

    reopened = await api.ok("POST", f"{url}/reopen")  # the reason is optional
    assert reopened["status"] == "active" and reopened["status_reason"] is None
    assert reopened["open_now"] is True
    await error(api, "POST", f"{url}/reopen", 409, "invalid_station_transition", json={})

    closed = await api.ok("POST", f"{url}/close", json={"reason": "合作网点撤销"})
    assert closed["status"] == "closed"
    for action in ("suspend", "reopen", "close"):
        await error(
            api, "POST", f"{url}/{action}", 409, "invalid_station_transition", json={"reason": "x"}
        )
    await error(api, "POST", f"{url}/close", 422, "validation_error", json={})  # reason required

    # suspended -> closed directly is legal too
    other = await create(api, village)
    await api.ok("POST", f"/v1/stations/{other['id']}/suspend", json={"reason": "暂停"})
    await api.ok("POST", f"/v1/stations/{other['id']}/close", json={"reason": "撤销"})

    events = [
        (e["type"], e["aggregate_id"], e["data"].get("reason"))
        for e in await outbox_events(app.state.runtime)
        if e["type"] != "stations.station.opened"
    ]
    assert events == [
        ("stations.station.suspended", station["id"], "店铺装修"),
        ("stations.station.reopened", station["id"], None),
        ("stations.station.closed", station["id"], "合作网点撤销"),
        ("stations.station.suspended", other["id"], "暂停"),
        ("stations.station.closed", other["id"], "撤销"),
    ]
    listed = await api.ok("GET", "/v1/stations", params={"status": "closed"})
    assert {s["id"] for s in listed["items"]} == {station["id"], other["id"]}


# -- listing --------------------------------------------------------------------------------


async def test_list_filters_and_pages(api: Api, feed: MembershipFeed) -> None:
    county, township, village = await feed.tree()
    point = await create(
        api,
        village,
        station_type="village_service_point",
        amenities=["drinking_water", "toilets"],
    )
    home = await create(
        api,
        township,
        station_type="worker_home",
        amenities=["library", "gym", "drinking_water"],
        region_code="530921101000",
    )
    rest = await create(api, county, amenities=["drinking_water"], region_code="530921000000")
    admin = api.headers(Role.county_admin, county)

    async def ids(**params: Any) -> list[str]:
        page = await api.ok("GET", "/v1/stations", as_=admin, params=params)
        return [s["id"] for s in page["items"]]

    assert await ids() == [point["id"], home["id"], rest["id"]]  # creation order (UUIDv7)
    assert await ids(station_type="worker_home") == [home["id"]]
    assert await ids(amenity="drinking_water") == [point["id"], home["id"], rest["id"]]
    assert await ids(amenity=["drinking_water", "toilets"]) == [point["id"]]
    assert await ids(amenity="gym") == [home["id"]]
    assert await ids(region_code="530921101") == [point["id"], home["id"]]  # a prefix
    assert await ids(org_id=township["id"]) == [point["id"], home["id"]]  # the subtree
    assert await ids(status="suspended") == []

    first = await api.ok("GET", "/v1/stations", as_=admin, params={"limit": 2})
    assert [s["id"] for s in first["items"]] == [point["id"], home["id"]]
    second = await api.ok(
        "GET", "/v1/stations", as_=admin, params={"limit": 2, "cursor": first["next_cursor"]}
    )
    assert [s["id"] for s in second["items"]] == [rest["id"]] and second["next_cursor"] is None

    body = await error(
        api, "GET", "/v1/stations", 422, "unknown_amenity", params={"amenity": "spa"}
    )
    assert body["details"]["field"] == "amenity"
    await error(api, "GET", "/v1/stations", 404, "org_not_found", params={"org_id": "nope"})
