"""Races: duplicate enrolments, a full session, and the waitlist under concurrent cancellations."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from gonghui_shared.testing.feed import MembershipFeed
from training.base import outbox
from training.enrolments import repository
from training.testing import Api, non_member, open_session


def enrolments_url(ts: dict[str, Any]) -> str:
    return f"/v1/sessions/{ts['id']}/enrolments"


async def statuses(api: Api, ts: dict[str, Any]) -> dict[str, str]:
    listed = await api.ok("GET", enrolments_url(ts))
    return {e["id"]: e["status"] for e in listed["items"]}


async def test_concurrent_duplicate_enrolments_make_one(api: Api, feed: MembershipFeed) -> None:
    county, _, village = await feed.tree()
    ts = await open_session(api, county)
    member_no = await feed.member(village)
    body = non_member()
    for payload in ({"member_no": member_no}, body):
        responses = await asyncio.gather(
            *(
                api.client.post(enrolments_url(ts), headers=api.platform, json=payload)
                for _ in range(2)
            )
        )
        codes = sorted(r.status_code for r in responses)
        assert codes == [201, 409], [r.text for r in responses]
        conflict = next(r for r in responses if r.status_code == 409)
        assert conflict.json()["error"]["code"] == "already_enrolled"
    assert sorted((await statuses(api, ts)).values()) == ["enrolled", "enrolled"]


async def _nobody(*_: Any) -> None:
    return None


async def test_duplicate_caught_by_the_unique_constraint_is_a_409(
    api: Api, feed: MembershipFeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As if a concurrent request inserted the same person between our check and our insert."""
    county, _, village = await feed.tree()
    ts = await open_session(api, county)
    member_no = await feed.member(village)
    await api.ok("POST", enrolments_url(ts), expect=201, json={"member_no": member_no})
    monkeypatch.setattr(repository, "of_person", _nobody)
    again = await api.client.post(
        enrolments_url(ts), headers=api.platform, json={"member_no": member_no}
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_enrolled"
    assert len(await statuses(api, ts)) == 1


async def test_concurrent_enrolments_never_overfill(api: Api, feed: MembershipFeed) -> None:
    county, _, village = await feed.tree()
    ts = await open_session(api, county, capacity=5)
    members = [await feed.member(village, sync=False) for _ in range(12)]
    await feed.synced()
    responses = await asyncio.gather(
        *(
            api.client.post(enrolments_url(ts), headers=api.platform, json={"member_no": m})
            for m in members
        )
    )
    assert [r.status_code for r in responses] == [201] * 12, [r.text for r in responses]
    counted = sorted((await statuses(api, ts)).values())
    assert counted == ["enrolled"] * 5 + ["waitlisted"] * 7


async def test_waitlist_promotion_under_concurrent_cancellations(
    api: Api, app: FastAPI, feed: MembershipFeed
) -> None:
    county, _, village = await feed.tree()
    ts = await open_session(api, county, capacity=5)
    members = [await feed.member(village, sync=False) for _ in range(10)]
    await feed.synced()
    # One at a time, so the waitlist order is known: waiting[0] waits longest.
    made = [
        await api.ok("POST", enrolments_url(ts), expect=201, json={"member_no": m}) for m in members
    ]
    enrolled, waiting = made[:5], made[5:]
    assert {e["status"] for e in enrolled} == {"enrolled"}
    assert {e["status"] for e in waiting} == {"waitlisted"}

    cancelled = enrolled[:3]
    responses = await asyncio.gather(
        *(
            api.client.post(f"/v1/enrolments/{e['id']}/cancel", headers=api.platform)
            for e in cancelled
        )
    )
    assert [r.status_code for r in responses] == [200] * 3, [r.text for r in responses]
    promoted = [r.json()["promoted"]["id"] for r in responses]
    assert sorted(promoted) == sorted(e["id"] for e in waiting[:3]), "the 3 earliest, once each"

    now = await statuses(api, ts)
    assert sorted(now.values()) == ["cancelled"] * 3 + ["enrolled"] * 5 + ["waitlisted"] * 2
    assert {i for i, s in now.items() if s == "waitlisted"} == {e["id"] for e in waiting[3:]}
    assert {i for i, s in now.items() if s == "cancelled"} == {e["id"] for e in cancelled}

    async with app.state.runtime.db.sessions() as session:
        payloads = (
            await session.scalars(
                select(outbox.c.payload).where(
                    outbox.c.event_type == "training.enrolment.cancelled"
                )
            )
        ).all()
    data = [json.loads(p)["data"] for p in payloads]
    assert sorted(d["enrolment_id"] for d in data) == sorted(e["id"] for e in cancelled)
    assert sorted(d["promoted_enrolment_id"] for d in data) == sorted(promoted)


async def test_the_same_enrolment_cancelled_twice_at_once_promotes_once(
    api: Api, feed: MembershipFeed
) -> None:
    county, _, village = await feed.tree()
    ts = await open_session(api, county, capacity=1)
    first, second, third = [
        await api.ok(
            "POST", enrolments_url(ts), expect=201, json={"member_no": await feed.member(village)}
        )
        for _ in range(3)
    ]
    responses = await asyncio.gather(
        *(
            api.client.post(f"/v1/enrolments/{first['id']}/cancel", headers=api.platform)
            for _ in range(2)
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    ok = next(r for r in responses if r.status_code == 200).json()
    assert ok["promoted"]["id"] == second["id"]
    assert await statuses(api, ts) == {
        first["id"]: "cancelled",
        second["id"]: "enrolled",
        third["id"]: "waitlisted",
    }
