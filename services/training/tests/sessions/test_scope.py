"""Who reads and changes which sessions: every role, inside and outside its scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gonghui_shared.permissions import Role
from gonghui_shared.testing.feed import MembershipFeed
from training.testing import Api


@dataclass
class World:
    """Two counties; 凤庆 has a township with two villages. One session at each org."""

    county: dict[str, Any]
    township: dict[str, Any]
    village: dict[str, Any]
    sibling: dict[str, Any]
    other: dict[str, Any]
    sessions: dict[str, str]  # where -> session id


async def world(api: Api, feed: MembershipFeed) -> World:
    county, township, village = await feed.tree()
    sibling = await feed.org(township, "village_union", "新村工会委员会", "530921101202")
    other = await feed.org(None, "county_federation", "云县总工会", "530922000000")
    await feed.synced()
    course = await api.course(county)
    yun_course = await api.course(other, title="云县电子商务", category="ecommerce")
    sessions = {}
    for name, org in [
        ("county", county),
        ("township", township),
        ("village", village),
        ("sibling", sibling),
    ]:
        sessions[name] = (await api.schedule(course, org))["id"]
    sessions["other"] = (await api.schedule(yun_course, other))["id"]
    return World(county, township, village, sibling, other, sessions)


async def listed(api: Api, w: World, as_: dict[str, str], query: str = "") -> set[str]:
    page = await api.ok("GET", f"/v1/sessions{query}", as_=as_)
    names = {v: k for k, v in w.sessions.items()}
    return {names[s["id"]] for s in page["items"]}


async def readable(api: Api, w: World, as_: dict[str, str]) -> dict[str, int | str]:
    """For each session: 200, or the error code of GET /v1/sessions/{id}."""
    out: dict[str, int | str] = {}
    for name, session_id in w.sessions.items():
        response = await api.client.get(f"/v1/sessions/{session_id}", headers=as_)
        out[name] = 200 if response.status_code == 200 else response.json()["error"]["code"]
    return out


async def test_org_chair_reads_its_subtree_only(api: Api, feed: MembershipFeed) -> None:
    w = await world(api, feed)
    township_chair = api.headers(Role.org_chair, w.township)
    assert await listed(api, w, township_chair) == {"township", "village", "sibling"}
    assert await readable(api, w, township_chair) == {
        "county": "out_of_scope",
        "township": 200,
        "village": 200,
        "sibling": 200,
        "other": "out_of_scope",
    }
    village_chair = api.headers(Role.org_chair, w.village)
    assert await listed(api, w, village_chair) == {"village"}
    outside = await api.client.get(f"/v1/sessions?org_id={w.county['id']}", headers=village_chair)
    assert outside.status_code == 403 and outside.json()["error"]["code"] == "out_of_scope"
    assert await listed(api, w, township_chair, f"?org_id={w.village['id']}") == {"village"}
    unknown = await api.client.get("/v1/sessions?org_id=nope", headers=township_chair)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "org_not_found"
    # Writing follows the same scope.
    above = await api.client.post(
        f"/v1/sessions/{w.sessions['township']}/open", headers=village_chair
    )
    assert above.status_code == 403 and above.json()["error"]["code"] == "out_of_scope"
    await api.ok("POST", f"/v1/sessions/{w.sessions['village']}/open", as_=village_chair)
    # 404 before 403: an unknown session is unknown to everyone.
    missing = await api.client.get("/v1/sessions/nope", headers=village_chair)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "session_not_found"


async def test_county_admin_and_platform(api: Api, feed: MembershipFeed) -> None:
    w = await world(api, feed)
    admin = api.headers(Role.county_admin, w.county)
    assert await listed(api, w, admin) == {"county", "township", "village", "sibling"}
    assert await listed(api, w, api.platform) == set(w.sessions)
    cancel = await api.client.post(
        f"/v1/sessions/{w.sessions['other']}/cancel", headers=admin, json={"reason": "越权"}
    )
    assert cancel.status_code == 403 and cancel.json()["error"]["code"] == "out_of_scope"


async def test_station_operator_reads_in_scope_and_changes_nothing(
    api: Api, feed: MembershipFeed
) -> None:
    w = await world(api, feed)
    operator = api.headers(Role.station_operator, w.township)
    assert await listed(api, w, operator) == {"township", "village", "sibling"}
    assert (await readable(api, w, operator))["village"] == 200
    assert (await readable(api, w, operator))["county"] == "out_of_scope"
    session_id = w.sessions["village"]
    for action, body in [("open", None), ("start", None), ("cancel", {"reason": "试一试"})]:
        response = await api.client.post(
            f"/v1/sessions/{session_id}/{action}", headers=operator, json=body
        )
        assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


async def test_member_sees_the_sessions_it_could_join(api: Api, feed: MembershipFeed) -> None:
    w = await world(api, feed)
    member_no = await feed.member(w.village)
    # The token's org does not widen what a member sees; its replica's org decides.
    member = api.headers(Role.member, w.county, member_no=member_no)
    assert await listed(api, w, member) == {"county", "township", "village"}
    assert await readable(api, w, member) == {
        "county": 200,
        "township": 200,
        "village": 200,
        "sibling": "out_of_scope",
        "other": "out_of_scope",
    }
    assert await listed(api, w, member, f"?org_id={w.township['id']}") == {"township"}
    assert await listed(api, w, member, "?status=open") == set()
    response = await api.client.post(f"/v1/sessions/{w.sessions['village']}/open", headers=member)
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    # A member training has not heard of yet sees nothing, and may open nothing.
    unknown = api.headers(Role.member, w.village, member_no="5309212026999999")
    assert await listed(api, w, unknown) == set()
    assert set((await readable(api, w, unknown)).values()) == {"out_of_scope"}


async def test_gov_system_reads_its_county(api: Api, feed: MembershipFeed) -> None:
    w = await world(api, feed)
    gov = api.headers(Role.gov_system, w.county)
    assert await listed(api, w, gov) == {"county", "township", "village", "sibling"}
    assert (await readable(api, w, gov))["other"] == "out_of_scope"
    response = await api.client.post(f"/v1/sessions/{w.sessions['county']}/start", headers=gov)
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    no_org = await api.client.get("/v1/sessions", headers=api.headers(Role.gov_system))
    assert no_org.status_code == 403 and no_org.json()["error"]["code"] == "out_of_scope"


async def test_no_token_no_sessions(api: Api, feed: MembershipFeed) -> None:
    response = await api.client.get("/v1/sessions")
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
