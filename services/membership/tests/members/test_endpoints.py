"""Members after admission: reading in scope, transfers, and the end of membership."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from gonghui_shared.permissions import Role
from gonghui_shared.testing import count_dependency_solving
from membership.base import outbox
from membership.members.schemas import MemberRead
from membership.testing import Api, valid_id_number


async def two_villages(api: Api) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    county, township, village = await api.tree()
    other = await api.child(township, "village_union", "东城社区工会联合会", "530921101202")
    return county, village, other


async def outbox_count(api: Api, event_type: str) -> int:
    async with api.client._transport.app.state.runtime.db.sessions() as session:  # type: ignore[attr-defined]
        return int(
            await session.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.event_type == event_type)
            )
            or 0
        )


async def test_members_are_listed_within_scope_with_filters_and_pages(api: Api) -> None:
    county, village, other = await two_villages(api)
    for _ in range(3):
        await api.member(county, village)
    await api.member(county, other, category="new_employment", subtype="rider")

    admin = api.headers(Role.county_admin, county)
    everyone = await api.ok("GET", "/v1/members", as_=admin)
    assert len(everyone["items"]) == 4 and everyone["next_cursor"] is None
    mine = await api.ok("GET", "/v1/members", as_=api.headers(Role.org_chair, village))
    assert {m["org_id"] for m in mine["items"]} == {village["id"]} and len(mine["items"]) == 3
    riders = await api.ok("GET", "/v1/members", as_=admin, params={"category": "新就业形态劳动者"})
    assert [m["subtype"] for m in riders["items"]] == ["rider"]

    first = await api.ok("GET", "/v1/members", as_=admin, params={"limit": 3})
    second = await api.ok(
        "GET", "/v1/members", as_=admin, params={"limit": 3, "cursor": first["next_cursor"]}
    )
    seen = [m["member_no"] for m in first["items"] + second["items"]]
    assert len(seen) == len(set(seen)) == 4 and second["next_cursor"] is None

    outside = await api.client.get(
        "/v1/members", headers=api.headers(Role.org_chair, village), params={"org_id": other["id"]}
    )
    assert outside.status_code == 403 and outside.json()["error"]["code"] == "out_of_scope"
    bad = await api.client.get("/v1/members", headers=admin, params={"cursor": "%%%"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"


async def test_a_token_without_an_org_scope_lists_nothing(api: Api) -> None:
    county, village, _ = await two_villages(api)
    await api.member(county, village)
    unscoped = api.headers(Role.county_admin)  # a county admin's role, but no org
    members = await api.ok("GET", "/v1/members", as_=unscoped)
    assert members["items"] == []
    transfers = await api.ok("GET", "/v1/transfers", as_=unscoped)
    assert transfers["items"] == []
    everyone = await api.ok("GET", "/v1/members", as_=api.platform)
    assert len(everyone["items"]) == 1


async def test_personal_data_is_masked_unless_the_role_may_see_it(api: Api) -> None:
    county, village, _ = await two_villages(api)
    id_number = valid_id_number(7, birth="19850202")
    approved = await api.member(county, village, id_number=id_number, phone="13900139000")
    member_no = approved["member"]["member_no"]
    chair_view = await api.ok(
        "GET", f"/v1/members/{member_no}", as_=api.headers(Role.org_chair, village)
    )
    assert chair_view["id_number"] == f"530921********{id_number[-4:]}"
    assert chair_view["phone"] == "139****9000"
    assert chair_view["personal_data"] == "masked"
    assert chair_view["birth_date"] is None and chair_view["birth_year"] == 1985
    admin_view = await api.ok(
        "GET", f"/v1/members/{member_no}", as_=api.headers(Role.county_admin, county)
    )
    assert admin_view["id_number"] == id_number and admin_view["phone"] == "+8613900139000"
    assert admin_view["gender"] == "male" and admin_view["birth_date"] == "1985-02-02"


async def test_the_lookup_shows_a_member_as_the_list_does(api: Api) -> None:
    """The lookup reads plain columns (through the read pool on PostgreSQL), the list ORM
    members: every field agrees, masked and in full, and the answer is a `MemberRead`."""
    county, village, _ = await two_villages(api)
    approved = await api.member(county, village, phone="13900139001")
    member_no = approved["member"]["member_no"]
    for role, org in ((Role.org_chair, village), (Role.county_admin, county)):
        headers = api.headers(role, org)
        one = await api.ok("GET", f"/v1/members/{member_no}", as_=headers)
        listed = await api.ok("GET", "/v1/members", as_=headers, params={"q": member_no})
        assert [one] == listed["items"]
        assert MemberRead.model_validate(one).model_dump(mode="json") == one
        assert one["org_name"] and one["personal_data"] in ("masked", "full")


async def test_the_lookup_is_served_without_fastapi_s_dependency_solving_yet_as_documented(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`MemberLookupRoute` skips FastAPI's dependency solving; the caller is still resolved
    and checked as `PrincipalDep` does it, errors keep the house shape, and the document
    still shows the parameter, the security scheme and `MemberRead`."""
    county, village, other = await two_villages(api)
    member_no = (await api.member(county, village))["member"]["member_no"]
    solved = count_dependency_solving(monkeypatch)
    path = f"/v1/members/{member_no}"
    found = await api.ok("GET", path, as_=api.headers(Role.county_admin, county))
    assert found["member_no"] == member_no
    await api.ok("GET", f"{path}/history", as_=api.headers(Role.county_admin, county))
    assert solved == [f"{path}/history"]  # the lookup solved nothing; its neighbour did

    for headers, status, code in (
        ({}, 401, "unauthorized"),
        ({"Authorization": "Bearer not-a-token"}, 401, "unauthorized"),
        (api.headers(Role.org_chair, other), 403, "out_of_scope"),
    ):
        refused = await api.client.get(path, headers=headers)
        assert refused.status_code == status, refused.text
        assert refused.json()["error"]["code"] == code and refused.json()["error"]["request_id"]

    document = (await api.client.get("/openapi.json")).json()
    operation = document["paths"]["/v1/members/{member_no}"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["member_no"]
    assert operation["security"] == [{"HTTPBearer": []}]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/MemberRead"}


async def test_a_member_sees_only_their_own_membership(api: Api) -> None:
    county, village, _ = await two_villages(api)
    mine = (await api.member(county, village))["member"]["member_no"]
    theirs = (await api.member(county, village))["member"]["member_no"]
    me = api.headers(Role.member, member_no=mine)
    assert (await api.ok("GET", f"/v1/members/{mine}", as_=me))["member_no"] == mine
    denied = await api.client.get(f"/v1/members/{theirs}", headers=me)
    assert denied.status_code == 403
    assert (await api.client.get("/v1/members", headers=me)).status_code == 403
    missing = await api.client.get(
        "/v1/members/5309212026999999", headers=api.headers(Role.county_admin, county)
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "member_not_found"


async def test_history_records_every_step_with_who_and_why(api: Api) -> None:
    county, village, _ = await two_villages(api)
    member_no = (await api.member(county, village))["member"]["member_no"]
    steps = await api.ok(
        "GET", f"/v1/members/{member_no}/history", as_=api.headers(Role.county_admin, county)
    )
    states = [(s["entity"], s["to_state"]) for s in steps]
    assert states[0] in {("application", "on_roster"), ("application", "submitted")}
    assert ("application", "approved") in states and states[-1] == ("member", "active")
    assert steps[0]["from_state"] is None
    assert {s["actor_role"] for s in steps} >= {"org_chair", "county_admin"}


async def test_transfer_requested_by_sending_union_and_accepted_by_receiving(api: Api) -> None:
    county, village, other = await two_villages(api)
    approved = await api.member(county, village)
    member_no = approved["member"]["member_no"]
    sending, receiving = api.headers(Role.org_chair, village), api.headers(Role.org_chair, other)

    transfer = await api.ok(
        "POST",
        f"/v1/members/{member_no}/transfer",
        as_=sending,
        expect=201,
        json={"to_org_id": other["id"], "reason": "搬到社区居住"},
    )
    assert transfer["status"] == "requested"
    again = await api.client.post(
        f"/v1/members/{member_no}/transfer", headers=sending, json={"to_org_id": other["id"]}
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "transfer_pending"
    # The sending union cannot accept on the receiving union's behalf.
    refused = await api.client.post(f"/v1/transfers/{transfer['id']}/accept", headers=sending)
    assert refused.status_code == 403

    incoming = await api.ok("GET", "/v1/transfers", as_=receiving)
    assert [t["id"] for t in incoming["items"]] == [transfer["id"]]
    accepted = await api.ok("POST", f"/v1/transfers/{transfer['id']}/accept", as_=receiving)
    assert accepted["status"] == "accepted" and accepted["decided_by"] == "test-user"

    moved = await api.ok("GET", f"/v1/members/{member_no}", as_=receiving)
    assert moved["org_id"] == other["id"] and moved["joined_on"] == approved["member"]["joined_on"]
    gone = await api.client.get(f"/v1/members/{member_no}", headers=sending)
    assert gone.status_code == 403
    assert await outbox_count(api, "membership.member.transferred") == 1
    history = await api.ok(
        "GET", f"/v1/members/{member_no}/history", as_=api.headers(Role.county_admin, county)
    )
    assert history[-1]["details"]["to_org_id"] == other["id"]
    twice = await api.client.post(f"/v1/transfers/{transfer['id']}/accept", headers=receiving)
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "transfer_already_decided"


async def test_member_asks_to_move_to_another_county_and_is_declined(api: Api) -> None:
    county, village, _ = await two_villages(api)
    member_no = (await api.member(county, village))["member"]["member_no"]
    other_county = await api.county("530922000000", "云县总工会")
    me = api.headers(Role.member, member_no=member_no)
    transfer = await api.ok(
        "POST",
        f"/v1/members/{member_no}/transfer",
        as_=me,
        expect=201,
        json={"to_org_id": other_county["id"], "reason": "到云县务工"},
    )
    declined = await api.ok(
        "POST",
        f"/v1/transfers/{transfer['id']}/decline",
        as_=api.headers(Role.county_admin, other_county),
        json={"reason": "请先联系接收单位"},
    )
    assert declined["status"] == "declined" and declined["decline_reason"] == "请先联系接收单位"
    stayed = await api.ok("GET", f"/v1/members/{member_no}", as_=me)
    assert stayed["org_id"] == village["id"]
    bad = await api.client.post(
        f"/v1/members/{member_no}/transfer", headers=me, json={"to_org_id": village["id"]}
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_transfer_target"


async def test_withdrawal_ends_membership_and_cadre_posts(api: Api) -> None:
    county, village, _ = await two_villages(api)
    member_no = (await api.member(county, village))["member"]["member_no"]
    admin = api.headers(Role.county_admin, county)
    await api.ok(
        "POST",
        f"/v1/orgs/{village['id']}/cadres",
        as_=admin,
        expect=201,
        json={"member_no": member_no, "role": "chair", "appointed_on": "2026-01-01"},
    )

    ended = await api.ok(
        "POST",
        f"/v1/members/{member_no}/withdraw",
        as_=admin,
        json={"reason": "本人申请退会", "ended_on": "2026-06-30"},
    )
    assert ended["status"] == "withdrawn" and ended["ended_on"] == "2026-06-30"
    assert ended["end_reason"] == "本人申请退会"
    cadres = await api.ok(
        "GET", "/v1/cadres", as_=admin, params={"org_id": village["id"], "active": "true"}
    )
    assert cadres["items"] == []
    again = await api.client.post(
        f"/v1/members/{member_no}/expel", headers=admin, json={"reason": "x"}
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "membership_not_active"
    assert await outbox_count(api, "membership.member.withdrawn") == 1
    no_reason = await api.client.post(f"/v1/members/{member_no}/lapse", headers=admin, json={})
    assert no_reason.status_code == 422
    member_role = await api.client.post(
        f"/v1/members/{member_no}/withdraw",
        headers=api.headers(Role.member, member_no=member_no),
        json={"reason": "x"},
    )
    assert member_role.status_code == 403
