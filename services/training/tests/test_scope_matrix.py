"""Every role, inside and outside its scope, against the training endpoints."""

from __future__ import annotations

from typing import Any

import pytest

from gonghui_shared.permissions import Action, Role
from gonghui_shared.testing.feed import MembershipFeed
from gonghui_shared.testing.scope import AUDIT_CASE, Case, check_matrix
from training.testing import Api, open_session

CASES = [
    Case(
        "read session",
        Action.sessions_read,
        lambda w: ("GET", f"/v1/sessions/{w['session']}", None),
        member_action=Action.sessions_read,
    ),
    Case(
        "list enrolments",
        Action.sessions_read,
        lambda w: ("GET", f"/v1/sessions/{w['session']}/enrolments", None),
    ),
    Case(
        "enrol a member",
        Action.enrolments_write,
        lambda w: (
            "POST",
            f"/v1/sessions/{w['session']}/enrolments",
            {"member_no": w["member_no"]},
        ),
        member_action=Action.enrol_self,
    ),
    Case(
        "check in by staff",
        Action.attendance_write,
        lambda w: (
            "POST",
            f"/v1/sessions/{w['session']}/attendance",
            {"member_no": w["member_no"]},
        ),
    ),
    Case(
        "QR token",
        Action.attendance_write,
        lambda w: ("GET", f"/v1/sessions/{w['session']}/attendance/qr", None),
    ),
    Case(
        "record spending",
        Action.budget_write,
        lambda w: (
            "POST",
            f"/v1/sessions/{w['session']}/budget",
            {"kind": "spent", "category": "meals", "amount": "120.00"},
        ),
    ),
    Case(
        "create course",
        Action.courses_write,
        lambda w: (
            "POST",
            "/v1/courses",
            {
                "owner_org_id": w["village"],
                "title": "茶叶种植管理",
                "category": "planting_breeding",
                "hours": 16,
            },
        ),
    ),
    Case(
        "create competition",
        Action.competitions_write,
        lambda w: (
            "POST",
            "/v1/competitions",
            {
                "title": "电焊技能比武",
                "host_org_id": w["village"],
                "starts_on": "2026-05-01",
                "ends_on": "2026-05-02",
            },
        ),
    ),
    Case(
        "summary report",
        Action.reports_read,
        lambda w: ("GET", f"/v1/reports/summary?org_id={w['village']}", None),
    ),
    Case(
        "cancel session",
        Action.sessions_write,
        lambda w: ("POST", f"/v1/sessions/{w['session']}/cancel", {"reason": "暴雨"}),
    ),
    AUDIT_CASE,
]


async def build_world(api: Api, feed: MembershipFeed, region: str, name: str) -> dict[str, Any]:
    county = await feed.org(None, "county_federation", name, f"{region}000000")
    village = await feed.org(county, "village_union", f"{name}一村", f"{region}101201")
    await feed.synced()
    member_no = await feed.member(village)
    session = await open_session(api, village, start=True)
    return {
        "county": county["id"],
        "village": village["id"],
        "member_no": member_no,
        "session": session["id"],
        "org": village,
        "county_org": county,
    }


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
async def test_every_role_inside_and_outside_its_scope(
    api: Api, feed: MembershipFeed, role: Role
) -> None:
    inside = await build_world(api, feed, "530921", "凤庆县总工会")
    outside = await build_world(api, feed, "530922", "云县总工会")
    headers = {
        Role.platform_admin: api.headers(Role.platform_admin),
        Role.county_admin: api.headers(Role.county_admin, inside["county_org"]),
        Role.org_chair: api.headers(Role.org_chair, inside["org"]),
        Role.station_operator: api.headers(Role.station_operator, inside["org"]),
        Role.member: api.headers(Role.member, member_no=inside["member_no"]),
        Role.gov_system: api.headers(Role.gov_system, inside["county_org"]),
    }[role]
    assert await check_matrix(api.client, role, headers, CASES, inside, outside) == []
