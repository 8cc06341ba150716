"""Cadres over HTTP: appointing members of an org's subtree, listing by subtree, ending."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from gonghui_shared.permissions import Role
from membership.audit.models import Transition
from membership.base import outbox
from membership.cadres import repository as cadres_repository
from membership.testing import Api

Admit = Callable[..., Awaitable[str]]


@pytest.fixture
def admit(api: Api) -> Admit:
    """Admit a member of `org` through the admission procedure; returns the member number."""

    async def admit(
        county: dict[str, Any], org: dict[str, Any], name: str = "杨定忠", withdrawn: bool = False
    ) -> str:
        member_no: str = (await api.member(county, org, name=name))["member"]["member_no"]
        if withdrawn:
            await api.ok(
                "POST",
                f"/v1/members/{member_no}/withdraw",
                as_=api.headers(Role.county_admin, county),
                json={"reason": "本人申请退会"},
            )
        return member_no

    return admit


async def appoint(
    api: Api,
    org: dict[str, Any],
    member_no: str,
    role: str = "chair",
    as_: dict[str, str] | None = None,
    appointed_on: str = "2026-03-01",
) -> Any:
    return await api.client.post(
        f"/v1/orgs/{org['id']}/cadres",
        headers=as_ or api.platform,
        json={"member_no": member_no, "role": role, "appointed_on": appointed_on},
    )


async def test_appoint_list_and_end(api: Api, admit: Admit, app: FastAPI) -> None:
    county, township, village = await api.tree()
    member_no = await admit(county, village, name="杨定忠")
    chair = api.headers(Role.org_chair, village)

    response = await appoint(api, village, member_no, as_=chair)
    assert response.status_code == 201, response.text
    cadre = response.json()
    assert cadre["member_no"] == member_no and cadre["member_name"] == "杨定忠"
    assert cadre["org_name"] == "京竹林村工会委员会" and cadre["org_id"] == village["id"]
    assert (cadre["role"], cadre["role_label_zh"]) == ("chair", "主席")
    assert cadre["appointed_on"] == "2026-03-01" and cadre["ended_on"] is None and cadre["active"]

    async with app.state.runtime.db.transaction() as session:
        events = (await session.execute(select(outbox.c.event_type, outbox.c.payload))).all()
        appointed = [payload for kind, payload in events if kind == "membership.cadre.appointed"]
        assert len(appointed) == 1 and cadre["id"] in appointed[0]
        states = (
            await session.scalars(
                select(Transition.to_state).where(Transition.entity_id == cadre["id"])
            )
        ).all()
        assert list(states) == ["active"]

    own = await api.ok("GET", "/v1/cadres", as_=chair)
    assert [c["id"] for c in own["items"]] == [cadre["id"]]
    county_admin = api.headers(Role.county_admin, county)
    subtree = await api.ok("GET", "/v1/cadres", as_=county_admin)
    assert [c["member_no"] for c in subtree["items"]] == [member_no]
    just_county = await api.ok(
        "GET", "/v1/cadres", as_=county_admin, params={"org_id": county["id"], "subtree": "false"}
    )
    assert just_county["items"] == []
    by_role = await api.ok("GET", "/v1/cadres", params={"role": "vice_chair"})
    assert by_role["items"] == []

    ended = await api.ok(
        "POST",
        f"/v1/cadres/{cadre['id']}/end",
        as_=chair,
        json={"ended_on": "2026-06-30", "reason": "换届选举"},
    )
    assert ended["ended_on"] == "2026-06-30" and not ended["active"]
    again = await api.client.post(
        f"/v1/cadres/{cadre['id']}/end",
        headers=chair,
        json={"ended_on": "2026-07-01", "reason": "重复"},
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "cadre_already_ended"
    assert (await api.ok("GET", "/v1/cadres", as_=chair))["items"] == []
    history = await api.ok("GET", "/v1/cadres", as_=chair, params={"active": "false"})
    assert [c["id"] for c in history["items"]] == [cadre["id"]]
    async with app.state.runtime.db.transaction() as session:
        ending = await session.scalar(
            select(Transition).where(
                Transition.entity_id == cadre["id"], Transition.to_state == "ended"
            )
        )
        assert ending is not None and ending.reason == "换届选举" and ending.from_state == "active"

    # Once ended, the same role can be held again.
    reappointed = await appoint(api, village, member_no, as_=chair, appointed_on="2026-07-01")
    assert reappointed.status_code == 201


async def test_member_rules(api: Api, admit: Admit) -> None:
    county, township, village = await api.tree()
    other_village = await api.child(township, "village_union", "大河村工会委员会", "530921101202")
    member_no = await admit(county, village)

    missing = await appoint(api, village, "5309212026999999")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "member_not_found"
    elsewhere = await appoint(api, other_village, member_no)
    assert elsewhere.status_code == 422
    assert elsewhere.json()["error"]["code"] == "member_not_in_org"
    assert elsewhere.json()["error"]["details"]["field"] == "member_no"

    # A member of a village may serve its township (the subtree counts).
    assert (await appoint(api, township, member_no, role="committee_member")).status_code == 201
    assert (await appoint(api, village, member_no)).status_code == 201
    twice = await appoint(api, village, member_no)
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "cadre_already_appointed"
    assert (await appoint(api, village, member_no, role="funds_auditor")).status_code == 201

    withdrawn = await admit(county, village, withdrawn=True)
    inactive = await appoint(api, village, withdrawn)
    assert inactive.status_code == 409 and inactive.json()["error"]["code"] == "member_not_active"

    other_member = await admit(county, other_village)
    await api.ok("PATCH", f"/v1/orgs/{other_village['id']}", json={"status": "dissolved"})
    dissolved = await appoint(api, other_village, other_member)
    assert dissolved.status_code == 409 and dissolved.json()["error"]["code"] == "org_not_active"

    listed = await api.ok("GET", "/v1/cadres", as_=api.headers(Role.county_admin, county))
    assert sorted(c["role_label_zh"] for c in listed["items"]) == ["主席", "委员", "经费审查委员"]


async def test_dates_and_bodies_are_validated(api: Api, admit: Admit) -> None:
    county, _, village = await api.tree()
    member_no = await admit(county, village)
    future = (date.today() + timedelta(days=3)).isoformat()
    ahead = await appoint(api, village, member_no, appointed_on=future)
    assert ahead.status_code == 422 and ahead.json()["error"]["code"] == "invalid_cadre_date"
    bad_role = await appoint(api, village, member_no, role="emperor")
    assert bad_role.status_code == 422 and bad_role.json()["error"]["details"][0]["field"] == "role"

    cadre = (await appoint(api, village, member_no)).json()
    before = await api.client.post(
        f"/v1/cadres/{cadre['id']}/end",
        headers=api.platform,
        json={"ended_on": "2026-02-01", "reason": "录入错误"},
    )
    assert before.status_code == 422 and before.json()["error"]["details"]["field"] == "ended_on"
    later = await api.client.post(
        f"/v1/cadres/{cadre['id']}/end",
        headers=api.platform,
        json={"ended_on": future, "reason": "调动"},
    )
    assert later.status_code == 422 and later.json()["error"]["code"] == "invalid_cadre_date"
    no_reason = await api.client.post(
        f"/v1/cadres/{cadre['id']}/end", headers=api.platform, json={"ended_on": "2026-06-30"}
    )
    assert (
        no_reason.status_code == 422
        and no_reason.json()["error"]["details"][0]["field"] == "reason"
    )
    unknown = await api.client.post(
        "/v1/cadres/nope/end",
        headers=api.platform,
        json={"ended_on": "2026-06-30", "reason": "调动"},
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "cadre_not_found"
    no_org = await api.client.post(
        "/v1/orgs/nope/cadres",
        headers=api.platform,
        json={"member_no": member_no, "role": "chair", "appointed_on": "2026-03-01"},
    )
    assert no_org.status_code == 404 and no_org.json()["error"]["code"] == "org_not_found"


async def test_scope(api: Api, admit: Admit) -> None:
    county, township, village = await api.tree()
    member_no = await admit(county, village)
    township_cadre = (await appoint(api, township, member_no, role="vice_chair")).json()
    chair = api.headers(Role.org_chair, village)

    outside = await appoint(api, township, member_no, role="committee_member", as_=chair)
    assert outside.status_code == 403 and outside.json()["error"]["code"] == "out_of_scope"
    listing = await api.client.get("/v1/cadres", headers=chair, params={"org_id": township["id"]})
    assert listing.status_code == 403 and listing.json()["error"]["code"] == "out_of_scope"
    ending = await api.client.post(
        f"/v1/cadres/{township_cadre['id']}/end",
        headers=chair,
        json={"ended_on": "2026-06-30", "reason": "调动"},
    )
    assert ending.status_code == 403 and ending.json()["error"]["code"] == "out_of_scope"
    # The village chair's own listing does not show the township's cadres.
    assert (await api.ok("GET", "/v1/cadres", as_=chair))["items"] == []

    as_member = api.headers(Role.member, village, member_no=member_no)
    denied = await appoint(api, village, member_no, as_=as_member)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
    station = await api.client.get(
        "/v1/cadres", headers=api.headers(Role.station_operator, village)
    )
    assert station.status_code == 403 and station.json()["error"]["code"] == "forbidden"
    gov = await api.ok("GET", "/v1/cadres", as_=api.headers(Role.gov_system, county))
    assert [c["id"] for c in gov["items"]] == [township_cadre["id"]]


async def test_listing_pages(api: Api, admit: Admit) -> None:
    county, _, village = await api.tree()
    roles = ["chair", "vice_chair", "committee_member", "funds_auditor", "women_worker_director"]
    ids = []
    for role in roles:
        member_no = await admit(county, village)
        ids.append((await appoint(api, village, member_no, role=role)).json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"org_id": county["id"], "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await api.ok("GET", "/v1/cadres", params=params)
        seen += [c["id"] for c in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == ids


async def test_simultaneous_appointments_meet_the_unique_index(
    api: Api, admit: Admit, monkeypatch: pytest.MonkeyPatch
) -> None:
    county, _, village = await api.tree()
    member_no = await admit(county, village)
    assert (await appoint(api, village, member_no)).status_code == 201

    async def not_yet(*_: Any) -> bool:
        return False  # as if the other request had not committed when this one checked

    monkeypatch.setattr(cadres_repository, "holds_role", not_yet)
    raced = await appoint(api, village, member_no)
    assert raced.status_code == 409 and raced.json()["error"]["code"] == "cadre_already_appointed"
    listed = await api.ok("GET", "/v1/cadres", params={"org_id": village["id"]})
    assert len(listed["items"]) == 1
