"""Who may do what to stations: reads are public to every role that reads, writes are scoped."""

from __future__ import annotations

from typing import Any

from gonghui_shared.permissions import Role
from gonghui_shared.testing.feed import MembershipFeed
from stations.testing import Api, station_body


async def two_townships(
    feed: MembershipFeed,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The feed's county and village, and a second township with its own village."""
    county, _, village = await feed.tree()
    other_township = await feed.org(county, "township_union", "营盘镇工会", "530921102000")
    other_village = await feed.org(other_township, "village_union", "新华村工会", "530921102201")
    await feed.synced()
    return county, village, other_township, other_village


async def status_code(
    api: Api, method: str, url: str, headers: dict[str, str], **kw: Any
) -> tuple[int, str | None]:
    response = await api.client.request(method, url, headers=headers, **kw)
    code = response.json().get("error", {}).get("code") if response.status_code >= 400 else None
    return response.status_code, code


async def test_writes_need_the_host_in_scope(api: Api, feed: MembershipFeed) -> None:
    county, village, other_township, other_village = await two_townships(feed)
    outsider = api.headers(Role.org_chair, other_township)
    chair = api.headers(Role.org_chair, village)

    assert await status_code(api, "POST", "/v1/stations", outsider, json=station_body(village)) == (
        403,
        "out_of_scope",
    )
    station = await api.ok(
        "POST", "/v1/stations", as_=chair, expect=201, json=station_body(village)
    )
    url = f"/v1/stations/{station['id']}"
    assert await status_code(api, "PATCH", url, outsider, json={"name": "改名驿站"}) == (
        403,
        "out_of_scope",
    )
    for action in ("suspend", "close"):
        assert await status_code(
            api, "POST", f"{url}/{action}", outsider, json={"reason": "x"}
        ) == (
            403,
            "out_of_scope",
        )
    # the outsider may still host stations in its own subtree
    await api.ok("POST", "/v1/stations", as_=outsider, expect=201, json=station_body(other_village))
    # the village chair and the county admin above may change it
    await api.ok("PATCH", url, as_=chair, json={"name": "京竹林村爱心驿站"})
    await api.ok(
        "POST",
        f"{url}/suspend",
        as_=api.headers(Role.county_admin, county),
        json={"reason": "检查"},
    )
    # a missing station is 404 before any scope question
    assert await status_code(
        api, "PATCH", "/v1/stations/nope", outsider, json={"name": "某驿站"}
    ) == (
        404,
        "station_not_found",
    )


async def test_roles_without_stations_write_cannot_create_or_change(
    api: Api, feed: MembershipFeed
) -> None:
    _, village, _, _ = await two_townships(feed)
    station = await api.ok("POST", "/v1/stations", expect=201, json=station_body(village))
    url = f"/v1/stations/{station['id']}"
    member_no = await feed.member(village)
    for headers in (
        api.headers(Role.station_operator, village),
        api.headers(Role.member, village, member_no=member_no),
        api.headers(Role.gov_system, village),
    ):
        assert await status_code(
            api, "POST", "/v1/stations", headers, json=station_body(village)
        ) == (
            403,
            "forbidden",
        )
        assert await status_code(api, "PATCH", url, headers, json={"name": "某驿站"}) == (
            403,
            "forbidden",
        )
        assert await status_code(api, "POST", f"{url}/close", headers, json={"reason": "x"}) == (
            403,
            "forbidden",
        )
        # forbidden by role even for a station that does not exist
        assert await status_code(
            api, "PATCH", "/v1/stations/nope", headers, json={"name": "某驿站"}
        ) == (
            403,
            "forbidden",
        )


async def test_every_reading_role_reads_any_station(api: Api, feed: MembershipFeed) -> None:
    county, village, other_township, other_village = await two_townships(feed)
    here = await api.ok("POST", "/v1/stations", expect=201, json=station_body(village))
    there = await api.ok("POST", "/v1/stations", expect=201, json=station_body(other_village))
    member_no = await feed.member(village)
    readers = {
        "member": api.headers(Role.member, village, member_no=member_no),
        "gov_system": api.headers(Role.gov_system, county),
        "station_operator": api.headers(Role.station_operator, village),
        "org_chair": api.headers(Role.org_chair, village),
        "county_admin": api.headers(Role.county_admin, county),
    }
    for role, headers in readers.items():
        for station in (here, there):  # stations are public: out of subtree too
            read = await api.ok("GET", f"/v1/stations/{station['id']}", as_=headers)
            assert read["id"] == station["id"], role
            opened = await api.ok("GET", f"/v1/stations/{station['id']}/open", as_=headers)
            assert opened["open"] is True, role
        # with org_id: that subtree, whoever asks
        page = await api.ok(
            "GET", "/v1/stations", as_=headers, params={"org_id": other_township["id"]}
        )
        assert [s["id"] for s in page["items"]] == [there["id"]], role

    async def default_list(headers: dict[str, str]) -> list[str]:
        return [s["id"] for s in (await api.ok("GET", "/v1/stations", as_=headers))["items"]]

    # without org_id: staff see their own subtree, members and gov systems see every station
    assert await default_list(readers["member"]) == [here["id"], there["id"]]
    assert await default_list(readers["gov_system"]) == [here["id"], there["id"]]
    assert await default_list(readers["county_admin"]) == [here["id"], there["id"]]
    assert await default_list(readers["org_chair"]) == [here["id"]]
    assert await default_list(readers["station_operator"]) == [here["id"]]
    assert await default_list(api.headers(Role.org_chair, other_township)) == [there["id"]]

    assert (await api.client.get(f"/v1/stations/{here['id']}")).status_code == 401
    assert (await api.client.get("/v1/stations/nope", headers=readers["member"])).status_code == 404
