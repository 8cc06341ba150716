"""`GET /v1/enrolments`: enrolments across sessions, a member's own or staff's in scope."""

from __future__ import annotations

from typing import Any

from gonghui_shared.permissions import Role
from gonghui_shared.testing.feed import MembershipFeed
from training.testing import Api, non_member, open_session


async def _enrol(api: Api, ts: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    enrolment: dict[str, Any] = await api.ok(
        "POST", f"/v1/sessions/{ts['id']}/enrolments", expect=201, json=body
    )
    return enrolment


async def _error(api: Api, url: str, headers: dict[str, str], status: int) -> str:
    response = await api.client.get(url, headers=headers)
    assert response.status_code == status, response.text
    code: str = response.json()["error"]["code"]
    return code


async def test_a_member_lists_their_own_enrolments_in_every_session(
    api: Api, feed: MembershipFeed
) -> None:
    county, township, village = await feed.tree()
    me, someone = await feed.member(village), await feed.member(village)
    at_county, at_village = await open_session(api, county), await open_session(api, village)
    first = await _enrol(api, at_county, {"member_no": me})
    second = await _enrol(api, at_village, {"member_no": me})
    await _enrol(api, at_village, {"member_no": someone})
    await _enrol(api, at_village, non_member())
    as_me = api.headers(Role.member, village, member_no=me)

    mine = await api.ok("GET", "/v1/enrolments", as_=as_me)
    assert [e["id"] for e in mine["items"]] == [first["id"], second["id"]]
    assert {e["member_no"] for e in mine["items"]} == {me}
    assert mine["next_cursor"] is None
    session = mine["items"][0]["session"]
    assert session["id"] == at_county["id"] and session["host_org_id"] == county["id"]
    assert session["course_title"] == "电焊工职业技能培训" and session["status"] == "open"
    assert session["starts_at"] and session["ends_at"] and session["place"]
    # Naming themself is the same list; the org filter narrows it to a subtree.
    named = await api.ok("GET", f"/v1/enrolments?member_no={me}", as_=as_me)
    assert [e["id"] for e in named["items"]] == [first["id"], second["id"]]
    below = await api.ok("GET", f"/v1/enrolments?org_id={village['id']}", as_=as_me)
    assert [e["id"] for e in below["items"]] == [second["id"]]
    # Status filter and pages.
    await api.ok("POST", f"/v1/enrolments/{first['id']}/cancel", as_=as_me)
    active = await api.ok("GET", "/v1/enrolments?status=enrolled", as_=as_me)
    assert [e["id"] for e in active["items"]] == [second["id"]]
    page = await api.ok("GET", "/v1/enrolments?limit=1", as_=as_me)
    assert [e["id"] for e in page["items"]] == [first["id"]] and page["next_cursor"]
    rest = await api.ok("GET", f"/v1/enrolments?limit=1&cursor={page['next_cursor']}", as_=as_me)
    assert [e["id"] for e in rest["items"]] == [second["id"]] and rest["next_cursor"] is None

    # Never another member's, and not without a member number.
    code = await _error(api, f"/v1/enrolments?member_no={someone}", as_me, 403)
    assert code == "forbidden"
    applicant = api.headers(Role.member, subject="phone-login")
    assert await _error(api, "/v1/enrolments", applicant, 403) == "forbidden"
    assert await _error(api, "/v1/enrolments?org_id=nope", as_me, 404) == "org_not_found"


async def test_staff_list_enrolments_only_within_their_scope(
    api: Api, feed: MembershipFeed
) -> None:
    county, township, village = await feed.tree()
    neighbour = await feed.org(township, "village_union", "东城社区工会联合会", "530921101202")
    other_county = await feed.org(None, "county_federation", "昌宁县总工会", "530524000000")
    await feed.synced()
    member = await feed.member(village)
    here = await _enrol(api, await open_session(api, village), {"member_no": member})
    there = await _enrol(api, await open_session(api, neighbour), {"member_no": member})
    far = await _enrol(api, await open_session(api, other_county), {"member_no": member})
    outsider = await _enrol(api, await open_session(api, village), non_member())

    def ids(page: dict[str, Any]) -> list[str]:
        return [e["id"] for e in page["items"]]

    everything = await api.ok("GET", "/v1/enrolments")  # the platform admin
    assert ids(everything) == [here["id"], there["id"], far["id"], outsider["id"]]
    chair = api.headers(Role.org_chair, village)
    assert ids(await api.ok("GET", "/v1/enrolments", as_=chair)) == [here["id"], outsider["id"]]
    by_member = await api.ok("GET", f"/v1/enrolments?member_no={member}", as_=chair)
    assert ids(by_member) == [here["id"]]
    township_admin = api.headers(Role.county_admin, township)
    by_member = await api.ok("GET", f"/v1/enrolments?member_no={member}", as_=township_admin)
    assert ids(by_member) == [here["id"], there["id"]]
    gov = api.headers(Role.gov_system, county)
    narrowed = await api.ok("GET", f"/v1/enrolments?org_id={neighbour['id']}", as_=gov)
    assert ids(narrowed) == [there["id"]]
    assert narrowed["items"][0]["personal_data"] == "masked"
    # A non-member's identity stays masked for a chair, in full for a county admin.
    listed = (await api.ok("GET", "/v1/enrolments", as_=chair))["items"]
    assert listed[1]["personal_data"] == "masked" and "*" in listed[1]["id_number"]
    full = await api.ok("GET", "/v1/enrolments", as_=api.headers(Role.county_admin, county))
    assert full["items"][-1]["personal_data"] == "full"

    code = await _error(api, f"/v1/enrolments?org_id={other_county['id']}", chair, 403)
    assert code == "out_of_scope"
    unscoped = api.headers(Role.org_chair)  # no org in the token
    assert await _error(api, "/v1/enrolments", unscoped, 403) == "out_of_scope"
    assert await _error(api, "/v1/enrolments?status=lost", chair, 422) == "validation_error"
