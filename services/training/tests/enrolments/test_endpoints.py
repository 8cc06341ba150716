"""Enrolment over HTTP: members, non-members, validation, duplicates, waitlist, scope."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from gonghui_shared.contracts.membership import MemberApproved, MemberWithdrawn
from gonghui_shared.ids import new_id
from gonghui_shared.permissions import Role
from gonghui_shared.testing.feed import MembershipFeed
from training.base import outbox
from training.testing import Api, non_member, open_session


def enrolments_url(ts: dict[str, Any]) -> str:
    return f"/v1/sessions/{ts['id']}/enrolments"


async def error_of(api: Api, method: str, url: str, status: int, **kw: Any) -> dict[str, Any]:
    response = await api.client.request(method, url, **({"headers": api.platform} | kw))
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


async def outbox_events(app: FastAPI) -> list[tuple[str, dict[str, Any]]]:
    async with app.state.runtime.db.sessions() as session:
        rows = (
            await session.execute(
                select(outbox.c.event_type, outbox.c.payload).order_by(outbox.c.position)
            )
        ).all()
    return [(event_type, json.loads(payload)) for event_type, payload in rows]


async def test_enrol_a_member_and_a_non_member(api: Api, feed: MembershipFeed) -> None:
    county, township, village = await feed.tree()
    member_no = await feed.member(village, category="new_employment", subtype="rider", name="李明")
    ts = await open_session(api, county)

    member = await api.ok("POST", enrolments_url(ts), expect=201, json={"member_no": member_no})
    assert member["status"] == "enrolled" and member["member_no"] == member_no
    assert member["person_key"] == f"m:{member_no}" and member["name"] == "李明"
    assert member["worker_category"] == "new_employment"
    assert member["id_number"] is None and member["phone"] is None
    assert member["waitlisted_at"] is None

    body = non_member(name="杨春花", phone="139 0871 2345", invite_to_join=True)
    chair = api.headers(Role.org_chair, county)  # enrolments.write, no personal-data right
    person = await api.ok("POST", enrolments_url(ts), as_=chair, expect=201, json=body)
    assert person["status"] == "enrolled" and person["member_no"] is None
    assert person["worker_category"] == "rural_labour" and person["invite_to_join"] is True
    assert person["person_key"].startswith("p:") and body["id_number"] not in person["person_key"]
    assert person["personal_data"] == "masked"
    assert person["id_number"] == body["id_number"][:6] + "********" + body["id_number"][-4:]
    assert person["phone"] == "139****2345"

    admin = api.headers(Role.county_admin, county)  # may read personal data
    full = await api.ok("GET", f"/v1/enrolments/{person['id']}", as_=admin)
    assert full["personal_data"] == "full"
    assert (full["id_number"], full["phone"]) == (body["id_number"], "+8613908712345")

    listed = await api.ok("GET", enrolments_url(ts), as_=chair)
    assert [e["id"] for e in listed["items"]] == [member["id"], person["id"]]
    assert listed["items"][1]["id_number"] == person["id_number"]  # masked in lists too
    assert listed["next_cursor"] is None


async def test_invalid_identity_is_a_422_naming_the_field(api: Api, feed: MembershipFeed) -> None:
    county, _, _ = await feed.tree()
    ts = await open_session(api, county)
    url = enrolments_url(ts)
    body = non_member()
    wrong_check = body["id_number"][:17] + ("0" if body["id_number"][17] != "0" else "1")

    error = await error_of(api, "POST", url, 422, json=body | {"id_number": wrong_check})
    assert error["code"] == "invalid_id_number"
    assert error["details"] == {"field": "id_number", "reason": "checksum"}
    error = await error_of(api, "POST", url, 422, json=body | {"id_number": "53092119900101"})
    assert error["code"] == "invalid_id_number" and error["details"]["reason"] == "format"
    error = await error_of(api, "POST", url, 422, json=body | {"phone": "12345"})
    assert error["code"] == "invalid_phone" and error["details"] == {"field": "phone"}

    error = await error_of(api, "POST", url, 422, json={"name": "王五", "phone": "13800138000"})
    assert error["code"] == "invalid_enrollee" and error["details"]["missing"] == ["id_number"]
    error = await error_of(api, "POST", url, 422, json={})
    assert error["code"] == "invalid_enrollee" and error["details"]["field"] == "member_no"
    error = await error_of(
        api, "POST", url, 422, json={"member_no": "5309212026000001", "name": "王五"}
    )
    assert error["code"] == "invalid_enrollee"
    listed = await api.ok("GET", url)
    assert listed["items"] == []


async def test_unknown_or_former_member_cannot_enrol(api: Api, feed: MembershipFeed) -> None:
    county, _, village = await feed.tree()
    ts = await open_session(api, county)
    error = await error_of(
        api, "POST", enrolments_url(ts), 404, json={"member_no": "5309212026999999"}
    )
    assert error["code"] == "member_not_found"

    member_id, member_no = new_id(), "5309212026990011"
    await feed.publish(
        MemberApproved(
            member_id=member_id,
            member_no=member_no,
            application_id=new_id(),
            org_id=village["id"],
            name="赵六",
            category="migrant_worker",
            household_type="rural",
            gender="male",
            birth_year=1985,
            approval_doc_no="凤工复〔2026〕5号",
            approved_at=datetime.now(UTC),
        ),
        aggregate_id=member_id,
        org_path=village["path"],
    )
    await feed.publish(
        MemberWithdrawn(
            member_id=member_id,
            member_no=member_no,
            org_id=village["id"],
            category="migrant_worker",
            reason="退会",
        ),
        aggregate_id=member_id,
        org_path=village["path"],
    )
    await feed.synced()
    error = await error_of(api, "POST", enrolments_url(ts), 409, json={"member_no": member_no})
    assert error["code"] == "membership_not_active"


async def test_a_person_is_enrolled_once_per_session(api: Api, feed: MembershipFeed) -> None:
    county, _, village = await feed.tree()
    member_no = await feed.member(village)
    ts = await open_session(api, county)
    url = enrolments_url(ts)
    first = await api.ok("POST", url, expect=201, json={"member_no": member_no})
    error = await error_of(api, "POST", url, 409, json={"member_no": member_no})
    assert error["code"] == "already_enrolled"
    assert error["details"] == {"enrolment_id": first["id"], "status": "enrolled"}

    body = non_member()
    await api.ok("POST", url, expect=201, json=body)
    # The same ID number typed differently is the same person.
    spaced = " ".join([body["id_number"][:6], body["id_number"][6:14], body["id_number"][14:]])
    error = await error_of(api, "POST", url, 409, json=body | {"id_number": spaced, "name": "改名"})
    assert error["code"] == "already_enrolled"

    # Another session is another matter.
    other = await open_session(api, county)
    await api.ok("POST", enrolments_url(other), expect=201, json={"member_no": member_no})
    assert len((await api.ok("GET", url))["items"]) == 2


async def test_capacity_then_waitlist_then_promotion(api: Api, feed: MembershipFeed) -> None:
    county, _, village = await feed.tree()
    ts = await open_session(api, county, capacity=2)
    url = enrolments_url(ts)
    members = [await feed.member(village) for _ in range(4)]
    made = [await api.ok("POST", url, expect=201, json={"member_no": m}) for m in members]
    assert [e["status"] for e in made] == ["enrolled", "enrolled", "waitlisted", "waitlisted"]
    assert made[2]["waitlisted_at"] < made[3]["waitlisted_at"]

    waiting = await api.ok("GET", url, params={"status": "waitlisted"})
    assert [e["id"] for e in waiting["items"]] == [made[2]["id"], made[3]["id"]]

    # Cancelling a waitlisted enrolment frees no place: nobody is promoted.
    result = await api.ok("POST", f"/v1/enrolments/{made[3]['id']}/cancel")
    assert result["enrolment"]["status"] == "cancelled" and result["promoted"] is None
    assert result["enrolment"]["cancelled_at"] is not None

    # Cancelling an enrolled one promotes the earliest waitlisted at once.
    result = await api.ok("POST", f"/v1/enrolments/{made[0]['id']}/cancel")
    assert result["promoted"]["id"] == made[2]["id"]
    assert result["promoted"]["status"] == "enrolled"
    error = await error_of(api, "POST", f"/v1/enrolments/{made[0]['id']}/cancel", 409)
    assert error["code"] == "enrolment_not_active"

    # A cancelled person enrolling again gets their enrolment back: the session is full,
    # so at the back of the waitlist.
    again = await api.ok("POST", url, expect=201, json={"member_no": members[0]})
    assert again["id"] == made[0]["id"]
    assert again["status"] == "waitlisted" and again["cancelled_at"] is None
    statuses = {e["id"]: e["status"] for e in (await api.ok("GET", url))["items"]}
    assert statuses == {
        made[0]["id"]: "waitlisted",
        made[1]["id"]: "enrolled",
        made[2]["id"]: "enrolled",
        made[3]["id"]: "cancelled",
    }


async def test_enrolment_only_while_open_or_in_progress(api: Api, feed: MembershipFeed) -> None:
    county, _, village = await feed.tree()
    running = await open_session(api, county, start=True)
    late = await api.ok(
        "POST", enrolments_url(running), expect=201, json={"member_no": await feed.member(village)}
    )
    assert late["status"] == "enrolled"

    ts = await open_session(api, county)
    enrolment = await api.ok(
        "POST", enrolments_url(ts), expect=201, json={"member_no": await feed.member(village)}
    )
    await api.ok("POST", f"/v1/sessions/{ts['id']}/cancel", json={"reason": "暴雨预警，停课"})
    error = await error_of(api, "POST", enrolments_url(ts), 409, json=non_member())
    assert error["code"] == "enrolment_closed" and error["details"] == {"status": "cancelled"}
    error = await error_of(api, "POST", f"/v1/enrolments/{enrolment['id']}/cancel", 409)
    assert error["code"] == "enrolment_not_active"  # the cancellation cancelled it

    error = await error_of(api, "POST", "/v1/sessions/nope/enrolments", 404, json=non_member())
    assert error["code"] == "session_not_found"
    error = await error_of(api, "GET", "/v1/enrolments/nope", 404)
    assert error["code"] == "enrolment_not_found"


async def test_a_member_enrols_themself(api: Api, feed: MembershipFeed) -> None:
    county, township, village = await feed.tree()
    me = await feed.member(village)
    someone = await feed.member(village)
    ts = await open_session(api, township)
    as_me = api.headers(Role.member, village, member_no=me)

    mine = await api.ok("POST", enrolments_url(ts), as_=as_me, expect=201, json={})
    assert mine["member_no"] == me and mine["status"] == "enrolled"
    assert mine["enrolled_by"] == "test-user"
    assert (await api.ok("GET", f"/v1/enrolments/{mine['id']}", as_=as_me))["id"] == mine["id"]

    # Only themself: not another member, not a non-member.
    for body in ({"member_no": someone}, non_member()):
        error = await error_of(api, "POST", enrolments_url(ts), 403, json=body, headers=as_me)
        assert error["code"] == "forbidden"
    theirs = await api.ok("POST", enrolments_url(ts), expect=201, json={"member_no": someone})
    for method, url in (
        ("GET", f"/v1/enrolments/{theirs['id']}"),
        ("POST", f"/v1/enrolments/{theirs['id']}/cancel"),
        ("GET", enrolments_url(ts)),
    ):
        error = await error_of(api, method, url, 403, headers=as_me)
        assert error["code"] == "forbidden"

    # Their own cancellation.
    result = await api.ok("POST", f"/v1/enrolments/{mine['id']}/cancel", as_=as_me)
    assert result["enrolment"]["status"] == "cancelled"

    # A session hosted below the member's org, or in another county, is out of reach.
    other_county = await feed.org(None, "county_federation", "昌宁县总工会", "530524000000")
    await feed.synced()
    for host in (other_county,):
        elsewhere = await open_session(api, host)
        error = await error_of(api, "POST", enrolments_url(elsewhere), 403, json={}, headers=as_me)
        assert error["code"] == "out_of_scope"
    stranger = await feed.member(other_county)
    as_stranger = api.headers(Role.member, other_county, member_no=stranger)
    error = await error_of(api, "POST", enrolments_url(ts), 403, json={}, headers=as_stranger)
    assert error["code"] == "out_of_scope"


async def test_staff_enrol_only_within_their_scope(api: Api, feed: MembershipFeed) -> None:
    county, township, village = await feed.tree()
    neighbour = await feed.org(township, "village_union", "东城社区工会联合会", "530921101202")
    await feed.synced()
    ts = await open_session(api, village)
    body = {"member_no": await feed.member(village)}

    for headers, status, code in (
        (api.headers(Role.org_chair, neighbour), 403, "out_of_scope"),
        (api.headers(Role.station_operator, village), 403, "forbidden"),
        (api.headers(Role.gov_system, county), 403, "forbidden"),
    ):
        error = await error_of(api, "POST", enrolments_url(ts), status, json=body, headers=headers)
        assert error["code"] == code
    enrolment = await api.ok(
        "POST", enrolments_url(ts), as_=api.headers(Role.org_chair, township), expect=201, json=body
    )
    error = await error_of(
        api,
        "POST",
        f"/v1/enrolments/{enrolment['id']}/cancel",
        403,
        headers=api.headers(Role.org_chair, neighbour),
    )
    assert error["code"] == "out_of_scope"
    # Reading: staff with sessions.read in scope, including a gov system of the county.
    listed = await api.ok("GET", enrolments_url(ts), as_=api.headers(Role.gov_system, county))
    assert [e["id"] for e in listed["items"]] == [enrolment["id"]]
    assert listed["items"][0]["personal_data"] == "masked"


async def test_enrolments_are_published_without_id_numbers(
    api: Api, app: FastAPI, feed: MembershipFeed
) -> None:
    county, _, village = await feed.tree()
    ts = await open_session(api, county, capacity=1)
    member_no = await feed.member(village)
    body = non_member()
    enrolled = await api.ok("POST", enrolments_url(ts), expect=201, json={"member_no": member_no})
    waitlisted = await api.ok("POST", enrolments_url(ts), expect=201, json=body)
    await api.ok("POST", f"/v1/enrolments/{enrolled['id']}/cancel")

    events = await outbox_events(app)
    created = [p for t, p in events if t == "training.enrolment.created"]
    assert [(p["data"]["enrolment_id"], p["data"]["status"]) for p in created] == [
        (enrolled["id"], "enrolled"),
        (waitlisted["id"], "waitlisted"),
    ]
    assert created[0]["data"]["member_no"] == member_no
    assert created[1]["data"]["worker_category"] == "rural_labour"
    assert all(p["org_path"] == county["path"] for p in created)
    assert created[1]["data"]["host_org_id"] == county["id"]
    cancelled = [p for t, p in events if t == "training.enrolment.cancelled"]
    assert len(cancelled) == 1
    assert cancelled[0]["data"]["promoted_enrolment_id"] == waitlisted["id"]
    for _, payload in events:
        text = json.dumps(payload, ensure_ascii=False)
        for secret in (body["id_number"], body["id_number"][6:14], body["phone"], body["name"]):
            assert secret not in text
