"""Attendance over HTTP: staff check-in, its refusals, person-times vs unique persons, events."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from gonghui_shared.clock import today_in_china
from gonghui_shared.permissions import Role
from gonghui_shared.testing.feed import MembershipFeed
from training.base import outbox
from training.testing import Api, non_member, open_session


def url(ts: dict[str, Any], tail: str = "attendance") -> str:
    return f"/v1/sessions/{ts['id']}/{tail}"


async def enrol(api: Api, ts: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    enrolment: dict[str, Any] = await api.ok("POST", url(ts, "enrolments"), expect=201, json=body)
    return enrolment


async def error_of(api: Api, method: str, path: str, status: int, **kw: Any) -> dict[str, Any]:
    response = await api.client.request(method, path, **({"headers": api.platform} | kw))
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


async def test_staff_check_in_one_record_per_person_per_day(api: Api, feed: MembershipFeed) -> None:
    county, _, village = await feed.tree()
    ts = await open_session(api, county, days=3, start=True, category="planting_breeding")
    member_no = await feed.member(village)
    member = await enrol(api, ts, {"member_no": member_no})
    person = await enrol(api, ts, non_member())
    operator = api.headers(Role.station_operator, county)  # attendance.write

    today = today_in_china()
    record = await api.ok("POST", url(ts), as_=operator, expect=201, json={"member_no": member_no})
    assert record["day"] == today.isoformat() and record["method"] == "staff"
    assert record["enrolment_id"] == member["id"] and record["member_no"] == member_no
    assert record["person_key"] == f"m:{member_no}"
    assert record["worker_category"] == "migrant_worker"

    error = await error_of(api, "POST", url(ts), 409, json={"member_no": member_no})
    assert error["code"] == "already_checked_in" and error["details"] == {"day": today.isoformat()}

    tomorrow = (today + timedelta(days=1)).isoformat()
    by_id = await api.ok(
        "POST", url(ts), expect=201, json={"enrolment_id": person["id"], "day": tomorrow}
    )
    assert by_id["day"] == tomorrow and by_id["name"] == person["name"]
    assert by_id["worker_category"] == "rural_labour" and by_id["member_no"] is None

    for day in (today - timedelta(days=1), today + timedelta(days=3)):
        error = await error_of(
            api, "POST", url(ts), 422, json={"member_no": member_no, "day": day.isoformat()}
        )
        assert error["code"] == "day_outside_session" and error["details"]["field"] == "day"

    for body in ({}, {"member_no": member_no, "enrolment_id": member["id"]}):
        error = await error_of(api, "POST", url(ts), 422, json=body)
        assert error["code"] == "invalid_checkin"
    listed = await api.ok("GET", url(ts))
    assert (listed["person_times"], listed["unique_persons"]) == (2, 2)


async def test_only_enrolled_people_check_in(api: Api, feed: MembershipFeed) -> None:
    county, _, village = await feed.tree()
    ts = await open_session(api, county, capacity=1, start=True)
    enrolled, waitlisted, cancelled, stranger = [await feed.member(village) for _ in range(4)]
    first = await enrol(api, ts, {"member_no": enrolled})
    assert (await enrol(api, ts, {"member_no": waitlisted}))["status"] == "waitlisted"
    dropped = await enrol(api, ts, {"member_no": cancelled})
    await api.ok("POST", f"/v1/enrolments/{dropped['id']}/cancel")

    for body, status in (
        ({"member_no": waitlisted}, "waitlisted"),
        ({"enrolment_id": dropped["id"]}, "cancelled"),
    ):
        error = await error_of(api, "POST", url(ts), 409, json=body)
        assert error["code"] == "not_enrolled" and error["details"]["status"] == status
    for body in ({"member_no": stranger}, {"enrolment_id": "nope"}):
        error = await error_of(api, "POST", url(ts), 409, json=body)
        assert error["code"] == "not_enrolled"
    # An enrolment of another session is not one of this session.
    other = await open_session(api, county, start=True)
    elsewhere = await enrol(api, other, {"member_no": stranger})
    error = await error_of(api, "POST", url(ts), 409, json={"enrolment_id": elsewhere["id"]})
    assert error["code"] == "not_enrolled"

    await api.ok("POST", url(ts), expect=201, json={"enrolment_id": first["id"]})


async def test_attendance_only_while_in_progress_and_in_scope(
    api: Api, feed: MembershipFeed
) -> None:
    county, township, village = await feed.tree()
    neighbour = await feed.org(township, "village_union", "东城社区工会联合会", "530921101202")
    await feed.synced()
    ts = await open_session(api, village)
    member_no = await feed.member(village)
    await enrol(api, ts, {"member_no": member_no})
    error = await error_of(api, "POST", url(ts), 409, json={"member_no": member_no})
    assert error["code"] == "session_not_in_progress" and error["details"] == {"status": "open"}
    await api.ok("POST", f"/v1/sessions/{ts['id']}/start")

    for headers, code in (
        (api.headers(Role.org_chair, neighbour), "out_of_scope"),
        (api.headers(Role.gov_system, county), "forbidden"),
        (api.headers(Role.member, village, member_no=member_no), "forbidden"),
    ):
        error = await error_of(
            api, "POST", url(ts), 403, json={"member_no": member_no}, headers=headers
        )
        assert error["code"] == code
    error = await error_of(api, "POST", "/v1/sessions/nope/attendance", 404, json={})
    assert error["code"] == "session_not_found"

    await api.ok(
        "POST",
        url(ts),
        as_=api.headers(Role.org_chair, village),
        expect=201,
        json={"member_no": member_no},
    )
    listed = await api.ok("GET", url(ts), as_=api.headers(Role.gov_system, county))
    assert listed["person_times"] == 1
    for headers, code in (
        (api.headers(Role.org_chair, neighbour), "out_of_scope"),
        (api.headers(Role.member, village, member_no=member_no), "forbidden"),
    ):
        error = await error_of(api, "GET", url(ts), 403, headers=headers)
        assert error["code"] == code


async def test_person_times_and_unique_persons_are_kept_apart(
    api: Api, feed: MembershipFeed
) -> None:
    """3 people on both days and 1 on the first: 7 person-times (人次), 4 unique persons."""
    county, _, village = await feed.tree()
    ts = await open_session(api, county, days=2, start=True)
    day1 = today_in_china()
    day2 = day1 + timedelta(days=1)
    people = [await enrol(api, ts, {"member_no": await feed.member(village)}) for _ in range(3)]
    people.append(await enrol(api, ts, non_member()))
    for person in people[:3]:
        for day in (day1, day2):
            await api.ok(
                "POST",
                url(ts),
                expect=201,
                json={"enrolment_id": person["id"], "day": day.isoformat()},
            )
    await api.ok(
        "POST", url(ts), expect=201, json={"enrolment_id": people[3]["id"], "day": str(day1)}
    )

    everything = await api.ok("GET", url(ts))
    assert (everything["person_times"], everything["unique_persons"]) == (7, 4)
    assert len(everything["items"]) == 7 and everything["next_cursor"] is None
    assert len({r["person_key"] for r in everything["items"]}) == 4

    first_day = await api.ok("GET", url(ts), params={"day": day1.isoformat()})
    assert (first_day["person_times"], first_day["unique_persons"]) == (4, 4)
    second_day = await api.ok("GET", url(ts), params={"day": day2.isoformat()})
    assert (second_day["person_times"], second_day["unique_persons"]) == (3, 3)

    # The figures cover the whole selection, whichever page is shown.
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = await api.ok("GET", url(ts), params=params)
        assert (page["person_times"], page["unique_persons"]) == (7, 4)
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [r["id"] for r in everything["items"]]


async def test_concurrent_check_ins_of_one_person_make_one_record(
    api: Api, feed: MembershipFeed
) -> None:
    county, _, village = await feed.tree()
    ts = await open_session(api, county, start=True)
    member_no = await feed.member(village)
    await enrol(api, ts, {"member_no": member_no})
    responses = await asyncio.gather(
        *(
            api.client.post(url(ts), headers=api.platform, json={"member_no": member_no})
            for _ in range(4)
        )
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {
        "already_checked_in"
    }

    again = await api.client.post(url(ts), headers=api.platform, json={"member_no": member_no})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_checked_in"
    assert (await api.ok("GET", url(ts)))["person_times"] == 1


async def test_attendance_is_published_without_id_numbers(
    api: Api, app: FastAPI, feed: MembershipFeed
) -> None:
    county, _, village = await feed.tree()
    ts = await open_session(api, county, start=True, category="childcare_domestic")
    body = non_member()
    person = await enrol(api, ts, body)
    member_no = await feed.member(village, category="new_employment", subtype="courier")
    await enrol(api, ts, {"member_no": member_no})
    first = await api.ok("POST", url(ts), expect=201, json={"enrolment_id": person["id"]})
    second = await api.ok("POST", url(ts), expect=201, json={"member_no": member_no})

    async with app.state.runtime.db.sessions() as session:
        rows = (
            await session.execute(
                select(outbox.c.event_type, outbox.c.payload).order_by(outbox.c.position)
            )
        ).all()
    attended = [json.loads(p) for t, p in rows if t == "training.attendance.recorded"]
    assert [a["data"]["attendance_id"] for a in attended] == [first["id"], second["id"]]
    data = attended[0]["data"]
    assert data["session_id"] == ts["id"] and data["enrolment_id"] == person["id"]
    assert data["host_org_id"] == county["id"] and attended[0]["org_path"] == county["path"]
    assert data["course_category"] == "childcare_domestic" and data["method"] == "staff"
    assert data["worker_category"] == "rural_labour" and data["member_no"] is None
    assert data["person_key"] == person["person_key"]
    assert attended[1]["data"]["member_no"] == member_no
    assert attended[1]["data"]["worker_category"] == "new_employment"
    assert {t for t, _ in rows} >= {"training.enrolment.created", "training.attendance.recorded"}
    for _, payload in rows:
        for secret in (body["id_number"], body["id_number"][6:14], body["phone"]):
            assert secret not in payload
