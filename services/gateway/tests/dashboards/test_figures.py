"""Dashboard figures from events on real NATS equal the figures computed from the inputs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from gateway.dashboards.testing import EventFeed, Scenario, normalise
from gonghui_shared.testing import auth_header, token_for

PERIODS = [(None, None), ("2026-04", "2026-05"), (None, "2026-03"), ("2026-05", None)]


async def overview(
    client: httpx.AsyncClient, headers: dict[str, str], org_id: str, **params: Any
) -> dict[str, Any]:
    response = await client.get(
        "/v1/dashboard/overview", params={"org_id": org_id, **params}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def period(first: str | None, last: str | None) -> dict[str, str]:
    return {k: v for k, v in (("from", first), ("to", last)) if v is not None}


async def test_every_figure_equals_the_scenario_and_duplicates_change_nothing(
    client: httpx.AsyncClient, feed: EventFeed, scenario: Scenario, admin: dict[str, str]
) -> None:
    # Every event delivered twice: the second copy is a new NATS message with the same id.
    envelopes = await scenario.publish(feed, twice=True)

    for key in ("C", "T1", "T2", "V1", "V3", "E1", "X"):
        for first, last in PERIODS:
            answer = await overview(client, admin, scenario.orgs[key].id, **period(first, last))
            assert normalise(answer["figures"]) == scenario.expected(key, first, last), (
                key,
                first,
                last,
            )
    county = await overview(client, admin, scenario.orgs["C"].id)
    assert county["org"]["name"] == "凤庆县总工会" and county["period"] == {
        "from": None,
        "to": None,
    }
    figures = county["figures"]
    # The scenario's own numbers, as an official would read them.
    assert figures["members"]["active"] == 6 and figures["members"]["migrant_workers"] == 2
    assert figures["training"]["person_times"] == 7 and figures["training"]["unique_persons"] == 4
    assert figures["training"]["budget_spent"] == "4700.50"
    assert figures["stations"]["circle"]["covered"] == 3
    assert figures["stations"]["circle"]["units_located"] == 4
    assert figures["units"]["levels"][1] == {
        "level": "village",
        "total": 6,
        "covered": 4,
        "rate": 0.6667,
    }
    # Every event counted once in the freshness, whatever was redelivered.
    applied = {f["source"]: f["events_applied"] for f in county["freshness"]}
    assert applied == {
        source: sum(1 for e in envelopes if e.source == source)
        for source in ("membership", "training", "stations")
    }


async def test_out_of_order_delivery_converges(
    client: httpx.AsyncClient, feed: EventFeed, scenario: Scenario, admin: dict[str, str]
) -> None:
    # Newest first: members approved before their orgs exist, transfers and endings before
    # approvals, completions before schedules, revocations before issues, a station's
    # suspension before its opening and its move before its first place.
    await scenario.publish(feed, reverse=True)
    for key in ("C", "T1", "T2", "V1", "V3"):
        for first, last in PERIODS:
            answer = await overview(client, admin, scenario.orgs[key].id, **period(first, last))
            assert normalise(answer["figures"]) == scenario.expected(key, first, last), (
                key,
                first,
                last,
            )
    mapped = await client.get(
        "/v1/dashboard/map", params={"org_id": scenario.orgs["C"].id}, headers=admin
    )
    places = {st["id"]: (st["lon"], st["lat"]) for st in mapped.json()["stations"]}
    st1 = scenario.stations["ST1"]
    assert places[st1.id] == pytest.approx(st1.final_place)


async def test_member_approved_before_its_org_counts_once_the_org_arrives(
    client: httpx.AsyncClient, feed: EventFeed, scenario: Scenario, admin: dict[str, str]
) -> None:
    events = scenario.events()
    orgs = [e for e in events if e[1].type.startswith("membership.org.")]
    others = [e for e in events if not e[1].type.startswith("membership.org.")]
    for when, event, aggregate, path in others:
        await feed.publish(event, aggregate_id=aggregate, org_path=path, occurred_at=when)
    await feed.synced()
    missing = await client.get(
        "/v1/dashboard/overview", params={"org_id": scenario.orgs["C"].id}, headers=admin
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "org_not_found"

    for when, event, aggregate, path in orgs:
        await feed.publish(event, aggregate_id=aggregate, org_path=path, occurred_at=when)
    await feed.synced()
    answer = await overview(client, admin, scenario.orgs["C"].id)
    assert normalise(answer["figures"]) == scenario.expected("C")


async def test_children_are_the_subtrees_of_the_direct_children(
    client: httpx.AsyncClient, feed: EventFeed, scenario: Scenario, admin: dict[str, str]
) -> None:
    await scenario.publish(feed)
    for parent, kids in (("C", ["T1", "T2"]), ("T1", ["V1", "V2", "E1"]), ("V1", [])):
        for first, last in PERIODS[:2]:
            response = await client.get(
                "/v1/dashboard/children",
                params={"org_id": scenario.orgs[parent].id, **period(first, last)},
                headers=admin,
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["org"]["id"] == scenario.orgs[parent].id
            by_id = {child["org"]["id"]: child for child in body["children"]}
            assert set(by_id) == {scenario.orgs[k].id for k in kids}
            names = [child["org"]["name"] for child in body["children"]]
            assert names == sorted(names)
            for kid in kids:
                got = normalise(by_id[scenario.orgs[kid].id]["figures"])
                assert got == scenario.expected(kid, first, last), (parent, kid, first, last)
    # Person-times add up: 4 in 凤山镇's subtree, none in 勐佑镇's, and the county's own 3.
    county = await overview(client, admin, scenario.orgs["C"].id)
    children = (
        await client.get(
            "/v1/dashboard/children", params={"org_id": scenario.orgs["C"].id}, headers=admin
        )
    ).json()["children"]
    assert [c["figures"]["training"]["person_times"] for c in children] == [4, 0]
    assert county["figures"]["training"]["person_times"] == 7


async def test_timeseries_per_month(
    client: httpx.AsyncClient, feed: EventFeed, scenario: Scenario, admin: dict[str, str]
) -> None:
    await scenario.publish(feed)
    county = scenario.orgs["C"].id

    async def series(metric: str, **params: Any) -> dict[str, Any]:
        response = await client.get(
            "/v1/dashboard/timeseries",
            params={"org_id": county, "metric": metric, **params},
            headers=admin,
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def points(body: dict[str, Any]) -> list[tuple[str, int]]:
        return [(p["month"], p["value"]) for p in body["points"]]

    window = {"from": "2026-01", "to": "2026-06"}
    months = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]
    flows = {
        "new_members": [1, 3, 2, 2, 0, 0],  # M6 is 1 February in China
        "person_times": [0, 0, 3, 4, 0, 0],
        "unique_persons": [0, 0, 2, 3, 0, 0],  # per month; 4 over the whole period
        "sessions_completed": [0, 0, 1, 1, 0, 0],
        "sessions_cancelled": [0, 0, 0, 0, 1, 0],
        "sessions_scheduled": [0, 0, 0, 0, 0, 1],  # starts 1 June in China
        "certificates_issued": [0, 0, 2, 2, 0, 0],
        "certificates_revoked": [0, 0, 0, 1, 0, 0],
        "budget_spent_fen": [0, 0, 150000, 320050, 0, 0],
        "visits": [0, 0, 0, 0, 3, 1],
        "services_used": [0, 0, 0, 0, 4, 1],
        "subsidies_paid_fen": [0, 0, 0, 0, 10000, 15000],
    }
    for metric, values in flows.items():
        body = await series(metric, **window)
        assert body["kind"] == "flow" and body["metric"] == metric
        assert points(body) == list(zip(months, values, strict=True)), metric
    # Stocks: how things stood at each month's end, checked against the oracle's overview.
    for metric, read in (
        ("members_active", lambda f: f["members"]["active"]),
        ("migrant_workers", lambda f: f["members"]["migrant_workers"]),
        ("new_employment", lambda f: f["members"]["new_employment"]),
    ):
        body = await series(metric, **window)
        assert body["kind"] == "stock"
        expected = [(mo, read(scenario.expected("C", None, mo))) for mo in months]
        assert points(body) == expected, metric
    assert points(await series("members_active", **window))[-1] == ("2026-06", 6)
    # Without bounds: from the first month with data to the current month.
    body = await series("new_members")
    current = datetime.now(UTC).strftime("%Y-%m")
    assert body["points"][0] == {"month": "2026-01", "value": 1}
    assert body["period"] == {"from": "2026-01", "to": max(current, "2026-06")}
    assert sum(p["value"] for p in body["points"]) == 8

    unknown = await client.get(
        "/v1/dashboard/timeseries", params={"org_id": county, "metric": "smiles"}, headers=admin
    )
    assert unknown.status_code == 422
    error = unknown.json()["error"]
    assert "person_times" in str(error["details"]) and "members_active" in str(error["details"])
    backwards = await client.get(
        "/v1/dashboard/timeseries",
        params={"org_id": county, "metric": "visits", "from": "2026-06", "to": "2026-01"},
        headers=admin,
    )
    assert backwards.status_code == 422 and backwards.json()["error"]["code"] == "invalid_period"
    bad_month = await client.get(
        "/v1/dashboard/overview", params={"org_id": county, "from": "2026-13"}, headers=admin
    )
    assert bad_month.status_code == 422


async def test_freshness_says_what_was_applied_and_when(
    client: httpx.AsyncClient, feed: EventFeed, scenario: Scenario, admin: dict[str, str]
) -> None:
    county = scenario.orgs["C"]
    org = scenario.events()[0]
    await feed.publish(org[1], aggregate_id=org[2], org_path=org[3], occurred_at=org[0])
    await feed.synced()
    before = await overview(client, admin, county.id)
    assert [f["source"] for f in before["freshness"]] == ["membership", "training", "stations"]
    fresh = {f["source"]: f for f in before["freshness"]}
    assert fresh["training"] == {
        "source": "training",
        "last_event_at": None,
        "applied_at": None,
        "events_applied": 0,
    }
    assert fresh["membership"]["events_applied"] == 1
    assert fresh["membership"]["last_event_at"] == "2025-12-01T00:00:00Z"

    started = datetime.now(UTC)
    envelopes = await scenario.publish(feed)
    after = {f["source"]: f for f in (await overview(client, admin, county.id))["freshness"]}
    for source in ("membership", "training", "stations"):
        # Published in time order, one consumer per source: the last one applied is the newest.
        last = max(e.occurred_at for e in envelopes if e.source == source)
        assert datetime.fromisoformat(after[source]["last_event_at"]) == last
        applied_at = datetime.fromisoformat(after[source]["applied_at"])
        assert started <= applied_at <= datetime.now(UTC)


async def test_scope_and_unknown_orgs(
    client: httpx.AsyncClient, feed: EventFeed, scenario: Scenario, settings: Any
) -> None:
    await scenario.publish(feed)
    o = scenario.orgs
    chair = auth_header(token_for(settings, "org_chair", org_id=o["T1"].id, org_path=o["T1"].path))
    for endpoint in ("overview", "children", "map"):
        url = f"/v1/dashboard/{endpoint}"
        mine = await client.get(url, params={"org_id": o["V1"].id}, headers=chair)
        assert mine.status_code == 200, mine.text
        for outside in ("C", "T2", "X"):
            denied = await client.get(url, params={"org_id": o[outside].id}, headers=chair)
            assert denied.status_code == 403, (endpoint, outside)
            assert denied.json()["error"]["code"] == "out_of_scope"
        unknown = await client.get(url, params={"org_id": "no-such-org"}, headers=chair)
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "org_not_found"
        anonymous = await client.get(url, params={"org_id": o["V1"].id})
        assert anonymous.status_code == 401
    series = await client.get(
        "/v1/dashboard/timeseries",
        params={"org_id": o["C"].id, "metric": "visits"},
        headers=chair,
    )
    assert series.status_code == 403
    # Another county's admin sees nothing of this one.
    other = auth_header(token_for(settings, "county_admin", org_id=o["X"].id, org_path=o["X"].path))
    assert (
        await client.get("/v1/dashboard/overview", params={"org_id": o["C"].id}, headers=other)
    ).status_code == 403
    # A role without the dashboards action is refused whatever the org.
    operator = auth_header(
        token_for(settings, "station_operator", org_id=o["V1"].id, org_path=o["V1"].path)
    )
    refused = await client.get(
        "/v1/dashboard/overview", params={"org_id": o["V1"].id}, headers=operator
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"


async def test_map_points_and_circles(
    client: httpx.AsyncClient, feed: EventFeed, scenario: Scenario, admin: dict[str, str]
) -> None:
    await scenario.publish(feed)
    for key in ("C", "T2"):
        response = await client.get(
            "/v1/dashboard/map", params={"org_id": scenario.orgs[key].id}, headers=admin
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["radius_m"] == 1125.0 and body["minutes"] == 15.0
        want = scenario.expected_map(key)
        got_stations = {
            st["id"]: (st["station_type"], st["status"], (st["lon"], st["lat"]))
            for st in body["stations"]
        }
        assert got_stations.keys() == want["stations"].keys()
        for station_id, (kind, status, place) in want["stations"].items():
            assert got_stations[station_id][:2] == (kind, status)
            assert got_stations[station_id][2] == pytest.approx(place)
        got_villages = {v["org_id"]: v for v in body["villages"]}
        assert got_villages.keys() == want["villages"].keys()
        for org_id, (covered, nearest) in want["villages"].items():
            village = got_villages[org_id]
            assert village["covered"] is covered
            if nearest is None:
                assert village["nearest_station_m"] is None
            else:
                assert village["nearest_station_m"] == pytest.approx(nearest, abs=0.06)
    v3 = next(
        v
        for v in (
            await client.get(
                "/v1/dashboard/map", params={"org_id": scenario.orgs["T2"].id}, headers=admin
            )
        ).json()["villages"]
        if v["org_id"] == scenario.orgs["V3"].id
    )
    # Covered by the neighbouring county's station 800 m away, not by its own closed one.
    assert v3["covered"] is True and v3["nearest_station_m"] == pytest.approx(800, abs=0.5)


async def test_answers_with_no_events_for_a_bare_org(
    client: httpx.AsyncClient, feed: EventFeed, scenario: Scenario, admin: dict[str, str]
) -> None:
    org = scenario.events()[0]
    await feed.publish(org[1], aggregate_id=org[2], org_path=org[3], occurred_at=org[0])
    await feed.synced()
    answer = await overview(
        client, admin, scenario.orgs["C"].id, **{"from": "2026-01", "to": "2026-03"}
    )
    members = answer["figures"]["members"]
    assert members["active"] == 0 and members["new_members_per_month"] == [
        {"month": m, "count": 0} for m in ("2026-01", "2026-02", "2026-03")
    ]
    assert answer["figures"]["units"]["levels"] == [
        {"level": "township", "total": 0, "covered": 0, "rate": None},
        {"level": "village", "total": 0, "covered": 0, "rate": None},
    ]
    assert answer["figures"]["stations"]["circle"]["rate"] is None
    assert answer["figures"]["cadres"] == {
        "sources": ["membership", "training"],
        "cadres": 0,
        "trained": 0,
        "rate": None,
    }
