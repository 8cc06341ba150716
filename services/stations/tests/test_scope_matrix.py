"""Every role, inside and outside its scope, against every stations endpoint.

Stations are public service points: reading one, listing them, or searching
nearby is open to every role that may read stations, wherever the station is.
Writing, visits, subsidies and coverage are scoped to the host org's subtree.
Each case runs once per world and role, so a case that uses something up
(suspends, reopens or closes a station, pays a subsidy line) has a resource of
its own in the world. The matrix runs strict: a call the table allows inside
must succeed, so a wrong id or an invalid body cannot pass for "allowed".
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from fastapi import FastAPI

from gonghui_shared.permissions import Action, Role
from gonghui_shared.testing.feed import MembershipFeed
from gonghui_shared.testing.scope import (
    AUDIT_CASE,
    DEAD_LETTER_CASES,
    Case,
    check_matrix,
    uncovered_routes,
)
from stations.config import StationsSettings
from stations.testing import Api, dev_card_key, open_station, sign_member_card, station_body

CASES = [
    # ---------------------------------------------------------------- stations
    Case(
        "open a station",
        Action.stations_write,
        lambda w: ("POST", "/v1/stations", station_body(w["org"], lon=w["lon"], lat=w["lat"])),
    ),
    Case(
        "list stations at an org",
        Action.stations_read,
        lambda w: ("GET", f"/v1/stations?org_id={w['village']}", None),
        member_action=Action.stations_read,
        scoped=False,
    ),
    Case(
        "read station",
        Action.stations_read,
        lambda w: ("GET", f"/v1/stations/{w['station']}", None),
        member_action=Action.stations_read,
        scoped=False,
    ),
    Case(
        "open at a time",
        Action.stations_read,
        lambda w: ("GET", f"/v1/stations/{w['station']}/open?at=2026-11-27T08:00:00%2B08:00", None),
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
        "suspend station",
        Action.stations_write,
        lambda w: ("POST", f"/v1/stations/{w['station_to_suspend']}/suspend", {"reason": "装修"}),
    ),
    Case(
        "reopen station",
        Action.stations_write,
        lambda w: (
            "POST",
            f"/v1/stations/{w['suspended_station']}/reopen",
            {"reason": "装修完成"},
        ),
    ),
    Case(
        "close station",
        Action.stations_write,
        lambda w: ("POST", f"/v1/stations/{w['station_to_close']}/close", {"reason": "店铺搬迁"}),
    ),
    # ---------------------------------------------------------------- visits and feedback
    Case(
        "record a member's visit with feedback",
        Action.visits_write,
        lambda w: (
            "POST",
            f"/v1/stations/{w['station']}/visits",
            {
                "member_card": w["member_card"],
                "services": ["drinking_water", "phone_charging"],
                "rating": 5,
                "comment": "水是热的，充电很快",
            },
        ),
    ),
    Case(
        "list visits",
        Action.visits_write,
        lambda w: ("GET", f"/v1/stations/{w['station']}/visits", None),
    ),
    Case(
        # The operators who record the visits, and whoever reads reports, see the day counts.
        "daily counts",
        (Action.visits_write, Action.reports_read),
        lambda w: ("GET", f"/v1/stations/{w['station']}/visits/daily", None),
    ),
    # ---------------------------------------------------------------- subsidies
    Case(
        "record subsidy",
        Action.subsidies_write,
        lambda w: ("POST", f"/v1/stations/{w['station']}/subsidies", {"period": "2026-01"}),
    ),
    Case(
        "accrue subsidies",
        Action.subsidies_write,
        lambda w: ("POST", "/v1/subsidies/accrue", {"org_id": w["village"], "period": "2026-03"}),
    ),
    Case(
        "pay subsidy",
        Action.subsidies_write,
        lambda w: ("POST", f"/v1/subsidies/{w['subsidy']}/pay", {"paid_on": "2026-03-05"}),
    ),
    Case(
        "list subsidies",
        Action.reports_read,
        lambda w: ("GET", f"/v1/subsidies?org_id={w['village']}", None),
    ),
    Case(
        "subsidy totals",
        Action.reports_read,
        lambda w: ("GET", f"/v1/subsidies/totals?org_id={w['village']}", None),
    ),
    # ---------------------------------------------------------------- coverage
    Case(
        "coverage",
        Action.stations_read,
        lambda w: ("GET", f"/v1/coverage?org_id={w['village']}", None),
    ),
    AUDIT_CASE,
    *DEAD_LETTER_CASES,
]

# Routes with no role to check, and why.
EXEMPT = {
    "GET /healthz": "liveness probe, no login",
    "GET /readyz": "readiness probe, no login",
    "GET /v1/amenities": "the public amenity vocabulary, no login",
}


async def build_world(
    api: Api,
    feed: MembershipFeed,
    settings: StationsSettings,
    region: str,
    name: str,
    lon: float,
) -> dict[str, Any]:
    """A county with a located village, a member of it, and every station a case acts on."""
    county = await feed.org(None, "county_federation", name, f"{region}000000")
    village = await feed.org(
        county, "village_union", f"{name}一村", f"{region}101201", lon=lon, lat=24.58
    )
    await feed.synced()
    member_no = await feed.member(village)

    async def station(status: str = "active") -> str:
        opened = await open_station(
            api, village, status, station_type="village_service_point", lon=lon, lat=24.58
        )
        station_id: str = opened["id"]
        return station_id

    main_station = await station()
    subsidy = await api.ok(
        "POST", f"/v1/stations/{main_station}/subsidies", expect=201, json={"period": "2026-02"}
    )
    return {
        "county_org": county,
        "org": village,
        "village": village["id"],
        "member_no": member_no,
        "member_card": sign_member_card(dev_card_key(settings), member_no),
        "station": main_station,
        "station_to_suspend": await station(),
        "suspended_station": await station("suspended"),
        "station_to_close": await station(),
        "subsidy": subsidy["id"],
        "dead_letter": await feed.dead_letter(village),
        "lon": lon,
        "lat": 24.58,
    }


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
async def test_every_role_inside_and_outside_its_scope(
    api: Api, feed: MembershipFeed, settings: StationsSettings, role: Role
) -> None:
    inside = await build_world(api, feed, settings, "530921", "凤庆县总工会", 99.93)
    outside = await build_world(api, feed, settings, "530922", "云县总工会", 100.13)
    headers = {
        Role.platform_admin: api.headers(Role.platform_admin),
        Role.county_admin: api.headers(Role.county_admin, inside["county_org"]),
        Role.org_chair: api.headers(Role.org_chair, inside["org"]),
        Role.station_operator: api.headers(Role.station_operator, inside["org"]),
        Role.member: api.headers(Role.member, member_no=inside["member_no"]),
        Role.gov_system: api.headers(Role.gov_system, inside["county_org"]),
    }[role]
    mismatches = await check_matrix(api.client, role, headers, CASES, inside, outside, strict=True)
    assert mismatches == []


def test_the_matrix_reaches_every_endpoint(app: FastAPI) -> None:
    # Only the shape of the urls matters here: any value stands for every kind of id.
    placeholder_world: defaultdict[str, Any] = defaultdict(lambda: "0193a1c2-7d1e-7a3b-9c5d")
    placeholder_world["org"] = {"id": "0193a1c2-7d1e-7a3b-9c5d"}
    assert uncovered_routes(app, CASES, placeholder_world, EXEMPT) == []
