"""Session budgets over HTTP: exact yuan, per-category totals, overspending, scope."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, select

from gonghui_shared.clock import today_in_china
from gonghui_shared.permissions import Role
from gonghui_shared.testing.feed import MembershipFeed
from training.budget.models import BudgetEntry
from training.testing import Api

# Shares of a session's plan by category (percent); "other" takes the rounding remainder.
SHARES = {"trainer": 40, "venue": 20, "materials": 15, "meals": 20}


def split(total_fen: int) -> dict[str, int]:
    parts = {category: total_fen * pct // 100 for category, pct in SHARES.items()}
    parts["other"] = total_fen - sum(parts.values())
    return parts


def as_yuan(fen: int) -> str:
    return f"{Decimal(fen).scaleb(-2):.2f}"


async def entry(api: Api, session_id: str, as_: dict[str, str] | None = None, **body: Any) -> Any:
    return await api.ok("POST", f"/v1/sessions/{session_id}/budget", as_=as_, expect=201, json=body)


async def test_the_countys_270000_yuan_split_across_seven_sessions_adds_up_exactly(
    app: FastAPI, api: Api, feed: MembershipFeed
) -> None:
    # "270,000 yuan for 7,000 workers": seven sessions of about a thousand each.
    county, township, village = await feed.tree()
    course = await api.course(county)
    year_fen = 270_000_00
    share = year_fen // 7  # 3,857,142 fen: 38,571.42 yuan
    budgets = [share + (1 if i < year_fen - share * 7 else 0) for i in range(7)]
    assert sum(budgets) == year_fen and len(set(budgets)) == 2
    sessions = []
    for i, fen in enumerate(budgets):
        host = (county, township, village)[i % 3]
        ts = await api.schedule(course, host, planned_budget=as_yuan(fen), capacity=1000)
        sessions.append(ts)
        for category, part in split(fen).items():
            # Numbers and strings alike; both are read as exact decimals.
            amount: Any = as_yuan(part) if i % 2 else float(as_yuan(part))
            await entry(api, ts["id"], kind="planned", category=category, amount=amount)
    assert sum(Decimal(ts["planned_budget"]) for ts in sessions) == Decimal("270000.00")

    totals = []
    for ts, fen in zip(sessions, budgets, strict=True):
        budget = await api.ok("GET", f"/v1/sessions/{ts['id']}/budget")
        assert budget["planned_budget"] == budget["planned_total"] == as_yuan(fen)
        assert budget["spent_total"] == "0.00" and budget["over_budget"] is False
        assert {line["category"]: line["planned"] for line in budget["categories"]} == {
            category: as_yuan(part) for category, part in split(fen).items()
        }
        totals.append(Decimal(budget["planned_total"]))
    assert sum(totals) == Decimal("270000.00")

    # What reports read: entries in fen, with the host's path and a date.
    async with app.state.runtime.db.sessions() as session:
        planned_fen = await session.scalar(
            select(func.sum(BudgetEntry.amount_fen)).where(
                BudgetEntry.kind == "planned",
                BudgetEntry.host_org_path.startswith(county["path"]),
            )
        )
        in_village = await session.scalar(
            select(func.sum(BudgetEntry.amount_fen)).where(
                BudgetEntry.host_org_path.startswith(village["path"])
            )
        )
    assert planned_fen == year_fen
    assert in_village == budgets[2] + budgets[5]


async def test_ten_fen_plus_twenty_fen_is_thirty_fen(api: Api, feed: MembershipFeed) -> None:
    county, _, _ = await feed.tree()
    ts = await api.schedule(await api.course(county), county, planned_budget=0.3)
    first = await entry(api, ts["id"], kind="spent", category="meals", amount=0.1)
    assert first["amount"] == "0.10" and first["entry_date"] == today_in_china().isoformat()
    await entry(api, ts["id"], kind="spent", category="meals", amount=0.2, note="矿泉水")
    budget = await api.ok("GET", f"/v1/sessions/{ts['id']}/budget")
    meals = next(line for line in budget["categories"] if line["category"] == "meals")
    assert meals == {"category": "meals", "planned": "0.00", "spent": "0.30"}
    assert budget["spent_total"] == "0.30" and budget["planned_budget"] == "0.30"
    assert budget["over_budget"] is False  # exactly on budget: 0.1 + 0.2 is not 0.30000000000000004
    for _ in range(10):
        await entry(api, ts["id"], kind="spent", category="other", amount=0.1)
    budget = await api.ok("GET", f"/v1/sessions/{ts['id']}/budget")
    assert budget["spent_total"] == "1.30" and budget["over_budget"] is True
    assert [e["amount"] for e in budget["entries"]] == ["0.10", "0.20"] + ["0.10"] * 10
    assert budget["entries"][1]["note"] == "矿泉水"


async def test_budget_summary_by_category_and_overspending(api: Api, feed: MembershipFeed) -> None:
    county, _, village = await feed.tree()
    ts = await api.schedule(await api.course(county), village, planned_budget="8600.00")
    chair = api.headers(Role.org_chair, village)
    for kind, category, amount, day in [
        ("planned", "trainer", "3600.00", "2026-03-01"),
        ("planned", "venue", "2000", "2026-03-01"),
        ("planned", "meals", 3000, "2026-03-01"),
        ("spent", "trainer", "3600.00", "2026-03-12"),
        ("spent", "meals", "2999.99", "2026-03-12"),
        ("spent", "materials", "1200.50", "2026-03-10"),
    ]:
        await entry(
            api, ts["id"], as_=chair, kind=kind, category=category, amount=amount, entry_date=day
        )
    budget = await api.ok("GET", f"/v1/sessions/{ts['id']}/budget", as_=chair)
    assert budget["session_id"] == ts["id"]
    assert budget["categories"] == [
        {"category": "trainer", "planned": "3600.00", "spent": "3600.00"},
        {"category": "venue", "planned": "2000.00", "spent": "0.00"},
        {"category": "materials", "planned": "0.00", "spent": "1200.50"},
        {"category": "meals", "planned": "3000.00", "spent": "2999.99"},
        {"category": "other", "planned": "0.00", "spent": "0.00"},
    ]
    assert (budget["planned_total"], budget["spent_total"]) == ("8600.00", "7800.49")
    assert budget["over_budget"] is False
    # Entries in date order, each with who recorded it.
    assert [e["entry_date"] for e in budget["entries"]][:3] == ["2026-03-01"] * 3
    assert budget["entries"][3]["category"] == "materials"
    assert all(e["recorded_by"] for e in budget["entries"])
    await entry(api, ts["id"], as_=chair, kind="spent", category="venue", amount="800.00")
    budget = await api.ok("GET", f"/v1/sessions/{ts['id']}/budget", as_=chair)
    assert budget["spent_total"] == "8600.49" and budget["over_budget"] is True
    detail = await api.ok("GET", f"/v1/sessions/{ts['id']}", as_=chair)
    assert detail["budget"] == {
        "planned_budget": "8600.00",
        "planned_total": "8600.00",
        "spent_total": "8600.49",
        "over_budget": True,
    }


async def test_budget_entries_are_validated(api: Api, feed: MembershipFeed) -> None:
    county, _, _ = await feed.tree()
    ts = await api.schedule(await api.course(county), county)
    url = f"/v1/sessions/{ts['id']}/budget"
    base = {"kind": "spent", "category": "venue", "amount": "100.00"}
    for change, field in [
        ({"amount": 0}, "amount"),
        ({"amount": "-5.00"}, "amount"),
        ({"amount": "0.001"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": "10000000.01"}, "amount"),
        ({"kind": "forecast"}, "kind"),
        ({"category": "travel"}, "category"),
        ({"entry_date": "2026-02-30"}, "entry_date"),
        ({"note": "x" * 501}, "note"),
    ]:
        response = await api.client.post(url, headers=api.platform, json=base | change)
        assert response.status_code == 422, (change, response.text)
        assert [d["field"] for d in response.json()["error"]["details"]] == [field]
    missing = await api.client.post("/v1/sessions/nope/budget", headers=api.platform, json=base)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "session_not_found"
    assert (
        await api.client.get("/v1/sessions/nope/budget", headers=api.platform)
    ).status_code == 404
    assert (await api.ok("GET", url))["entries"] == []


async def test_no_budget_entries_on_a_cancelled_session(api: Api, feed: MembershipFeed) -> None:
    county, _, _ = await feed.tree()
    ts = await api.schedule(await api.course(county), county)
    await entry(api, ts["id"], kind="spent", category="venue", amount="500.00")
    await api.ok("POST", f"/v1/sessions/{ts['id']}/cancel", json={"reason": "报名人数不足"})
    response = await api.client.post(
        f"/v1/sessions/{ts['id']}/budget",
        headers=api.platform,
        json={"kind": "spent", "category": "meals", "amount": "10.00"},
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "session_cancelled"
    # What was spent before the cancellation still shows.
    assert (await api.ok("GET", f"/v1/sessions/{ts['id']}/budget"))["spent_total"] == "500.00"


async def test_budget_scope_for_every_role(api: Api, feed: MembershipFeed) -> None:
    county, township, village = await feed.tree()
    other = await feed.org(None, "county_federation", "云县总工会", "530922000000")
    await feed.synced()
    ts = await api.schedule(await api.course(county), township)
    url = f"/v1/sessions/{ts['id']}/budget"
    body = {"kind": "planned", "category": "trainer", "amount": "1000.00"}
    member_no = await feed.member(village)

    async def post(as_: dict[str, str]) -> tuple[int, str | None]:
        response = await api.client.post(url, headers=as_, json=body)
        return response.status_code, response.json().get("error", {}).get("code")

    async def get(as_: dict[str, str]) -> int | str:
        response = await api.client.get(url, headers=as_)
        return 200 if response.status_code == 200 else response.json()["error"]["code"]

    assert await post(api.headers(Role.org_chair, township)) == (201, None)
    assert await post(api.headers(Role.county_admin, county)) == (201, None)
    assert await post(api.headers(Role.org_chair, village)) == (403, "out_of_scope")
    assert await post(api.headers(Role.org_chair, other)) == (403, "out_of_scope")
    for role in (Role.station_operator, Role.member, Role.gov_system):
        assert await post(api.headers(role, county, member_no=member_no)) == (403, "forbidden")

    assert await get(api.headers(Role.org_chair, township)) == 200
    assert await get(api.headers(Role.org_chair, village)) == "out_of_scope"
    assert await get(api.headers(Role.org_chair, other)) == "out_of_scope"
    assert await get(api.headers(Role.station_operator, township)) == 200
    assert await get(api.headers(Role.station_operator, village)) == "out_of_scope"
    assert await get(api.headers(Role.gov_system, county)) == 200
    assert await get(api.headers(Role.gov_system, other)) == "out_of_scope"
    # A member of a village below the host: a session it could join.
    assert await get(api.headers(Role.member, village, member_no=member_no)) == 200
    assert (await api.ok("GET", url))["planned_total"] == "2000.00"
