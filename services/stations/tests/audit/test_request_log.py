"""Stations' request audit trail: a write leaves its row, and the database keeps it."""

from __future__ import annotations

import uuid

from fastapi import FastAPI

from gonghui_shared.permissions import Role
from gonghui_shared.testing.audit import assert_append_only, audit_rows
from gonghui_shared.testing.feed import MembershipFeed
from stations.base import audit_log
from stations.testing import Api, open_station


async def test_a_write_is_recorded_and_kept(api: Api, feed: MembershipFeed, app: FastAPI) -> None:
    county = await feed.org(None, "county_federation", "凤庆县总工会", "530921000000")
    village = await feed.org(
        county, "village_union", "凤庆县一村", "530921101201", lon=99.93, lat=24.58
    )
    await feed.synced()
    station = await open_station(
        api, village, station_type="village_service_point", lon=99.93, lat=24.58
    )
    rid = uuid.uuid4().hex[:16]
    response = await api.client.post(
        f"/v1/stations/{station['id']}/suspend",
        json={"reason": "装修"},
        headers=api.headers(Role.county_admin, county, subject="audit-keeper")
        | {"X-Request-Id": rid},
    )
    assert response.status_code == 200, response.text
    [row] = await audit_rows(app.state.runtime.db, audit_log, request_id=rid)
    assert (row["subject"], row["role"], row["status"]) == ("audit-keeper", "county_admin", 200)
    assert (row["method"], row["route"]) == ("POST", "/v1/stations/{station_id}/suspend")
    assert row["path_params"] == {"station_id": station["id"]}
    assert row["actor_org_path"] == county["path"] and row["org_path"] == village["path"]
    seen = await api.ok(
        "GET", "/v1/audit?actor=audit-keeper", as_=api.headers(Role.county_admin, county)
    )
    assert rid in {item["request_id"] for item in seen["items"]}
    await assert_append_only(app.state.runtime.db, audit_log)
