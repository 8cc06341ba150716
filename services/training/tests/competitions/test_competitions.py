"""Skill competitions over HTTP: entries, scores, ranking with ties, awards, the published event."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from gonghui_shared.permissions import Role
from gonghui_shared.testing.feed import MembershipFeed
from training.base import outbox
from training.competitions.models import CompetitionEntry
from training.testing import Api, non_member, valid_id_number

COMPETITION = {
    "title": "2026年凤庆县职工职业技能大赛",
    "starts_on": "2026-10-16",
    "ends_on": "2026-10-18",
}


async def published_events(app: FastAPI) -> list[dict[str, Any]]:
    async with app.state.runtime.db.sessions() as session:
        rows = await session.execute(
            select(outbox.c.payload)
            .where(outbox.c.event_type == "training.competition.result_published")
            .order_by(outbox.c.position)
        )
        return [json.loads(payload) for (payload,) in rows]


async def competition(api: Api, host: dict[str, Any]) -> dict[str, Any]:
    body = COMPETITION | {"host_org_id": host["id"]}
    created: dict[str, Any] = await api.ok("POST", "/v1/competitions", expect=201, json=body)
    return created


async def event(api: Api, competition_id: str, trade: str = "电焊工") -> dict[str, Any]:
    created: dict[str, Any] = await api.ok(
        "POST", f"/v1/competitions/{competition_id}/events", expect=201, json={"trade": trade}
    )
    return created


async def enter(api: Api, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = await api.ok(
        "POST", f"/v1/competition-events/{event_id}/entries", expect=201, json=body
    )
    return entry


async def score(api: Api, entry_id: str, value: Any) -> dict[str, Any]:
    entry: dict[str, Any] = await api.ok(
        "PUT", f"/v1/competition-entries/{entry_id}/score", json={"score": value}
    )
    return entry


async def test_ranking_with_ties_and_awards(app: FastAPI, api: Api, feed: MembershipFeed) -> None:
    county, township, village = await feed.tree()
    contest = await competition(api, county)
    assert contest["status"] == "planned" and contest["host_org_path"] == county["path"]
    welding = await event(api, contest["id"])
    scores = ["95.5", 90, "90.00", 85.25, "80", "80.0", "70.75"]
    entries = []
    for n, value in enumerate(scores):
        if n < 5:
            body = {
                "member_no": await feed.member(village, name=f"选手{n}"),
                "employer": "滇红茶厂",
            }
        else:
            body = non_member(name=f"选手{n}")
        entry = await enter(api, welding["id"], body)
        entries.append(await score(api, entry["id"], value))
    assert entries[0]["score"] == "95.50" and entries[3]["score"] == "85.25"
    assert entries[5]["worker_category"] == "rural_labour" and entries[5]["member_no"] is None
    # In full only for those who may read personal data (the platform admin here).
    assert len(entries[5]["id_number"]) == 18 and "*" not in entries[5]["id_number"]
    masked = await api.ok(
        "GET",
        f"/v1/competition-events/{welding['id']}/entries",
        as_=api.headers(Role.org_chair, county),
    )
    outsiders = [e for e in masked if e["member_no"] is None]
    assert len(outsiders) == 2
    assert all(e["id_number"].count("*") == 8 and "****" in e["phone"] for e in outsiders)

    before = await api.ok("GET", f"/v1/competitions/{contest['id']}")
    assert before["status"] == "running"
    assert before["events"] == [
        {
            "id": welding["id"],
            "competition_id": contest["id"],
            "trade": "电焊工",
            "entries": 7,
            "results_published": False,
            "results": None,
        }
    ]

    result = await api.ok(
        "POST",
        f"/v1/competition-events/{welding['id']}/publish",
        json={"gold": 1, "silver": 2, "bronze": 3, "excellence": 1},
    )
    assert result["participants"] == 7
    # Ranks 1, 2, 2, 4, 5, 5, 7: gold rank 1, silver ranks 2-3, bronze 4-6, excellence 7.
    assert result["awards"] == {"gold": 1, "silver": 2, "bronze": 3, "excellence": 1}
    ranking = [(r["rank"], r["name"], r["score"], r["award"]) for r in result["event"]["results"]]
    assert [(rank, award) for rank, _, _, award in ranking] == [
        (1, "gold"),
        (2, "silver"),
        (2, "silver"),
        (4, "bronze"),
        (5, "bronze"),
        (5, "bronze"),
        (7, "excellence"),
    ]
    assert ranking[0][1:3] == ("选手0", "95.50")
    assert {ranking[1][1], ranking[2][1]} == {"选手1", "选手2"}

    after = await api.ok("GET", f"/v1/competitions/{contest['id']}")
    assert after["status"] == "finished"
    [shown] = after["events"]
    assert shown["results_published"] and shown["results"] == result["event"]["results"]
    first = shown["results"][0]
    assert set(first) == {"rank", "name", "member_no", "employer", "score", "award"}
    assert first["employer"] == "滇红茶厂" and first["member_no"]

    [published] = await published_events(app)
    assert published["aggregate_id"] == welding["id"] and published["org_path"] == county["path"]
    assert published["data"] == {
        "competition_id": contest["id"],
        "competition_event_id": welding["id"],
        "host_org_id": county["id"],
        "trade": "电焊工",
        "participants": 7,
        "awards": {"gold": 1, "silver": 2, "bronze": 3, "excellence": 1},
    }
    async with app.state.runtime.db.sessions() as session:
        keys = (await session.scalars(select(CompetitionEntry.person_key))).all()
    assert len(set(keys)) == 7 and sum(k.startswith("p:") for k in keys) == 2


async def test_a_tie_at_the_top_shares_the_award(api: Api, feed: MembershipFeed) -> None:
    county, _, village = await feed.tree()
    contest = await competition(api, county)
    tea = await event(api, contest["id"], "茶艺师")
    for value in (88, 88, 75):
        entry = await enter(api, tea["id"], {"member_no": await feed.member(village)})
        await score(api, entry["id"], value)
    result = await api.ok(
        "POST", f"/v1/competition-events/{tea['id']}/publish", json={"gold": 1, "silver": 1}
    )
    assert [(r["rank"], r["award"]) for r in result["event"]["results"]] == [
        (1, "gold"),
        (1, "gold"),
        (3, "none"),
    ]
    assert result["awards"] == {"gold": 2, "silver": 0, "bronze": 0, "excellence": 0}


async def test_entries_scores_and_publication_rules(
    app: FastAPI, api: Api, feed: MembershipFeed
) -> None:
    county, _, village = await feed.tree()
    contest = await competition(api, county)
    courier = await event(api, contest["id"], "快递员技能")
    duplicate_trade = await api.client.post(
        f"/v1/competitions/{contest['id']}/events",
        headers=api.platform,
        json={"trade": "快递员技能"},
    )
    assert duplicate_trade.status_code == 409
    assert duplicate_trade.json()["error"]["code"] == "competition_event_exists"
    url = f"/v1/competition-events/{courier['id']}"

    empty = await api.client.post(f"{url}/publish", headers=api.platform, json={"gold": 1})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "no_entries"

    member_no = await feed.member(village)
    person = non_member()
    good = valid_id_number()
    bad_id = good[:-1] + ("0" if good[-1] != "0" else "1")
    first = await enter(api, courier["id"], {"member_no": member_no})
    second = await enter(api, courier["id"], person)
    for body in ({"member_no": member_no}, person | {"name": "另一个名字"}):
        again = await api.client.post(f"{url}/entries", headers=api.platform, json=body)
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_entered"
    for body, status, code, field in (
        ({"member_no": member_no, "name": "张三"}, 422, "invalid_entrant", "member_no"),
        ({"name": "张三", "phone": "13800138000"}, 422, "invalid_entrant", "id_number"),
        (non_member(id_number=bad_id), 422, "invalid_id_number", "id_number"),
        (non_member(phone="12345"), 422, "invalid_phone", "phone"),
        ({"member_no": "5309212026999999"}, 404, "member_not_found", "member_no"),
    ):
        response = await api.client.post(f"{url}/entries", headers=api.platform, json=body)
        error = response.json()["error"]
        assert (response.status_code, error["code"], error["details"]["field"]) == (
            status,
            code,
            field,
        ), response.text
    for value in (-1, 1000.01, "12.345", "abc"):
        response = await api.client.put(
            f"/v1/competition-entries/{first['id']}/score",
            headers=api.platform,
            json={"score": value},
        )
        assert response.status_code == 422, value
        assert response.json()["error"]["details"][0]["field"] == "score"

    await score(api, first["id"], 1000)
    unscored = await api.client.post(f"{url}/publish", headers=api.platform, json={"gold": 1})
    assert unscored.status_code == 422
    error = unscored.json()["error"]
    assert error["code"] == "unscored_entries"
    assert error["details"]["entries"] == [{"id": second["id"], "name": person["name"]}]

    await score(api, second["id"], 0)
    await api.ok("POST", f"{url}/publish", json={"gold": 1})
    for method, path, body in (
        ("POST", f"{url}/publish", {"gold": 1}),
        ("PUT", f"/v1/competition-entries/{second['id']}/score", {"score": 50}),
        ("POST", f"{url}/entries", non_member()),
    ):
        response = await api.client.request(method, path, headers=api.platform, json=body)
        assert response.status_code == 409, path
        assert response.json()["error"]["code"] == "results_already_published"
    assert len(await published_events(app)) == 1
    late = await api.client.post(
        f"/v1/competitions/{contest['id']}/events", headers=api.platform, json={"trade": "电工"}
    )
    assert late.status_code == 409 and late.json()["error"]["code"] == "competition_finished"
    listed = await api.ok("GET", f"{url}/entries")
    assert [e["score"] for e in listed] == ["1000.00", "0.00"]
    assert [e["award"] for e in listed] == ["gold", "none"]


async def test_scope_of_competitions(api: Api, feed: MembershipFeed) -> None:
    county, township, village = await feed.tree()
    other = await feed.org(None, "county_federation", "昌宁县总工会", "530524000000")
    await feed.synced()
    member_no = await feed.member(village)
    outsider_no = await feed.member(other)
    body = COMPETITION | {"host_org_id": county["id"]}

    for headers, code in (
        (api.headers(Role.member, village, member_no=member_no), "forbidden"),
        (api.headers(Role.station_operator, county), "forbidden"),
        (api.headers(Role.gov_system, county), "forbidden"),
        (api.headers(Role.org_chair, township), "out_of_scope"),
        (api.headers(Role.county_admin, other), "out_of_scope"),
    ):
        response = await api.client.post("/v1/competitions", headers=headers, json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (403, code)

    chair = api.headers(Role.org_chair, township)
    town_contest = await api.ok(
        "POST",
        "/v1/competitions",
        as_=chair,
        expect=201,
        json=body | {"host_org_id": township["id"]},
    )
    county_contest = await competition(api, county)
    welding = await event(api, county_contest["id"])
    entry = await enter(api, welding["id"], {"member_no": member_no})

    # Writing on the county's competition from the township, or from another county.
    for headers in (chair, api.headers(Role.county_admin, other)):
        for method, path, payload in (
            ("POST", f"/v1/competitions/{county_contest['id']}/events", {"trade": "电工"}),
            ("POST", f"/v1/competition-events/{welding['id']}/entries", {"member_no": member_no}),
            ("PUT", f"/v1/competition-entries/{entry['id']}/score", {"score": 80}),
            ("POST", f"/v1/competition-events/{welding['id']}/publish", {"gold": 1}),
            ("GET", f"/v1/competition-events/{welding['id']}/entries", None),
        ):
            response = await api.client.request(method, path, headers=headers, json=payload)
            assert response.status_code == 403, path
            assert response.json()["error"]["code"] == "out_of_scope"
    missing = await api.client.post(
        "/v1/competition-events/0193a1c2-7d1e-7a3b-9c5d-000000000000/entries",
        headers=api.platform,
        json={"member_no": member_no},
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "competition_event_not_found"

    # Reading: staff see their subtree; a member sees competitions of their org and above.
    def ids(page: dict[str, Any]) -> set[str]:
        return {c["id"] for c in page["items"]}

    both = {town_contest["id"], county_contest["id"]}
    assert ids(await api.ok("GET", "/v1/competitions", as_=chair)) == {town_contest["id"]}
    admin = api.headers(Role.county_admin, county)
    assert ids(await api.ok("GET", "/v1/competitions", as_=admin)) == both
    by_org = await api.ok("GET", f"/v1/competitions?org_id={township['id']}", as_=admin)
    assert ids(by_org) == {town_contest["id"]}
    member = api.headers(Role.member, village, member_no=member_no)
    assert ids(await api.ok("GET", "/v1/competitions", as_=member)) == both
    shown = await api.ok("GET", f"/v1/competitions/{county_contest['id']}", as_=member)
    assert shown["events"][0]["entries"] == 1
    outsider = api.headers(Role.member, other, member_no=outsider_no)
    assert ids(await api.ok("GET", "/v1/competitions", as_=outsider)) == set()
    for headers in (outsider, chair, api.headers(Role.county_admin, other)):
        response = await api.client.get(f"/v1/competitions/{county_contest['id']}", headers=headers)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "out_of_scope"
    response = await api.client.get(f"/v1/competitions?org_id={county['id']}", headers=chair)
    assert response.status_code == 403 and response.json()["error"]["code"] == "out_of_scope"
    response = await api.client.get(
        f"/v1/competition-events/{welding['id']}/entries", headers=member
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
