"""The monthly subsidy ledger: record, pay once, accrue a month idempotently, totals per
subtree in exact yuan, and who may do what."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from gonghui_shared.clock import today_in_china
from gonghui_shared.ids import new_id
from gonghui_shared.testing.feed import MembershipFeed
from stations.base import outbox
from stations.testing import Api, open_station


@pytest.fixture
async def world(api: Api, feed: MembershipFeed) -> dict[str, Any]:
    """Two counties; in the first, stations at the township and the village."""
    county, township, village = await feed.tree()
    other_county = await feed.org(None, "county_federation", "云县总工会", "530922000000")
    other_township = await feed.org(county, "township_union", "营盘镇工会", "530921102000")
    await feed.synced()
    post_office = await open_station(
        api,
        township,
        name="凤山镇村邮乐购工会服务点",
        station_type="village_service_point",
        host_partner="中国邮政村邮乐购",
    )
    bank = await open_station(
        api,
        village,
        name="京竹林村农村普惠金融服务点",
        station_type="village_service_point",
        host_partner="桂林银行普惠金融服务点",
    )
    love_station = await open_station(api, township, name="凤山镇环卫爱心驿站")
    return {
        "county": county,
        "township": township,
        "village": village,
        "other_county": other_county,
        "other_township": other_township,
        "post_office": post_office,
        "bank": bank,
        "love_station": love_station,
    }


def admin(api: Api, world: dict[str, Any]) -> dict[str, str]:
    return api.headers("county_admin", world["county"])


async def paid_events(app: FastAPI) -> list[dict[str, Any]]:
    async with app.state.runtime.db.sessions() as session:
        rows = (
            await session.execute(
                select(outbox.c.payload).where(outbox.c.event_type == "stations.subsidy.paid")
            )
        ).all()
    return [json.loads(row.payload)["data"] for row in rows]


async def test_record_defaults_to_the_village_point_subsidy_and_once_per_month(
    api: Api, world: dict[str, Any]
) -> None:
    url = f"/v1/stations/{world['post_office']['id']}/subsidies"
    line = await api.ok("POST", url, as_=admin(api, world), json={"period": "2026-10"}, expect=201)
    assert (line["amount"], line["status"], line["period"]) == ("100.00", "unpaid", "2026-10")
    assert line["station_name"] == "凤山镇村邮乐购工会服务点"
    assert line["station_type"] == "village_service_point"
    assert line["paid_on"] is None

    response = await api.client.post(
        url, json={"period": "2026-10", "amount": "50"}, headers=admin(api, world)
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "subsidy_already_recorded"

    # Another month, another amount: exact to the fen.
    line = await api.ok(
        "POST",
        url,
        as_=admin(api, world),
        json={"period": "2026-09", "amount": 150.1, "note": "含春节慰问加发"},
        expect=201,
    )
    assert (line["amount"], line["note"]) == ("150.10", "含春节慰问加发")


async def test_record_needs_an_amount_a_past_month_and_a_known_station(
    api: Api, world: dict[str, Any]
) -> None:
    love = f"/v1/stations/{world['love_station']['id']}/subsidies"
    response = await api.client.post(love, json={"period": "2026-10"}, headers=admin(api, world))
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["details"]["field"]) == ("subsidy_amount_required", "amount")
    await api.ok(
        "POST",
        love,
        as_=admin(api, world),
        json={"period": "2026-10", "amount": "80.00"},
        expect=201,
    )

    url = f"/v1/stations/{world['post_office']['id']}/subsidies"
    next_year = f"{today_in_china().year + 1}-01"
    response = await api.client.post(url, json={"period": next_year}, headers=admin(api, world))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "period_in_future"
    for body, field in (
        ({"period": "2026-13"}, "period"),
        ({"period": "2026-1"}, "period"),
        ({"period": "2026-10", "amount": "0"}, "amount"),
        ({"period": "2026-10", "amount": "10.001"}, "amount"),
        ({"period": "2026-10", "amount": "-5"}, "amount"),
    ):
        response = await api.client.post(url, json=body, headers=admin(api, world))
        assert response.status_code == 422, (body, response.text)
        assert field in {d["field"] for d in response.json()["error"]["details"]}

    response = await api.client.post(
        f"/v1/stations/{new_id()}/subsidies", json={"period": "2026-10"}, headers=admin(api, world)
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "station_not_found"


async def test_pay_once_and_publish(app: FastAPI, api: Api, world: dict[str, Any]) -> None:
    url = f"/v1/stations/{world['bank']['id']}/subsidies"
    line = await api.ok("POST", url, as_=admin(api, world), json={"period": "2026-10"}, expect=201)
    pay = f"/v1/subsidies/{line['id']}/pay"

    response = await api.client.post(
        pay, json={"paid_on": f"{today_in_china().year + 1}-01-01"}, headers=admin(api, world)
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "paid_on_in_future"

    paid = await api.ok("POST", pay, as_=admin(api, world), json={"paid_on": "2026-11-05"})
    assert (paid["status"], paid["paid_on"], paid["amount"]) == ("paid", "2026-11-05", "100.00")
    assert paid["paid_by"]

    response = await api.client.post(pay, json={}, headers=admin(api, world))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "subsidy_already_paid"

    (event,) = await paid_events(app)
    assert event == {
        "subsidy_id": line["id"],
        "station_id": world["bank"]["id"],
        "host_org_id": world["village"]["id"],
        "period": "2026-10",
        "amount_fen": 10000,
        "paid_on": "2026-11-05",
    }

    # No body: paid today (in China).
    line = await api.ok("POST", url, as_=admin(api, world), json={"period": "2026-09"}, expect=201)
    paid = await api.ok("POST", f"/v1/subsidies/{line['id']}/pay", as_=admin(api, world))
    assert paid["paid_on"] == today_in_china().isoformat()

    response = await api.client.post(f"/v1/subsidies/{new_id()}/pay", headers=admin(api, world))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "subsidy_not_found"


async def test_accrue_a_month_for_a_subtree_is_idempotent(api: Api, world: dict[str, Any]) -> None:
    # Not accrued: suspended, no subsidy, or in another county.
    await open_station(
        api, world["village"], station_type="village_service_point", status="suspended"
    )
    await open_station(
        api, world["other_county"], station_type="village_service_point", name="云县服务点"
    )
    # A station in the other township with an agreed 120 yuan a month.
    pharmacy = await open_station(
        api, world["other_township"], name="营盘镇药店驿站", monthly_subsidy="120.00"
    )
    # The bank point's October is already recorded by hand.
    await api.ok(
        "POST",
        f"/v1/stations/{world['bank']['id']}/subsidies",
        as_=admin(api, world),
        json={"period": "2026-10", "amount": "90.00"},
        expect=201,
    )

    body = {"org_id": world["township"]["id"], "period": "2026-10"}
    township = await api.ok("POST", "/v1/subsidies/accrue", as_=admin(api, world), json=body)
    assert (township["created"], township["amount"]) == (1, "100.00")  # the post office only

    body = {"org_id": world["county"]["id"], "period": "2026-10"}
    county = await api.ok("POST", "/v1/subsidies/accrue", as_=admin(api, world), json=body)
    assert (county["created"], county["amount"]) == (1, "120.00")  # the pharmacy
    again = await api.ok("POST", "/v1/subsidies/accrue", as_=admin(api, world), json=body)
    assert (again["created"], again["amount"]) == (0, "0.00")

    lines = await api.ok(
        "GET",
        "/v1/subsidies",
        as_=admin(api, world),
        params={"org_id": world["county"]["id"], "period": "2026-10"},
    )
    amounts = {line["station_id"]: line["amount"] for line in lines["items"]}
    assert amounts == {
        world["post_office"]["id"]: "100.00",
        world["bank"]["id"]: "90.00",  # kept as recorded
        pharmacy["id"]: "120.00",
    }

    body = {"org_id": world["county"]["id"], "period": "2026-11"}
    november = await api.ok("POST", "/v1/subsidies/accrue", as_=admin(api, world), json=body)
    assert (november["created"], november["amount"]) == (3, "320.00")

    response = await api.client.post(
        "/v1/subsidies/accrue",
        json={"org_id": new_id(), "period": "2026-10"},
        headers=admin(api, world),
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "org_not_found"


async def test_totals_per_subtree_in_exact_yuan(api: Api, world: dict[str, Any]) -> None:
    as_admin = admin(api, world)

    async def line(station: str, period: str, amount: str, paid: bool = False) -> None:
        created = await api.ok(
            "POST",
            f"/v1/stations/{world[station]['id']}/subsidies",
            as_=as_admin,
            json={"period": period, "amount": amount},
            expect=201,
        )
        if paid:
            await api.ok("POST", f"/v1/subsidies/{created['id']}/pay", as_=as_admin)

    # Amounts a float would get wrong: 0.10 + 0.20 must be 0.30.
    await line("post_office", "2026-08", "0.10", paid=True)
    await line("bank", "2026-08", "0.20")
    await line("post_office", "2026-09", "100.00", paid=True)
    await line("bank", "2026-09", "100.00", paid=True)
    await line("love_station", "2026-09", "33.33")
    await line("bank", "2026-10", "100.00")

    totals = await api.ok(
        "GET", "/v1/subsidies/totals", as_=as_admin, params={"org_id": world["county"]["id"]}
    )
    assert totals["periods"] == [
        {
            "period": "2026-08",
            "recorded": "0.30",
            "paid": "0.10",
            "unpaid": "0.20",
            "stations": 2,
            "lines": 2,
        },
        {
            "period": "2026-09",
            "recorded": "233.33",
            "paid": "200.00",
            "unpaid": "33.33",
            "stations": 3,
            "lines": 3,
        },
        {
            "period": "2026-10",
            "recorded": "100.00",
            "paid": "0.00",
            "unpaid": "100.00",
            "stations": 1,
            "lines": 1,
        },
    ]
    assert totals["total"] == {
        "recorded": "333.63",
        "paid": "200.10",
        "unpaid": "133.53",
        "stations": 3,
        "lines": 6,
    }

    # The village's subtree holds only the bank point; a month range narrows it.
    village = await api.ok(
        "GET",
        "/v1/subsidies/totals",
        as_=as_admin,
        params={"org_id": world["village"]["id"], "from": "2026-09", "to": "2026-10"},
    )
    assert [p["period"] for p in village["periods"]] == ["2026-09", "2026-10"]
    assert village["total"] == {
        "recorded": "200.00",
        "paid": "100.00",
        "unpaid": "100.00",
        "stations": 1,
        "lines": 2,
    }
    assert (village["from"], village["to"]) == ("2026-09", "2026-10")

    # Without org_id, a county admin reads their own county.
    own = await api.ok("GET", "/v1/subsidies/totals", as_=as_admin)
    assert own["total"] == totals["total"]
    # Another county's admin sees none of it.
    other = await api.ok(
        "GET",
        "/v1/subsidies/totals",
        as_=api.headers("county_admin", world["other_county"]),
    )
    assert other["periods"] == [] and other["total"]["recorded"] == "0.00"

    response = await api.client.get(
        "/v1/subsidies/totals", params={"from": "2026-10", "to": "2026-09"}, headers=as_admin
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_period_range"
    response = await api.client.get(
        "/v1/subsidies/totals", params={"from": "2026-9"}, headers=as_admin
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "from"

    # The ledger itself, filtered and paged.
    unpaid = await api.ok("GET", "/v1/subsidies", as_=as_admin, params={"status": "unpaid"})
    assert sorted(i["amount"] for i in unpaid["items"]) == ["0.20", "100.00", "33.33"]
    first = await api.ok("GET", "/v1/subsidies", as_=as_admin, params={"limit": 4})
    assert len(first["items"]) == 4 and first["next_cursor"]
    rest = await api.ok(
        "GET", "/v1/subsidies", as_=as_admin, params={"limit": 4, "cursor": first["next_cursor"]}
    )
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    bank = await api.ok(
        "GET", "/v1/subsidies", as_=as_admin, params={"station_id": world["bank"]["id"]}
    )
    assert [i["period"] for i in bank["items"]] == ["2026-08", "2026-09", "2026-10"]


async def test_who_may_keep_the_ledger(
    api: Api, feed: MembershipFeed, world: dict[str, Any]
) -> None:
    record = f"/v1/stations/{world['post_office']['id']}/subsidies"
    line = await api.ok(
        "POST", record, as_=admin(api, world), json={"period": "2026-10"}, expect=201
    )
    pay = f"/v1/subsidies/{line['id']}/pay"
    accrue = ("/v1/subsidies/accrue", {"org_id": world["township"]["id"], "period": "2026-10"})
    member_no = await feed.member(world["village"])
    writes = [(record, {"period": "2026-09"}), (pay, {}), accrue]

    refusals = {
        "forbidden": [
            api.headers("org_chair", world["township"]),  # chairs run stations, not the money
            api.headers("station_operator", world["township"]),
            api.headers("member", world["village"], member_no=member_no),
            api.headers("gov_system", world["county"]),
        ],
        "out_of_scope": [api.headers("county_admin", world["other_county"])],
    }
    for code, principals in refusals.items():
        for headers in principals:
            for url, body in writes:
                response = await api.client.post(url, json=body, headers=headers)
                assert response.status_code == 403, (url, response.text)
                assert response.json()["error"]["code"] == code, url

    # Reading is for those who read reports: an org chair sees its own subtree.
    chair = api.headers("org_chair", world["township"])
    lines = await api.ok("GET", "/v1/subsidies", as_=chair)
    assert [i["id"] for i in lines["items"]] == [line["id"]]
    totals = await api.ok("GET", "/v1/subsidies/totals", as_=chair)
    assert totals["total"]["unpaid"] == "100.00"
    response = await api.client.get(
        "/v1/subsidies", params={"org_id": world["county"]["id"]}, headers=chair
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "out_of_scope"
    for headers in (
        api.headers("station_operator", world["township"]),
        api.headers("member", world["village"], member_no=member_no),
    ):
        for url in ("/v1/subsidies", "/v1/subsidies/totals"):
            response = await api.client.get(url, headers=headers)
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "forbidden"
    # A platform admin sees every county.
    everything = await api.ok("GET", "/v1/subsidies/totals", as_=api.platform)
    assert everything["total"]["lines"] == 1
