"""Every role, inside and outside its scope, against the stations endpoints.

Stations are public service points: reading one, or searching nearby, is open
to every role that may read stations, wherever the station is. Writing, visits,
subsidies and coverage are scoped to the host org's subtree.
"""

from __future__ import annotations

from typing import Any

import pytest

from gonghui_shared.permissions import Action, Role
from gonghui_shared.testing.feed import MembershipFeed
from gonghui_shared.testing.scope import AUDIT_CASE, Case, check_matrix
from stations.testing import Api, open_station

CASES = [
    Case(
        "read station",
        Action.stations_read,
        lambda w: ("GET", f"/v1/stations/{w['station']}", None),
        member_action=Action.stations_read,
        scoped=False,
    ),
    Case(
        "nearby",
        Action.stations_read,
        lambda w: ("GET", f"/v1/stations/nearby?lon={w['lon']}&lat={w['lat']}", None),
        member_action=Action.stations_read,
        scoped=False,
    ),
    Case(
        "update station",
        Action.stations_write,
        lambda w: ("PATCH", f"/v1/stations/{w['station']}", {"contact_name": "李站长"}),
    ),
    Case(
        "record visit",
        Action.visits_write,
        lambda w: ("POST", f"/v1/stations/{w['station']}/visits", {"services": ["drinking_water"]}),
    ),
    Case(
        "list visits",
        Action.visits_write,
        lambda w: ("GET", f"/v1/stations/{w['station']}/visits", None),
    ),
    Case(
        "record subsidy",
        Action.subsidies_write,
        lambda w: ("POST", f"/v1/stations/{w['station']}/subsidies", {"period": "2026-01"}),
    ),
    Case(
        "subsidy totals",
        Action.reports_read,
        lambda w: ("GET", f"/v1/subsidies/totals?org_id={w['village']}", None),
    ),
    Case(
        "coverage",
        Action.stations_read,
        lambda w: ("GET", f"/v1/coverage?org_id={w['village']}", None),
    ),
    Case(
        "suspend station",
        Action.stations_write,
        lambda w: ("POST", f"/v1/stations/{w['station']}/suspend", {"reason": "装修"}),
    ),
    AUDIT_CASE,
]


async def build_world(
    api: Api, feed: MembershipFeed, region: str, name: str, lon: float
) -> dict[str, Any]:
    county = await feed.org(None, "county_federation", name, f"{region}000000")
    village = await feed.org(
        county, "village_union", f"{name}一村", f"{region}101201", lon=lon, lat=24.58
    )
    await feed.synced()
    member_no = await feed.member(village)
    station = await open_station(
        api, village, station_type="village_service_point", lon=lon, lat=24.58
    )
    return {
        "county_org": county,
        "org": village,
        "village": village["id"],
        "member_no": member_no,
        "station": station["id"],
        "lon": lon,
        "lat": 24.58,
    }


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
async def test_every_role_inside_and_outside_its_scope(
    api: Api, feed: MembershipFeed, role: Role
) -> None:
    inside = await build_world(api, feed, "530921", "凤庆县总工会", 99.93)
    outside = await build_world(api, feed, "530922", "云县总工会", 100.13)
    headers = {
        Role.platform_admin: api.headers(Role.platform_admin),
        Role.county_admin: api.headers(Role.county_admin, inside["county_org"]),
        Role.org_chair: api.headers(Role.org_chair, inside["org"]),
        Role.station_operator: api.headers(Role.station_operator, inside["org"]),
        Role.member: api.headers(Role.member, member_no=inside["member_no"]),
        Role.gov_system: api.headers(Role.gov_system, inside["county_org"]),
    }[role]
    assert await check_matrix(api.client, role, headers, CASES, inside, outside) == []
