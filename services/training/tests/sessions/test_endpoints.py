"""Sessions over HTTP: scheduling rules, the lifecycle, cancellation, events, listing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from gonghui_shared.contracts.membership import OrgUpdated
from gonghui_shared.permissions import Role
from gonghui_shared.testing.feed import MembershipFeed
from training.base import outbox
from training.enrolments.models import Enrolment
from training.testing import Api


async def events(app: FastAPI, event_type: str) -> list[dict[str, Any]]:
    """Payloads of the outbox rows of one type, oldest first."""
    async with app.state.runtime.db.sessions() as session:
        rows = await session.execute(
            select(outbox.c.payload)
            .where(outbox.c.event_type == event_type)
            .order_by(outbox.c.created_at)
        )
        return [json.loads(payload)["data"] for (payload,) in rows]


async def add_enrolments(app: FastAPI, session_id: str, statuses: list[str]) -> list[str]:
    """Enrolment rows straight into the table (the enrolment API is another module's)."""
    rows = [
        Enrolment(
            session_id=session_id,
            person_key=f"m:53092120260{i:05d}",
            member_no=f"53092120260{i:05d}",
            name=f"学员{i}",
            worker_category="migrant_worker",
            status=status,
            waitlisted_at=datetime.now(UTC) if status == "waitlisted" else None,
            cancelled_at=datetime(2026, 1, 1, tzinfo=UTC) if status == "cancelled" else None,
            enrolled_by="test",
        )
        for i, status in enumerate(statuses)
    ]
    async with app.state.runtime.db.transaction() as session:
        session.add_all(rows)
    return [r.id for r in rows]


async def enrolment_states(app: FastAPI, ids: list[str]) -> list[tuple[str, datetime | None]]:
    async with app.state.runtime.db.sessions() as session:
        found = {
            e.id: (e.status, e.cancelled_at)
            for e in await session.scalars(select(Enrolment).where(Enrolment.id.in_(ids)))
        }
    return [found[i] for i in ids]


async def test_schedule_a_session_on_china_days(
    app: FastAPI, api: Api, feed: MembershipFeed
) -> None:
    county, township, _ = await feed.tree()
    course = await api.course(county)
    chair = api.headers(Role.org_chair, township)
    ts = await api.schedule(
        course,
        township,
        as_=chair,
        # 18:00 UTC on 9 March is 02:00 on 10 March in China; 12 March 15:59 UTC is 23:59 there.
        starts_at="2026-03-09T18:00:00Z",
        ends_at="2026-03-12T15:59:00+00:00",
        planned_budget=8600.1,
        station_id="0193a1c2-7d1e-7a3b-9c5d-00000000aaaa",
    )
    assert ts["status"] == "scheduled" and ts["host_org_path"] == township["path"]
    assert (ts["first_day"], ts["last_day"]) == ("2026-03-10", "2026-03-12")
    assert ts["course_category"] == "welding_trades" and ts["course_title"] == course["title"]
    assert ts["planned_budget"] == "8600.10" and ts["capacity"] == 40
    assert ts["delivery_mode"] == "on_site" and ts["station_id"].endswith("aaaa")
    assert datetime.fromisoformat(ts["starts_at"]) == datetime(2026, 3, 9, 18, tzinfo=UTC)

    [scheduled] = await events(app, "training.session.scheduled")
    assert scheduled["session_id"] == ts["id"] and scheduled["course_id"] == course["id"]
    assert scheduled["host_org_id"] == township["id"]
    assert scheduled["course_category"] == "welding_trades"
    assert scheduled["planned_budget_fen"] == 860010 and scheduled["capacity"] == 40

    detail = await api.ok("GET", f"/v1/sessions/{ts['id']}", as_=chair)
    assert (detail["enrolled"], detail["waitlisted"]) == (0, 0)
    assert detail["budget"] == {
        "planned_budget": "8600.10",
        "planned_total": "0.00",
        "spent_total": "0.00",
        "over_budget": False,
    }


async def test_session_fields_are_validated(api: Api, feed: MembershipFeed) -> None:
    county, _, _ = await feed.tree()
    course = await api.course(county)
    base = {
        "course_id": course["id"],
        "host_org_id": county["id"],
        "starts_at": "2026-03-10T09:00:00+08:00",
        "ends_at": "2026-03-12T17:00:00+08:00",
        "delivery_mode": "classroom",
        "capacity": 30,
    }
    for change, field in [
        ({"ends_at": "2026-03-10T08:00:00+08:00"}, "ends_at"),  # ends before it starts
        ({"ends_at": "2026-03-10T09:00:00+08:00"}, "ends_at"),  # ends as it starts
        ({"ends_at": "2027-03-12T09:00:00+08:00"}, "ends_at"),  # longer than 366 days
        ({"starts_at": "2026-03-10T09:00:00"}, "starts_at"),  # no UTC offset
        ({"starts_at": "next monday"}, "starts_at"),
        # were 500s (the kind of input the fuzzer found on /v1/audit): year 1 at +00:01 has no
        # UTC equivalent, and 23:00 UTC on 31 December 9999 is already year 10000 in China
        (
            {"starts_at": "0001-01-01T00:00:00+00:01", "ends_at": "0001-01-02T00:00:00+00:01"},
            "starts_at",
        ),
        (
            {"starts_at": "9999-12-31T00:00:00+00:00", "ends_at": "9999-12-31T23:00:00+00:00"},
            "ends_at",
        ),
        ({"capacity": 0}, "capacity"),
        ({"capacity": 10001}, "capacity"),
        ({"delivery_mode": "radio"}, "delivery_mode"),
        ({"planned_budget": -1}, "planned_budget"),
        ({"planned_budget": "0.001"}, "planned_budget"),
        ({"planned_budget": 10000000.01}, "planned_budget"),
        ({"place": "场" * 201}, "place"),
    ]:
        response = await api.client.post("/v1/sessions", headers=api.platform, json=base | change)
        assert response.status_code == 422, (change, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert [d["field"] for d in error["details"]] == [field], change
    ok = await api.ok(
        "POST", "/v1/sessions", expect=201, json=base | {"ends_at": "2027-03-11T09:00:00+08:00"}
    )
    assert ok["planned_budget"] == "0.00" and ok["last_day"] == "2027-03-11"


async def test_host_org_and_course_must_fit(api: Api, feed: MembershipFeed) -> None:
    county, township, village = await feed.tree()
    other = await feed.org(None, "county_federation", "云县总工会", "530922000000")
    await feed.synced()
    course = await api.course(county)
    village_course = await api.course(village, title="村里的育婴师培训")
    yun_course = await api.course(other, title="云县电子商务", category="ecommerce")
    base = {
        "starts_at": "2026-03-10T09:00:00+08:00",
        "ends_at": "2026-03-12T17:00:00+08:00",
        "delivery_mode": "classroom",
        "capacity": 30,
    }

    async def post(body: dict[str, Any], as_: dict[str, str] | None = None) -> dict[str, Any]:
        response = await api.client.post("/v1/sessions", headers=as_ or api.platform, json=body)
        return {"status": response.status_code, **response.json()["error"]}

    unknown_org = await post(base | {"course_id": course["id"], "host_org_id": "nope"})
    assert (unknown_org["status"], unknown_org["code"]) == (404, "org_not_found")
    assert unknown_org["details"] == {"field": "host_org_id"}
    unknown_course = await post(base | {"course_id": "nope", "host_org_id": village["id"]})
    assert (unknown_course["status"], unknown_course["code"]) == (404, "course_not_found")
    foreign = await post(base | {"course_id": yun_course["id"], "host_org_id": village["id"]})
    assert (foreign["status"], foreign["code"]) == (422, "course_not_available")
    assert foreign["details"] == {"field": "course_id"}
    # The county's course at the village, and the village's at the township above it, are fine.
    await api.schedule(course, village)
    await api.schedule(village_course, township)
    # A village chair schedules at its village only.
    chair = api.headers(Role.org_chair, village)
    above = await post(base | {"course_id": course["id"], "host_org_id": township["id"]}, chair)
    assert (above["status"], above["code"]) == (403, "out_of_scope")
    await api.schedule(course, village, as_=chair)
    for role in (Role.station_operator, Role.member, Role.gov_system):
        denied = await post(
            base | {"course_id": course["id"], "host_org_id": village["id"]},
            api.headers(role, village),
        )
        assert (denied["status"], denied["code"]) == (403, "forbidden"), role


async def test_a_dissolved_org_hosts_no_new_session(api: Api, feed: MembershipFeed) -> None:
    county, _, village = await feed.tree()
    course = await api.course(county)
    await feed.publish(
        OrgUpdated(
            org_id=village["id"],
            path=village["path"],
            name=village["name"],
            region_code=village["region_code"],
            status="dissolved",
            changed=["status"],
        ),
        aggregate_id=village["id"],
        org_path=village["path"],
    )
    await feed.synced()
    response = await api.client.post(
        "/v1/sessions",
        headers=api.platform,
        json={
            "course_id": course["id"],
            "host_org_id": village["id"],
            "starts_at": "2026-03-10T09:00:00+08:00",
            "ends_at": "2026-03-12T17:00:00+08:00",
            "delivery_mode": "classroom",
            "capacity": 30,
        },
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "org_dissolved"
    assert response.json()["error"]["details"] == {"field": "host_org_id"}
    courses = await api.client.post(
        "/v1/courses",
        headers=api.platform,
        json={"owner_org_id": village["id"], "title": "电焊", "category": "other", "hours": 8},
    )
    assert courses.status_code == 409 and courses.json()["error"]["code"] == "org_dissolved"


async def test_lifecycle_scheduled_open_in_progress_and_illegal_moves(
    api: Api, feed: MembershipFeed
) -> None:
    county, _, village = await feed.tree()
    ts = await api.schedule(await api.course(county), village)
    chair = api.headers(Role.org_chair, village)
    url = f"/v1/sessions/{ts['id']}"

    async def refused(action: str, current: str, wanted: str) -> None:
        response = await api.client.post(f"{url}/{action}", headers=chair, json={"reason": "改期"})
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_session_transition"
        assert error["details"] == {"current": current, "wanted": wanted}
        assert current in error["message"] and wanted in error["message"]

    await refused("start", "scheduled", "in_progress")
    opened = await api.ok("POST", f"{url}/open", as_=chair)
    assert opened["status"] == "open" and opened["course_title"] == "电焊工职业技能培训"
    await refused("open", "open", "open")
    started = await api.ok("POST", f"{url}/start", as_=chair)
    assert started["status"] == "in_progress"
    await refused("open", "in_progress", "open")
    await refused("start", "in_progress", "in_progress")
    assert (await api.ok("GET", url, as_=chair))["status"] == "in_progress"
    missing = await api.client.post("/v1/sessions/nope/open", headers=chair)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "session_not_found"


async def test_cancel_needs_a_reason_and_cancels_the_enrolments(
    app: FastAPI, api: Api, feed: MembershipFeed
) -> None:
    county, _, village = await feed.tree()
    ts = await api.schedule(await api.course(county), village)
    other = await api.schedule(await api.course(county, title="另一门课"), village)
    url = f"/v1/sessions/{ts['id']}"
    await api.ok("POST", f"{url}/open")
    ids = await add_enrolments(app, ts["id"], ["enrolled", "enrolled", "waitlisted", "cancelled"])
    [untouched] = await add_enrolments(app, other["id"], ["enrolled"])
    detail = await api.ok("GET", url)
    assert (detail["enrolled"], detail["waitlisted"]) == (2, 1)

    for body in ({}, {"reason": " "}, {"reason": "x" * 501}):
        response = await api.client.post(f"{url}/cancel", headers=api.platform, json=body)
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["field"] == "reason"
    assert (await api.ok("GET", url))["status"] == "open"

    before = datetime.now(UTC)
    cancelled = await api.ok("POST", f"{url}/cancel", json={"reason": "暴雨预警，实训基地停用"})
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancel_reason"] == "暴雨预警，实训基地停用"
    states = await enrolment_states(app, ids)
    assert [s for s, _ in states] == ["cancelled"] * 4
    assert all(at is not None and at >= before for _, at in states[:3])
    assert states[3][1] == datetime(2026, 1, 1, tzinfo=UTC)  # already cancelled: left alone
    assert await enrolment_states(app, [untouched]) == [("enrolled", None)]
    detail = await api.ok("GET", url)
    assert (detail["enrolled"], detail["waitlisted"]) == (0, 0)

    [event] = await events(app, "training.session.cancelled")
    assert event == {
        "session_id": ts["id"],
        "host_org_id": village["id"],
        "reason": "暴雨预警，实训基地停用",
    }
    again = await api.client.post(f"{url}/cancel", headers=api.platform, json={"reason": "再取消"})
    assert again.status_code == 409
    assert again.json()["error"]["details"] == {"current": "cancelled", "wanted": "cancelled"}
    reopen = await api.client.post(f"{url}/open", headers=api.platform)
    assert reopen.status_code == 409
    assert len(await events(app, "training.session.cancelled")) == 1


async def test_cancel_from_scheduled_and_in_progress(api: Api, feed: MembershipFeed) -> None:
    county, _, village = await feed.tree()
    course = await api.course(county)
    first = await api.schedule(course, village)
    second = await api.schedule(course, village)
    await api.ok("POST", f"/v1/sessions/{second['id']}/open")
    await api.ok("POST", f"/v1/sessions/{second['id']}/start")
    for ts in (first, second):
        done = await api.ok("POST", f"/v1/sessions/{ts['id']}/cancel", json={"reason": "讲师病假"})
        assert done["status"] == "cancelled"


async def test_list_filters_and_pages(api: Api, feed: MembershipFeed) -> None:
    county, township, village = await feed.tree()
    welding = await api.course(county)
    tea = await api.course(county, title="茶叶种植管理", category="planting_breeding")
    march = await api.schedule(welding, village)  # 10-12 March
    april = await api.schedule(
        tea, township, starts_at="2026-04-01T09:00:00+08:00", ends_at="2026-04-30T17:00:00+08:00"
    )
    may = await api.schedule(
        welding, county, starts_at="2026-05-20T09:00:00+08:00", ends_at="2026-05-20T17:00:00+08:00"
    )
    await api.ok("POST", f"/v1/sessions/{april['id']}/open")

    async def ids(query: str, as_: dict[str, str] | None = None) -> list[str]:
        page = await api.ok("GET", f"/v1/sessions{query}", as_=as_)
        return [s["id"] for s in page["items"]]

    assert await ids("") == [march["id"], april["id"], may["id"]]
    assert await ids("?status=open") == [april["id"]]
    assert await ids(f"?course_id={welding['id']}") == [march["id"], may["id"]]
    assert await ids(f"?org_id={township['id']}") == [march["id"], april["id"]]
    # Overlap with the period: April's session runs through 12 April.
    assert await ids("?from=2026-03-12&to=2026-04-12") == [march["id"], april["id"]]
    assert await ids("?from=2026-03-13&to=2026-03-31") == []
    assert await ids("?from=2026-04-30") == [april["id"], may["id"]]
    assert await ids("?to=2026-03-10") == [march["id"]]
    backwards = await api.client.get(
        "/v1/sessions?from=2026-05-01&to=2026-04-01", headers=api.platform
    )
    assert backwards.status_code == 422 and backwards.json()["error"]["details"] == {
        "field": "from"
    }
    bad = await api.client.get("/v1/sessions?status=paused", headers=api.platform)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "status"
    page = await api.ok("GET", "/v1/sessions?limit=2")
    assert len(page["items"]) == 2 and page["items"][0]["course_title"] == "电焊工职业技能培训"
    rest = await api.ok("GET", f"/v1/sessions?limit=2&cursor={page['next_cursor']}")
    assert [s["id"] for s in rest["items"]] == [may["id"]] and rest["next_cursor"] is None
