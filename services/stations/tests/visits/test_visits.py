"""Visits: member cards verified offline (forged, altered, expired, revoked), anonymous
visits, the services vocabulary, the local day, daily counts, and who may record them."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlalchemy import select

from gonghui_shared.contracts.membership import MemberWithdrawn
from gonghui_shared.ids import new_id
from gonghui_shared.testing.feed import MembershipFeed
from stations.base import outbox
from stations.cards import CardVerifier, InvalidMemberCard
from stations.config import StationsSettings
from stations.testing import Api, dev_card_key, open_station, sign_member_card
from stations.visits.models import Visit

_CHINA = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def world(api: Api, feed: MembershipFeed) -> dict[str, Any]:
    """A county tree with a station hosted by the township (opened through the API)."""
    county, township, village = await feed.tree()
    station = await open_station(api, township)
    return {"county": county, "township": township, "village": village, "station": station}


def visits_url(world: dict[str, Any]) -> str:
    return f"/v1/stations/{world['station']['id']}/visits"


def operator(api: Api, world: dict[str, Any]) -> dict[str, str]:
    return api.headers("station_operator", world["township"])


async def recorded_events(app: FastAPI, event_type: str) -> list[dict[str, Any]]:
    async with app.state.runtime.db.sessions() as session:
        rows = (
            await session.execute(select(outbox.c.payload).where(outbox.c.event_type == event_type))
        ).all()
    return [json.loads(row.payload) for row in rows]


async def visit_rows(app: FastAPI) -> list[Visit]:
    async with app.state.runtime.db.sessions() as session:
        return list((await session.scalars(select(Visit))).all())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def altered(token: str, **changes: Any) -> str:
    """The same card with claims changed and the original signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(_unb64(payload)) | changes
    return f"{header}.{_b64(json.dumps(claims, separators=(',', ':')).encode())}.{signature}"


# -- member cards -----------------------------------------------------------------------


async def test_forged_or_altered_member_card_is_rejected_at_a_visit(
    app: FastAPI, api: Api, feed: MembershipFeed, settings: StationsSettings, world: dict[str, Any]
) -> None:
    member_no = await feed.member(world["village"])
    other_no = await feed.member(world["village"])
    seal = dev_card_key(settings)
    cases = {
        # Signed with a key that is not the county seal.
        "forged": (sign_member_card(Ed25519PrivateKey.generate(), member_no), "bad_signature"),
        # A genuine card whose member number was changed afterwards.
        "altered": (altered(sign_member_card(seal, member_no), sub=other_no), "bad_signature"),
        # A genuine card with a longer life written into it.
        "extended": (
            altered(sign_member_card(seal, member_no, valid_days=1), exp=2_000_000_000),
            "bad_signature",
        ),
        # Genuine, issued 400 days ago for 365 days.
        "expired": (
            sign_member_card(seal, member_no, issued_at=datetime.now(UTC) - timedelta(days=400)),
            "expired",
        ),
        # A forged card that is also expired is still, first of all, forged.
        "forged_expired": (
            sign_member_card(
                Ed25519PrivateKey.generate(),
                member_no,
                issued_at=datetime.now(UTC) - timedelta(days=400),
            ),
            "bad_signature",
        ),
        "garbage": ("not-a-card", "malformed"),
        "two_parts": ("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0", "malformed"),
    }
    for name, (token, reason) in cases.items():
        response = await api.client.post(
            visits_url(world),
            json={"member_card": token, "services": ["drinking_water"]},
            headers=operator(api, world),
        )
        assert response.status_code == 422, (name, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_member_card", name
        assert error["details"] == {"field": "member_card", "reason": reason}, name

    # Nothing was recorded, nothing was published.
    assert await visit_rows(app) == []
    assert await recorded_events(app, "stations.visit.recorded") == []


async def test_a_genuine_card_records_the_member_and_category_from_the_replica(
    app: FastAPI, api: Api, feed: MembershipFeed, settings: StationsSettings, world: dict[str, Any]
) -> None:
    # The replica knows a courier (new employment form); the card claims otherwise.
    member_no = await feed.member(
        world["village"], category="new_employment", subtype="courier", name="王小明"
    )
    card = sign_member_card(dev_card_key(settings), member_no, category="migrant_worker")
    visit = await api.ok(
        "POST",
        visits_url(world),
        as_=operator(api, world),
        json={"member_card": card, "services": ["drinking_water", "phone_charging"], "rating": 5},
        expect=201,
    )
    assert visit["member_no"] == member_no
    assert visit["worker_category"] == "new_employment"
    assert visit["services"] == ["drinking_water", "phone_charging"]

    (event,) = await recorded_events(app, "stations.visit.recorded")
    assert event["data"]["member_no"] == member_no
    assert event["data"]["worker_category"] == "new_employment"
    assert event["data"]["station_id"] == world["station"]["id"]
    assert event["data"]["host_org_id"] == world["township"]["id"]
    # The card carries the holder's name; the event never does.
    assert "王小明" not in json.dumps(event, ensure_ascii=False)
    assert "name" not in event["data"]


async def test_a_card_of_a_member_not_yet_in_the_replica_counts_with_the_cards_category(
    api: Api, settings: StationsSettings, world: dict[str, Any]
) -> None:
    member_no = "5309212026999999"  # membership has not announced this one yet
    card = sign_member_card(dev_card_key(settings), member_no, category="employee")
    visit = await api.ok(
        "POST",
        visits_url(world),
        as_=operator(api, world),
        json={"member_card": card, "services": ["rest"]},
        expect=201,
    )
    assert (visit["member_no"], visit["worker_category"]) == (member_no, "employee")


async def test_a_card_of_a_member_who_withdrew_is_revoked(
    app: FastAPI, api: Api, feed: MembershipFeed, settings: StationsSettings, world: dict[str, Any]
) -> None:
    member_no = await feed.member(world["village"])
    card = sign_member_card(dev_card_key(settings), member_no)
    member_id = new_id()
    await feed.publish(
        MemberWithdrawn(
            member_id=member_id,
            member_no=member_no,
            org_id=world["village"]["id"],
            category="migrant_worker",
            reason="本人申请退会",
        ),
        aggregate_id=member_id,
        org_path=world["village"]["path"],
    )
    await feed.synced()
    response = await api.client.post(
        visits_url(world),
        json={"member_card": card, "services": ["rest"]},
        headers=operator(api, world),
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "member_card_revoked"
    assert error["details"] == {"field": "member_card", "status": "withdrawn"}
    assert await visit_rows(app) == []


def test_verifier_reads_the_facts_of_a_card(settings: StationsSettings) -> None:
    seal = dev_card_key(settings)
    verifier = CardVerifier(seal.public_key())
    facts = verifier.verify(sign_member_card(seal, "5309212026000042", category="employee"))
    assert (facts.member_no, facts.county, facts.category) == (
        "5309212026000042",
        "530921",
        "employee",
    )
    assert facts.expires_at > datetime.now(UTC) + timedelta(days=364)
    now = int(datetime.now(UTC).timestamp())
    claims = {"iss": "gonghui-membership", "sub": "5309212026000042", "iat": now, "exp": now + 60}
    rejected = {
        # Signed by the seal, but an access token, not a member card.
        jwt.encode({**claims, "iss": "gonghui"}, seal, algorithm="EdDSA"): "malformed",
        # Signed by the seal, but no expiry: not a card membership issues.
        jwt.encode({k: v for k, v in claims.items() if k != "exp"}, seal, "EdDSA"): "malformed",
        # Another algorithm, keyed with something public: never trusted.
        jwt.encode(claims, "s" * 32, algorithm="HS256"): "bad_signature",
        jwt.encode(claims, "", algorithm="none"): "bad_signature",
    }
    for token, reason in rejected.items():
        with pytest.raises(InvalidMemberCard) as caught:
            verifier.verify(token)
        assert caught.value.details == {"field": "member_card", "reason": reason}, token


# -- anonymous visits, vocabulary, time ---------------------------------------------------


async def test_anonymous_visit_with_services_by_code_or_chinese_label(
    app: FastAPI, api: Api, world: dict[str, Any]
) -> None:
    visit = await api.ok(
        "POST",
        visits_url(world),
        as_=operator(api, world),
        json={
            "services": ["喝水", "phone_charging", "热饭", "drinking_water"],
            "rating": 4,
            "comment": "  师傅很热情  ",
        },
        expect=201,
    )
    assert visit["member_no"] is None and visit["worker_category"] is None
    # Labels become codes; a repeated service counts once.
    assert visit["services"] == ["drinking_water", "phone_charging", "heating_food"]
    assert visit["comment"] == "师傅很热情"
    assert visit["rating"] == 4
    (event,) = await recorded_events(app, "stations.visit.recorded")
    assert event["data"]["member_no"] is None
    assert event["data"]["services"] == ["drinking_water", "phone_charging", "heating_food"]


async def test_a_retry_with_the_same_idempotency_key_returns_the_first_visit(
    app: FastAPI, api: Api, world: dict[str, Any]
) -> None:
    """The answer to a visit can be lost after it was committed (the service restarted;
    the gateway answered 502); the device retries with the same key, forwarded by the
    gateway, and the person is counted once."""
    headers = operator(api, world) | {"Idempotency-Key": "pad-7-visit-0042"}
    body = {"services": ["drinking_water"]}
    first = await api.ok("POST", visits_url(world), as_=headers, json=body, expect=201)
    again = await api.ok("POST", visits_url(world), as_=headers, json=body, expect=201)
    assert again["id"] == first["id"]
    other_key = operator(api, world) | {"Idempotency-Key": "pad-7-visit-0043"}
    second = await api.ok("POST", visits_url(world), as_=other_key, json=body, expect=201)
    unkeyed = await api.ok(
        "POST", visits_url(world), as_=operator(api, world), json=body, expect=201
    )
    assert len({first["id"], second["id"], unkeyed["id"]}) == 3
    assert len(await visit_rows(app)) == 3
    assert len(await recorded_events(app, "stations.visit.recorded")) == 3
    # The key is the recorder's own: another operator's same key is another visit.
    colleague = api.headers("station_operator", world["township"], subject="operator-2")
    theirs = await api.ok(
        "POST",
        visits_url(world),
        as_=colleague | {"Idempotency-Key": "pad-7-visit-0042"},
        json=body,
        expect=201,
    )
    assert theirs["id"] != first["id"]
    # The same key for another station names another request: refused, nothing recorded.
    elsewhere = await open_station(api, world["township"])
    reused = await api.client.post(
        f"/v1/stations/{elsewhere['id']}/visits", headers=headers, json=body
    )
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert len(await visit_rows(app)) == 4


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"services": []}, "services"),
        ({}, "services"),
        ({"services": ["massage"]}, "services.0"),
        ({"services": ["rest"], "rating": 0}, "rating"),
        ({"services": ["rest"], "rating": 6}, "rating"),
        ({"services": ["rest"], "comment": "好" * 501}, "comment"),
        ({"services": ["rest"], "visited_at": "2026-11-20T08:00:00"}, "visited_at"),
        ({"services": ["rest"], "member_card": ""}, "member_card"),
    ],
)
async def test_invalid_visits_name_the_field(
    api: Api, world: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    response = await api.client.post(visits_url(world), json=body, headers=operator(api, world))
    assert response.status_code == 422, response.text
    assert field in {d["field"] for d in response.json()["error"]["details"]}


async def test_every_service_of_the_vocabulary_is_accepted(api: Api, world: dict[str, Any]) -> None:
    codes = [
        "drinking_water",
        "phone_charging",
        "rest",
        "heating_food",
        "breakfast",
        "first_aid",
        "toilet",
        "legal_consult",
        "counselling",
        "reading",
        "other",
    ]
    labels = ["喝水", "充电", "休息", "热饭", "爱心早餐", "应急药品", "如厕", "法律咨询"]
    labels += ["心理咨询", "阅读", "其他"]
    for given in (codes, labels):
        visit = await api.ok(
            "POST",
            visits_url(world),
            as_=operator(api, world),
            json={"services": given},
            expect=201,
        )
        assert visit["services"] == codes


async def test_visit_time_is_at_most_a_week_old_and_never_in_the_future(
    api: Api, world: dict[str, Any]
) -> None:
    now = datetime.now(UTC)
    far_east = timezone(timedelta(hours=14))
    for when in (
        now + timedelta(hours=1),
        now - timedelta(days=8),
        # No UTC time exists for these: refused, never a 500.
        datetime(1, 1, 1, tzinfo=far_east),
        datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-14))),
    ):
        response = await api.client.post(
            visits_url(world),
            json={"services": ["rest"], "visited_at": when.isoformat()},
            headers=operator(api, world),
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (error["code"], error["details"]["field"]) == (
            "visited_at_out_of_range",
            "visited_at",
        )
    visit = await api.ok(
        "POST",
        visits_url(world),
        as_=operator(api, world),
        json={"services": ["rest"], "visited_at": (now - timedelta(days=6)).isoformat()},
        expect=201,
    )
    assert visit["day"] == (now - timedelta(days=6)).astimezone(_CHINA).date().isoformat()


async def test_the_day_is_the_local_date_at_the_station(api: Api, world: dict[str, Any]) -> None:
    # 17:30 UTC two days ago is 01:30 the next morning in China.
    utc_day = (datetime.now(UTC) - timedelta(days=2)).date()
    late = datetime(utc_day.year, utc_day.month, utc_day.day, 17, 30, tzinfo=UTC)
    visit = await api.ok(
        "POST",
        visits_url(world),
        as_=operator(api, world),
        json={"services": ["rest"], "visited_at": late.isoformat()},
        expect=201,
    )
    assert visit["day"] == (utc_day + timedelta(days=1)).isoformat()
    # A station in another time zone counts by its own calendar.
    kashgar = await open_station(
        api, world["township"], name="喀什驿站", timezone="Asia/Kashgar"
    )  # UTC+6
    early = datetime(utc_day.year, utc_day.month, utc_day.day, 17, 30, tzinfo=UTC)
    visit = await api.ok(
        "POST",
        f"/v1/stations/{kashgar['id']}/visits",
        as_=operator(api, world),
        json={"services": ["rest"], "visited_at": early.isoformat()},
        expect=201,
    )
    assert visit["day"] == (utc_day).isoformat()  # 23:30 there, still the same day


# -- stations that take no visits -----------------------------------------------------------


async def test_visits_only_at_an_active_station(
    app: FastAPI, api: Api, world: dict[str, Any]
) -> None:
    for status in ("suspended", "closed"):
        station = await open_station(api, world["township"], status=status)
        response = await api.client.post(
            f"/v1/stations/{station['id']}/visits",
            json={"services": ["rest"]},
            headers=operator(api, world),
        )
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "station_not_active"
    response = await api.client.post(
        f"/v1/stations/{new_id()}/visits", json={"services": ["rest"]}, headers=operator(api, world)
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "station_not_found"
    assert await visit_rows(app) == []


# -- daily counts ---------------------------------------------------------------------------


async def test_daily_counts_per_service_with_members_and_ratings(
    api: Api, feed: MembershipFeed, settings: StationsSettings, world: dict[str, Any]
) -> None:
    """60 breakfasts handed out one morning (爱心早餐), as in the seed report."""
    now_local = datetime.now(_CHINA)
    yesterday = (now_local - timedelta(days=1)).date()
    morning = datetime(yesterday.year, yesterday.month, yesterday.day, 6, 30, tzinfo=_CHINA)
    seal = dev_card_key(settings)
    member_nos = [await feed.member(world["village"]) for _ in range(3)]
    op = operator(api, world)
    for i in range(60):
        body: dict[str, Any] = {
            "services": ["breakfast", "drinking_water"] if i % 4 == 0 else ["breakfast"],
            "visited_at": (morning + timedelta(minutes=i)).isoformat(),
        }
        if i < 24:  # 24 workers showed a member card (each of the 3 members, 8 times)
            body["member_card"] = sign_member_card(seal, member_nos[i % 3])
        if i < 7:
            body["rating"] = 5 if i < 5 else 4  # 5,5,5,5,5,4,4 -> 4.71
        await api.ok("POST", visits_url(world), as_=op, json=body, expect=201)
    await api.ok(
        "POST", visits_url(world), as_=op, json={"services": ["rest"], "rating": 3}, expect=201
    )

    first = yesterday - timedelta(days=2)
    daily = await api.ok(
        "GET",
        f"{visits_url(world)}/daily",
        as_=op,
        params={"from": first.isoformat(), "to": now_local.date().isoformat()},
    )
    assert daily["from"] == first.isoformat() and len(daily["days"]) == 4
    by_day = {d["day"]: d for d in daily["days"]}
    assert by_day[first.isoformat()] == {
        "day": first.isoformat(),
        "visits": 0,
        "member_visits": 0,
        "anonymous_visits": 0,
        "services": {},
        "ratings": 0,
        "average_rating": None,
    }
    morning_counts = by_day[yesterday.isoformat()]
    assert morning_counts["visits"] == 60
    assert morning_counts["member_visits"] == 24
    assert morning_counts["anonymous_visits"] == 36
    assert morning_counts["services"] == {"drinking_water": 15, "breakfast": 60}
    assert (morning_counts["ratings"], morning_counts["average_rating"]) == (7, 4.71)
    today = by_day[now_local.date().isoformat()]
    assert (today["visits"], today["services"], today["average_rating"]) == (1, {"rest": 1}, 3.0)
    total = daily["total"]
    assert (total["visits"], total["member_visits"], total["anonymous_visits"]) == (61, 24, 37)
    assert total["services"] == {"drinking_water": 15, "rest": 1, "breakfast": 60}
    assert (total["ratings"], total["average_rating"]) == (8, 4.5)  # (25 + 8 + 3) / 8

    # The visit list shows member numbers and comments, page by page.
    page = await api.ok("GET", visits_url(world), as_=op, params={"limit": 50})
    assert len(page["items"]) == 50 and page["next_cursor"]
    rest = await api.ok(
        "GET", visits_url(world), as_=op, params={"limit": 50, "cursor": page["next_cursor"]}
    )
    assert len(rest["items"]) == 11 and rest["next_cursor"] is None
    shown = {v["member_no"] for v in page["items"] + rest["items"]}
    assert shown == {*member_nos, None}
    mine = await api.ok(
        "GET", visits_url(world), as_=op, params={"member_no": member_nos[0], "limit": 100}
    )
    assert len(mine["items"]) == 8


async def test_daily_range_is_checked(api: Api, world: dict[str, Any]) -> None:
    url = f"{visits_url(world)}/daily"
    op = operator(api, world)
    default = await api.ok("GET", url, as_=op)
    assert len(default["days"]) == 30
    for params in (
        {"from": "2026-11-10", "to": "2026-11-01"},
        {"from": "2025-01-01", "to": "2026-11-01"},
        {"from": "9999-12-31"},  # its default `to` is past the last date there is
        {"to": "0001-01-02"},
    ):
        response = await api.client.get(url, params=params, headers=op)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_date_range"
    response = await api.client.get(url, params={"from": "yesterday"}, headers=op)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "from"


# -- scope ----------------------------------------------------------------------------------


async def test_who_may_record_and_read_visits(
    api: Api, feed: MembershipFeed, world: dict[str, Any]
) -> None:
    other_township = await feed.org(world["county"], "township_union", "营盘镇工会", "530921102000")
    await feed.synced()
    member_no = await feed.member(world["village"])
    url, body = visits_url(world), {"services": ["rest"]}
    refusals = {
        # A station operator of another township's org: the role may, the scope may not.
        "out_of_scope": [
            api.headers("station_operator", other_township),
            api.headers("org_chair", other_township),
            api.headers("station_operator", world["village"]),  # below the host org
        ],
        "forbidden": [
            api.headers("member", world["village"], member_no=member_no),
            api.headers("gov_system", world["county"]),
        ],
    }
    for code, principals in refusals.items():
        for headers in principals:
            response = await api.client.post(url, json=body, headers=headers)
            assert response.status_code == 403, response.text
            assert response.json()["error"]["code"] == code
            response = await api.client.get(url, headers=headers)
            assert response.status_code == 403, response.text
    # Staff who run or oversee the station record visits there.
    for role, org in (
        ("station_operator", world["township"]),
        ("org_chair", world["township"]),
        ("county_admin", world["county"]),
        ("platform_admin", None),
    ):
        await api.ok("POST", url, as_=api.headers(role, org), json=body, expect=201)
    # Counts per day are figures, not people: a government system in scope reads them too.
    daily = await api.ok("GET", f"{url}/daily", as_=api.headers("gov_system", world["county"]))
    assert daily["total"]["visits"] == 4
    response = await api.client.get(
        f"{url}/daily", headers=api.headers("member", world["village"], member_no=member_no)
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    # No token, no visit.
    response = await api.client.post(url, json=body)
    assert response.status_code == 401
