"""`POST /v1/applications/self`: a person not yet a member applies for themself (mobile app)."""

from __future__ import annotations

from typing import Any

from gonghui_shared.permissions import Role
from membership.testing import Api, applicant, valid_id_number


def own_form(org: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A self-application body: an applicant without the paper form's reference."""
    body = applicant(**overrides) | {"org_id": org["id"]}
    del body["form_ref"]
    return body


async def _error(api: Api, headers: dict[str, str], body: Any, status: int) -> dict[str, Any]:
    response = await api.client.post("/v1/applications/self", headers=headers, json=body)
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


async def test_an_applicant_applies_and_is_admitted_through_the_usual_procedure(api: Api) -> None:
    county, _, village = await api.tree()
    me = api.headers(Role.member, subject="phone:+8613800138000")
    body = own_form(village, name="李春华", category="农民工")

    mine = await api.ok("POST", "/v1/applications/self", as_=me, expect=201, json=body)
    assert mine["status"] == "submitted" and mine["org_id"] == village["id"]
    assert mine["roster_id"] is None and mine["name"] == "李春华"
    assert mine["category"] == "migrant_worker"
    assert mine["submitted_by"] == "phone:+8613800138000"
    assert mine["form_ref"] == f"online:{mine['id']}"
    # Masked: a member role never reads personal data in full, not even its own.
    assert mine["id_number"] == body["id_number"][:6] + "********" + body["id_number"][-4:]
    assert mine["phone"] == "138****" + body["phone"][-4:] and mine["birth_date"] is None

    # The village union sees it, puts it on a roster, and the county approves it.
    chair = api.headers(Role.org_chair, village)
    listed = await api.ok("GET", f"/v1/applications?org_id={village['id']}", as_=chair)
    assert [a["id"] for a in listed["items"]] == [mine["id"]]
    assert listed["items"][0]["id_number"] == mine["id_number"]
    roster = await api.roster(village)
    await api.ok(
        "POST",
        f"/v1/rosters/{roster['id']}/applications",
        as_=chair,
        json={"application_ids": [mine["id"]]},
    )
    admitted = await api.approve(county, mine)
    assert admitted["member"]["name"] == "李春华" and admitted["member"]["status"] == "active"
    detail = await api.ok("GET", f"/v1/applications/{mine['id']}", as_=chair)
    assert [(s["to"], s["actor"]) for s in detail["history"]][0] == (
        "submitted",
        "phone:+8613800138000",
    )

    # Once decided, the same person's next login carries the member number: no second try.
    as_member = api.headers(Role.member, village, member_no=admitted["member"]["member_no"])
    error = await _error(api, as_member, own_form(village), 409)
    assert error["code"] == "already_member"


async def test_one_pending_application_per_applicant_and_per_person(api: Api) -> None:
    _, _, village = await api.tree()
    me = api.headers(Role.member, subject="phone:+8613800138001")
    first = own_form(village)
    await api.ok("POST", "/v1/applications/self", as_=me, expect=201, json=first)

    error = await _error(api, me, own_form(village), 409)
    assert error["code"] == "own_application_pending" and error["message_zh"]
    someone_else = api.headers(Role.member, subject="phone:+8613800138002")
    error = await _error(api, someone_else, own_form(village, id_number=first["id_number"]), 409)
    assert error["code"] == "duplicate_application"
    # A rejection decides it: the applicant may then apply again.
    pending = (await api.ok("GET", f"/v1/applications?org_id={village['id']}"))["items"]
    await api.ok("POST", f"/v1/applications/{pending[0]['id']}/reject", json={"reason": "材料不全"})
    await api.ok("POST", "/v1/applications/self", as_=me, expect=201, json=own_form(village))


async def test_who_may_apply_for_themself_and_what_is_checked(api: Api) -> None:
    county, _, village = await api.tree()
    body = own_form(village)
    for role, org in (
        (Role.org_chair, village),
        (Role.county_admin, county),
        (Role.platform_admin, None),
        (Role.gov_system, county),
        (Role.station_operator, village),
    ):
        error = await _error(api, api.headers(role, org), body, 403)
        assert error["code"] == "forbidden", role
    response = await api.client.post("/v1/applications/self", json=body)
    assert response.status_code == 401

    me = api.headers(Role.member, subject="phone:+8613800138003")
    error = await _error(api, me, own_form(village) | {"org_id": "nope"}, 404)
    assert error["code"] == "org_not_found" and error["details"] == {"field": "org_id"}
    good = valid_id_number()
    bad_id = own_form(village, id_number=good[:17] + ("0" if good[17] != "0" else "1"))
    for bad, code in (
        (bad_id, "invalid_id_number"),
        (own_form(village, phone="12345"), "invalid_phone"),
        (own_form(village, category="new_employment"), "invalid_subtype"),
    ):
        assert (await _error(api, me, bad, 422))["code"] == code
    # A paper form reference or a roster is not the applicant's to give.
    extra = own_form(village) | {"roster_id": "x", "form_ref": "RH-1"}
    created = await api.ok("POST", "/v1/applications/self", as_=me, expect=201, json=extra)
    assert created["roster_id"] is None and created["form_ref"] == f"online:{created['id']}"
