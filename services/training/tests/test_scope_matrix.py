"""Every role, inside and outside its scope, against every training endpoint.

Each case runs once per world and role, so a case that uses something up (opens,
starts, cancels or completes a session, cancels an enrolment, revokes a
certificate, publishes results) has a resource of its own in the world. The
matrix runs strict: a call the table allows inside must succeed, so a wrong id
or an invalid body cannot pass for "allowed".
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from fastapi import FastAPI

from gonghui_shared.clock import today_in_china
from gonghui_shared.permissions import Action, Role
from gonghui_shared.testing.feed import MembershipFeed
from gonghui_shared.testing.scope import (
    AUDIT_CASE,
    DEAD_LETTER_CASES,
    Case,
    check_matrix,
    uncovered_routes,
)
from training.testing import Api, valid_id_number

CASES = [
    # ---------------------------------------------------------------- courses
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
        "list courses",
        Action.sessions_read,
        lambda w: ("GET", "/v1/courses?category=welding_trades", None),
        member_action=Action.sessions_read,
        scoped=False,  # the catalogue as seen from the caller's own org: nothing to aim at
    ),
    Case(
        # `org_id` is a staff filter: a member has no org scope to name an org in.
        "list courses at an org",
        Action.sessions_read,
        lambda w: ("GET", f"/v1/courses?org_id={w['village']}", None),
    ),
    Case(
        "read course",
        Action.sessions_read,
        lambda w: ("GET", f"/v1/courses/{w['course']}", None),
        member_action=Action.sessions_read,
    ),
    Case(
        "update course",
        Action.courses_write,
        lambda w: ("PATCH", f"/v1/courses/{w['course']}", {"hours": 24}),
    ),
    # ---------------------------------------------------------------- sessions
    Case(
        "schedule session",
        Action.sessions_write,
        lambda w: (
            "POST",
            "/v1/sessions",
            {
                "course_id": w["course"],
                "host_org_id": w["village"],
                "starts_at": "2026-12-07T09:00:00+08:00",
                "ends_at": "2026-12-09T17:00:00+08:00",
                "delivery_mode": "on_site",
                "capacity": 30,
            },
        ),
    ),
    Case(
        "list sessions at an org",
        Action.sessions_read,
        lambda w: ("GET", f"/v1/sessions?org_id={w['village']}", None),
        member_action=Action.sessions_read,
        member_scoped=False,
    ),
    Case(
        "read session",
        Action.sessions_read,
        lambda w: ("GET", f"/v1/sessions/{w['session']}", None),
        member_action=Action.sessions_read,
    ),
    Case(
        "open session",
        Action.sessions_write,
        lambda w: ("POST", f"/v1/sessions/{w['scheduled_session']}/open", None),
    ),
    Case(
        "start session",
        Action.sessions_write,
        lambda w: ("POST", f"/v1/sessions/{w['startable_session']}/start", None),
    ),
    Case(
        "cancel session",
        Action.sessions_write,
        lambda w: ("POST", f"/v1/sessions/{w['cancellable_session']}/cancel", {"reason": "暴雨"}),
    ),
    Case(
        "complete session",
        Action.sessions_write,
        lambda w: ("POST", f"/v1/sessions/{w['completable_session']}/complete", None),
    ),
    # ---------------------------------------------------------------- enrolments
    Case(
        "enrol a member",
        Action.enrolments_write,
        lambda w: (
            "POST",
            f"/v1/sessions/{w['open_session']}/enrolments",
            {"member_no": w["member_no"]},
        ),
        member_action=Action.enrol_self,
    ),
    Case(
        "list a session's enrolments",
        Action.sessions_read,
        lambda w: ("GET", f"/v1/sessions/{w['session']}/enrolments", None),
    ),
    Case(
        "a member's enrolments",
        Action.sessions_read,
        lambda w: (
            "GET",
            f"/v1/enrolments?member_no={w['member_no']}&org_id={w['village']}",
            None,
        ),
        member_action=Action.sessions_read,
    ),
    Case(
        "read enrolment",
        Action.sessions_read,
        lambda w: ("GET", f"/v1/enrolments/{w['enrolment']}", None),
        member_action=Action.sessions_read,
    ),
    Case(
        "cancel enrolment",
        Action.enrolments_write,
        lambda w: ("POST", f"/v1/enrolments/{w['enrolment_to_cancel']}/cancel", None),
        member_action=Action.enrol_self,
    ),
    # ---------------------------------------------------------------- attendance
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
        # The enrolment entitles, not the host's scope: a member who has since transferred
        # still finishes the session. Another county's token finds them not enrolled (409).
        "check in by QR",
        Action.attend_self,
        lambda w: ("POST", f"/v1/sessions/{w['session']}/attendance", {"qr_token": w["qr_token"]}),
        member_action=Action.attend_self,
        members_only=True,
        member_scoped=False,
    ),
    Case(
        "list attendance",
        Action.sessions_read,
        lambda w: ("GET", f"/v1/sessions/{w['session']}/attendance", None),
    ),
    # ---------------------------------------------------------------- certificates
    Case(
        "list certificates",
        Action.sessions_read,
        lambda w: (
            "GET",
            f"/v1/certificates?org_id={w['village']}&member_no={w['member_no']}",
            None,
        ),
        member_action=Action.sessions_read,
    ),
    Case(
        "revoke certificate",
        Action.certificates_revoke,
        lambda w: (
            "POST",
            f"/v1/certificates/{w['certificate']}/revoke",
            {"reason": "培训签到记录经核查系代签"},
        ),
    ),
    # ---------------------------------------------------------------- budget
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
        # Budget figures are the session's, not personal data: whoever may see the session.
        "budget summary",
        Action.sessions_read,
        lambda w: ("GET", f"/v1/sessions/{w['session']}/budget", None),
        member_action=Action.sessions_read,
    ),
    # ---------------------------------------------------------------- competitions
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
        "list competitions at an org",
        Action.sessions_read,
        lambda w: ("GET", f"/v1/competitions?org_id={w['village']}", None),
        member_action=Action.sessions_read,
        member_scoped=False,
    ),
    Case(
        "read competition",
        Action.sessions_read,
        lambda w: ("GET", f"/v1/competitions/{w['competition']}", None),
        member_action=Action.sessions_read,
    ),
    Case(
        "add competition event",
        Action.competitions_write,
        lambda w: ("POST", f"/v1/competitions/{w['competition']}/events", {"trade": "茶艺师"}),
    ),
    Case(
        "enter a member",
        Action.competitions_write,
        lambda w: (
            "POST",
            f"/v1/competition-events/{w['event']}/entries",
            {"member_no": w["member_no"], "employer": "凤庆县滇红茶厂"},
        ),
    ),
    Case(
        "list entries",
        Action.competitions_write,
        lambda w: ("GET", f"/v1/competition-events/{w['event']}/entries", None),
    ),
    Case(
        "set score",
        Action.competitions_write,
        lambda w: ("PUT", f"/v1/competition-entries/{w['entry']}/score", {"score": "92.50"}),
    ),
    Case(
        "publish results",
        Action.competitions_write,
        lambda w: (
            "POST",
            f"/v1/competition-events/{w['publishable_event']}/publish",
            {"gold": 1},
        ),
    ),
    # ---------------------------------------------------------------- reports
    Case(
        "summary report",
        Action.reports_read,
        lambda w: ("GET", f"/v1/reports/summary?org_id={w['village']}", None),
    ),
    Case(
        "cadre training report",
        Action.reports_read,
        lambda w: ("GET", f"/v1/reports/cadre-training?org_id={w['village']}", None),
    ),
    AUDIT_CASE,
    *DEAD_LETTER_CASES,
]

# Routes with no role to check, and why.
EXEMPT = {
    "GET /healthz": "liveness probe, no login",
    "GET /readyz": "readiness probe, no login",
    "GET /v1/certificates/{number}/verify": "public verification of a certificate, no login",
}


async def _session(
    api: Api, course: dict[str, Any], org: dict[str, Any], status: str, enrol: str | None = None
) -> tuple[str, str | None]:
    """A one-day session today, taken to `status`, with `enrol` (a member number) enrolled."""
    today = today_in_china().isoformat()
    ts = await api.schedule(
        course, org, starts_at=f"{today}T09:00:00+08:00", ends_at=f"{today}T17:00:00+08:00"
    )
    enrolment = None
    if status != "scheduled":
        await api.ok("POST", f"/v1/sessions/{ts['id']}/open")
        if enrol is not None:
            enrolment = await api.ok(
                "POST",
                f"/v1/sessions/{ts['id']}/enrolments",
                expect=201,
                json={"member_no": enrol},
            )
    if status == "in_progress":
        await api.ok("POST", f"/v1/sessions/{ts['id']}/start")
    return ts["id"], enrolment["id"] if enrolment else None


async def _non_member_entry(api: Api, event_id: str, serial: int) -> str:
    entry = await api.ok(
        "POST",
        f"/v1/competition-events/{event_id}/entries",
        expect=201,
        json={"name": "杨春花", "id_number": valid_id_number(serial), "phone": "13800138000"},
    )
    entry_id: str = entry["id"]
    return entry_id


async def build_world(
    api: Api, feed: MembershipFeed, region: str, name: str, serial: int
) -> dict[str, Any]:
    """A county with a village, a member of it, and every resource a case acts on."""
    county = await feed.org(None, "county_federation", name, f"{region}000000")
    village = await feed.org(county, "village_union", f"{name}一村", f"{region}101201")
    await feed.synced()
    member_no = await feed.member(village)
    course = await api.course(village)

    session, enrolment = await _session(api, course, village, "in_progress", member_no)
    startable_session, enrolment_to_cancel = await _session(api, course, village, "open", member_no)
    qr = await api.ok("GET", f"/v1/sessions/{session}/attendance/qr")

    certified_session, _ = await _session(api, course, village, "in_progress", member_no)
    await api.ok(
        "POST",
        f"/v1/sessions/{certified_session}/attendance",
        expect=201,
        json={"member_no": member_no},
    )
    completion = await api.ok("POST", f"/v1/sessions/{certified_session}/complete")

    competition = await api.ok(
        "POST",
        "/v1/competitions",
        expect=201,
        json={
            "title": "职工职业技能大赛",
            "host_org_id": village["id"],
            "starts_on": "2026-10-16",
            "ends_on": "2026-10-18",
        },
    )
    events = [
        await api.ok(
            "POST",
            f"/v1/competitions/{competition['id']}/events",
            expect=201,
            json={"trade": trade},
        )
        for trade in ("电焊工", "快递员技能")
    ]
    entry = await _non_member_entry(api, events[0]["id"], serial)
    scored = await _non_member_entry(api, events[1]["id"], serial + 1)
    await api.ok("PUT", f"/v1/competition-entries/{scored}/score", json={"score": "88.00"})

    return {
        "county_org": county,
        "org": village,
        "village": village["id"],
        "member_no": member_no,
        "course": course["id"],
        "session": session,
        "enrolment": enrolment,
        "qr_token": qr["token"],
        "open_session": (await _session(api, course, village, "open"))[0],
        "scheduled_session": (await _session(api, course, village, "scheduled"))[0],
        "startable_session": startable_session,
        "enrolment_to_cancel": enrolment_to_cancel,
        "cancellable_session": (await _session(api, course, village, "scheduled"))[0],
        "completable_session": (await _session(api, course, village, "in_progress"))[0],
        "certificate": completion["certificates"][0],
        "competition": competition["id"],
        "event": events[0]["id"],
        "entry": entry,
        "publishable_event": events[1]["id"],
        "dead_letter": await feed.dead_letter(village),
    }


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
async def test_every_role_inside_and_outside_its_scope(
    api: Api, feed: MembershipFeed, role: Role
) -> None:
    inside = await build_world(api, feed, "530921", "凤庆县总工会", 901)
    outside = await build_world(api, feed, "530922", "云县总工会", 903)
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
    if role is Role.member:
        # Let through in another county, a member's lists must show nothing of it.
        for case in CASES:
            method, url, _ = case.call(outside)
            if case.member_scoped is False and method == "GET":
                response = await api.client.get(url, headers=headers)
                assert response.json()["items"] == [], case.name


def test_the_matrix_reaches_every_endpoint(app: FastAPI) -> None:
    # Only the shape of the urls matters here: any id stands for every kind of id.
    placeholder_world: defaultdict[str, str] = defaultdict(lambda: "0193a1c2-7d1e-7a3b-9c5d")
    assert uncovered_routes(app, CASES, placeholder_world, EXEMPT) == []
