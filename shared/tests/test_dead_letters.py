"""Dead letters: a poison event is set aside without holding up the others, then replayed.

Real NATS, both databases, the endpoints every consuming service gets from
`create_service_app` (here on the probe service of `gonghui_shared.testing.probe`).
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from gonghui_shared import metrics
from gonghui_shared.bus import Bus
from gonghui_shared.bus.connection import dead_letter_subject, stream_name
from gonghui_shared.contracts import EventEnvelope
from gonghui_shared.db import Database
from gonghui_shared.permissions import Role
from gonghui_shared.runtime import FULL_COLLECTION_EVERY
from gonghui_shared.testing import auth_header, token_for
from gonghui_shared.testing.busdb import metadata
from gonghui_shared.testing.probe import (
    ProbeSettings,
    Tally,
    applied_ids,
    probe_app,
    publish,
    subscription,
    thing_envelope,
    wait_until,
)

dead_letters = metadata.tables["dead_letters"]


@pytest.fixture
def settings(db: Database, nats_url: str, subject_root: str, data_dir: Path) -> ProbeSettings:
    return ProbeSettings(
        database_url=db.url,
        nats_url=nats_url,
        subject_root=subject_root,
        data_dir=data_dir,
        environment="test",
    )


@pytest.fixture
async def client_for() -> AsyncIterator[Any]:
    clients: list[httpx.AsyncClient] = []

    def make(app: FastAPI) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def as_role(settings: ProbeSettings, role: Role, path: str | None = None) -> dict[str, str]:
    org_id = path.strip("/").split("/")[-1] if path else None
    return auth_header(token_for(settings, role, org_id=org_id, org_path=path))


async def dead_letter_count(db: Database) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(dead_letters)) or 0)


def eid(envelope: EventEnvelope) -> str:
    return str(envelope.event_id)


def counted(durable: str, reason: str) -> float:
    return metrics.DEAD_LETTERS.labels(durable, reason)._value.get()


def unreplayed(durable: str) -> float:
    return metrics.DEAD_LETTERS_UNREPLAYED.labels(durable)._value.get()


async def test_a_running_service_keeps_its_start_up_objects_from_the_collector(
    settings: ProbeSettings,
) -> None:
    """gc.freeze after start-up: full collections walk only what requests made, and come
    a tenth as often (the gateway's p99 was their pauses); shutdown gives the objects
    back and the collector its thresholds."""
    frozen_before, thresholds = gc.get_freeze_count(), gc.get_threshold()
    async with probe_app(settings):
        assert gc.get_freeze_count() > frozen_before
        assert gc.get_threshold() == (*thresholds[:2], FULL_COLLECTION_EVERY)
        assert 10 * thresholds[2] <= FULL_COLLECTION_EVERY
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == thresholds


async def test_poison_event_is_set_aside_and_replayed_once_fixed(
    db: Database, bus: Bus, settings: ProbeSettings, client_for: Any
) -> None:
    handler = Tally(failing={"poison"})
    # A slow back-off: the poison is still being retried while the others are applied.
    sub = subscription(
        handler,
        max_deliver=3,
        backoff_seconds=[0.8],
        early_retry_seconds=0.3,
        early_give_up_seconds=3.0,  # the second waits for the first, which never comes
    )
    first = thing_envelope("poison", seq=1, org_path="/c1/v1/")
    second = thing_envelope("poison", seq=2, org_path="/c1/v1/")  # waits for the first
    other = thing_envelope("other", seq=1, org_path="/c1/v1/")
    elsewhere = thing_envelope("elsewhere", seq=1, org_path="/c2/v9/")
    for envelope in (first, second, other, elsewhere):
        await publish(bus, envelope)
    everything = [eid(e) for e in (first, second, other, elsewhere)]

    async with probe_app(settings, [sub]) as app:
        client = client_for(app)
        platform = as_role(settings, Role.platform_admin)

        async def others_applied() -> bool:
            return set(await applied_ids(db)) == {eid(other), eid(elsewhere)}

        await wait_until(others_applied, what="the other aggregates applied")
        assert await dead_letter_count(db) == 0, "the poison did not hold the others back"

        async def both_dead() -> bool:
            # The row is committed before the message is settled and counted: wait for both.
            return await dead_letter_count(db) == 2 and unreplayed(sub.durable) == 2

        await wait_until(both_dead, what="two dead letters, stored and counted")
        assert counted(sub.durable, "failed") == 1
        assert counted(sub.durable, "out_of_order") == 1

        listed = (await client.get("/v1/dead-letters", headers=platform)).json()["items"]
        by_event = {row["event_id"]: row for row in listed}
        poison = by_event[eid(first)]
        assert poison["consumer"] == sub.durable
        assert poison["attempts"] == 3
        assert "RuntimeError: cannot apply poison" in poison["error"]
        assert poison["first_failed_at"] < poison["last_failed_at"]
        assert poison["aggregate_seq"] == 1 and poison["replayed_at"] is None
        assert poison["subject"] == first.subject(bus.root)
        assert poison["payload"] == first.model_dump_json()
        assert "out of order: aggregate poison is at 0" in by_event[eid(second)]["error"]

        # A copy went to the dead letter subject, for operators' tools.
        copy = await bus.js.get_last_msg(
            stream_name(bus.root, "deadletter"), dead_letter_subject(bus.root, sub.durable)
        )
        assert copy.headers and copy.headers["Gonghui-Consumer"] == sub.durable

        # Scope: a county admin sees its county's, an org chair none at all.
        county1 = as_role(settings, Role.county_admin, "/c1/")
        county2 = as_role(settings, Role.county_admin, "/c2/")
        assert len((await client.get("/v1/dead-letters", headers=county1)).json()["items"]) == 2
        assert (await client.get("/v1/dead-letters", headers=county2)).json()["items"] == []
        chair = as_role(settings, Role.org_chair, "/c1/v1/")
        assert (await client.get("/v1/dead-letters", headers=chair)).status_code == 403

        def replay(event: Any, headers: dict[str, str] = platform, **params: Any) -> Any:
            row_id = by_event[eid(event)]["id"]
            return client.post(f"/v1/dead-letters/{row_id}/replay", headers=headers, params=params)

        response = await replay(first, county2)
        assert response.status_code == 403, response.text
        response = await replay(second)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "replay_out_of_order"
        response = await replay(first)  # still broken
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "replay_failed"
        assert response.json()["error"]["details"]["error"] == "RuntimeError: cannot apply poison"

        handler.failing.clear()  # the fix is deployed
        response = await replay(first, county1)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["outcome"] == "applied"
        assert body["dead_letter"]["replayed_by"] == "test-user"
        assert body["dead_letter"]["attempts"] == 4  # three deliveries and the failed replay
        assert (await replay(first)).json()["outcome"] == "already_applied"
        assert (await replay(second)).json()["outcome"] == "applied"

        applied = await applied_ids(db)
        assert sorted(applied) == sorted(everything), "every event applied exactly once"
        assert applied.index(eid(first)) < applied.index(eid(second))
        assert unreplayed(sub.durable) == 0
        waiting = await client.get("/v1/dead-letters?replayed=false", headers=platform)
        assert waiting.json()["items"] == []


async def test_unreadable_message_is_dead_lettered_at_once(
    db: Database, bus: Bus, settings: ProbeSettings, client_for: Any
) -> None:
    handler = Tally()
    sub = subscription(handler, max_deliver=5, backoff_seconds=[0.05])
    message_id = f"m-{uuid.uuid4().hex[:8]}"  # unique: the stream's duplicate window
    await bus.js.publish(
        f"{bus.root}.testsvc.thing.happened.v1",
        b"{not json\x00",
        headers={"Nats-Msg-Id": message_id},
    )
    fine = thing_envelope("fine")
    await publish(bus, fine)
    async with probe_app(settings, [sub]) as app:
        client = client_for(app)

        async def settled() -> bool:
            stored = await dead_letter_count(db) == 1 and len(await applied_ids(db)) == 1
            return stored and counted(sub.durable, "unreadable") == 1

        await wait_until(settled, what="the unreadable message set aside, the next applied")
        platform = as_role(settings, Role.platform_admin)
        [row] = (await client.get("/v1/dead-letters", headers=platform)).json()["items"]
        assert row["attempts"] == 1, "no retry: parsing again cannot help"
        assert row["event_id"] == message_id and row["event_type"] is None
        # PostgreSQL text holds no NUL: it is stored as U+FFFD, the message is not lost.
        assert row["payload"] == "{not json\ufffd" and row["headers"] == {"Nats-Msg-Id": message_id}
        assert counted(sub.durable, "unreadable") == 1

        # It belongs to no org: the platform's alone.
        county = as_role(settings, Role.county_admin, "/c1/")
        assert (await client.get("/v1/dead-letters", headers=county)).json()["items"] == []
        response = await client.post(f"/v1/dead-letters/{row['id']}/replay", headers=county)
        assert response.status_code == 403
        response = await client.post(f"/v1/dead-letters/{row['id']}/replay", headers=platform)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "replay_failed"
        missing = await client.post("/v1/dead-letters/nope/replay", headers=platform)
        assert missing.json()["error"]["code"] == "dead_letter_not_found"
    assert handler.calls == 1


async def test_replay_of_an_event_applied_meanwhile_applies_nothing(
    db: Database, bus: Bus, settings: ProbeSettings, client_for: Any
) -> None:
    handler = Tally(failing={"late"})
    sub = subscription(handler, max_deliver=2, backoff_seconds=[0.05])
    late = thing_envelope("late", org_path="/c1/")
    await publish(bus, late)
    async with probe_app(settings, [sub]) as app:
        client = client_for(app)

        async def dead() -> bool:
            return await dead_letter_count(db) == 1

        await wait_until(dead)
        handler.failing.clear()
        await publish(bus, late)  # the producer sent it again, and this time it applies

        async def applied() -> bool:
            return await applied_ids(db) == [str(late.event_id)]

        await wait_until(applied)
        platform = as_role(settings, Role.platform_admin)
        [row] = (await client.get("/v1/dead-letters", headers=platform)).json()["items"]
        response = await client.post(f"/v1/dead-letters/{row['id']}/replay", headers=platform)
        assert response.json()["outcome"] == "already_applied"
        assert response.json()["dead_letter"]["replayed_at"] is not None
    assert await applied_ids(db) == [str(late.event_id)]
