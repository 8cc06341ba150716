"""The three dashboard consumers applying fetched batches whole, all at once on one database:
no batch goes back (a deadlock would send it back, one message at a time), every event
counts once however often it is delivered, and the figures kept are those a recompute
from the entities derives."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from nats.js.errors import NotFoundError
from sqlalchemy import func, select

from gateway.base import inbox
from gateway.dashboards import repository
from gateway.dashboards.handlers import DURABLE, member_counts, subscriptions
from gateway.dashboards.models import (
    DashCounter,
    DashMember,
    DashMemberMove,
    DashSource,
    DashSubtreeCounter,
    DashVillageCover,
)
from gateway.dashboards.testing import EventFeed, Scenario, offset
from gonghui_shared.bus import Bus, EventConsumer, stream_name
from gonghui_shared.contracts import EventEnvelope, envelope_for
from gonghui_shared.contracts import membership as m
from gonghui_shared.contracts import stations as s
from gonghui_shared.contracts import training as t
from gonghui_shared.ids import new_id

MEMBERS, ATTENDANCE, STATIONS = 400, 400, 60


def busy_province(scenario: Scenario) -> list[EventEnvelope]:
    """The scenario's events, and many more on its orgs: members approved and moved,
    attendance, stations opened and moved near its villages."""
    rnd = random.Random(8)
    orgs = scenario.orgs
    places = [o for o in orgs.values() if o.org_type == "village_union" and o.place]
    hosts = [o for o in orgs.values() if o.key != "X"]
    start = datetime(2026, 1, 5, tzinfo=UTC)
    envelopes = [
        envelope_for(event, aggregate_id=aggregate, org_path=path, occurred_at=when)
        for when, event, aggregate, path in scenario.events()
    ]
    for n in range(MEMBERS):
        org, member_id = rnd.choice(hosts), new_id()
        approved = start + timedelta(days=rnd.randrange(150), hours=n % 24)
        member_no = f"53092120269{n:05d}"
        envelopes.append(
            envelope_for(
                m.MemberApproved(
                    member_id=member_id,
                    member_no=member_no,
                    application_id=new_id(),
                    org_id=org.id,
                    name="会员",
                    category=rnd.choice(["migrant_worker", "staff", "farmer"]),
                    household_type="rural",
                    gender="f",
                    birth_year=1990,
                    approval_doc_no="凤工复〔2026〕1号",
                    approved_at=approved,
                ),
                aggregate_id=member_id,
                aggregate_seq=1,
                org_path=org.path,
                occurred_at=approved,
            )
        )
        if n % 5 == 0:
            to = rnd.choice(hosts)
            envelopes.append(
                envelope_for(
                    m.MemberTransferred(
                        member_id=member_id,
                        member_no=member_no,
                        transfer_id=new_id(),
                        from_org_id=org.id,
                        to_org_id=to.id,
                        from_org_path=org.path,
                        category="migrant_worker",
                    ),
                    aggregate_id=member_id,
                    aggregate_seq=2,
                    org_path=to.path,
                    occurred_at=approved + timedelta(days=40),
                )
            )
    for n in range(ATTENDANCE):
        org = rnd.choice(hosts)
        envelopes.append(
            envelope_for(
                t.Attended(
                    attendance_id=new_id(),
                    session_id=new_id(),
                    enrolment_id=new_id(),
                    host_org_id=org.id,
                    course_category="skills",
                    person_key=f"p:{n % 97}",
                    worker_category=rnd.choice(["migrant_worker", "staff"]),
                    day=date(2026, 1, 1) + timedelta(days=rnd.randrange(180)),
                    method="qr",
                ),
                aggregate_id=new_id(),
                org_path=org.path,
            )
        )
    for n in range(STATIONS):
        village, station_id = rnd.choice(places), new_id()
        assert village.place is not None
        for seq, metres in enumerate((rnd.randrange(200, 4000), rnd.randrange(200, 4000)), 1):
            lon, lat = offset(village.place, east_m=metres, north_m=-metres / 2)
            event: Any = (
                s.StationOpened(
                    station_id=station_id,
                    station_type="worker_home",
                    name=f"驿站{n}",
                    host_org_id=village.id,
                    lon=lon,
                    lat=lat,
                    amenities=[],
                )
                if seq == 1
                else s.StationUpdated(
                    station_id=station_id,
                    host_org_id=village.id,
                    changed=["lon", "lat"],
                    lon=lon,
                    lat=lat,
                    amenities=[],
                )
            )
            envelopes.append(
                envelope_for(
                    event,
                    aggregate_id=station_id,
                    org_path=village.path,
                    occurred_at=start + timedelta(days=n, hours=seq),
                )
            )
    return envelopes


async def drain(app: FastAPI, bus: Bus) -> None:
    """Start the three consumers together on `bus`'s streams; wait until each has settled
    every message (bounded, no timing asserted)."""
    consumers = [EventConsumer(app.state.runtime.db, bus, inbox, sub) for sub in subscriptions()]
    for consumer in consumers:
        consumer.start()
    try:
        deadline = time.monotonic() + 120
        for source, durable in DURABLE.items():
            while True:
                try:
                    info = await bus.js.consumer_info(stream_name(bus.root, source), durable)
                except NotFoundError:  # not subscribed yet
                    info = None
                if info is not None and info.num_pending == 0 and info.num_ack_pending == 0:
                    break
                assert time.monotonic() < deadline, f"{durable} did not drain"
                await asyncio.sleep(0.1)
    finally:
        for consumer in consumers:
            await consumer.stop()


async def recomputed_members(app: FastAPI) -> dict[Any, int]:
    """The member counters, from the members and their moves alone."""
    async with app.state.runtime.db.sessions() as session:
        moves: dict[str, list[DashMemberMove]] = defaultdict(list)
        for move in await session.scalars(select(DashMemberMove)):
            moves[move.member_no].append(move)
        deltas: dict[Any, int] = defaultdict(int)
        for member in await session.scalars(select(DashMember)):
            for key, value in member_counts(member, moves[member.member_no]).items():
                deltas[key] += value
    return repository.rolled_up(deltas)


async def derived(app: FastAPI) -> tuple[dict[Any, int], dict[str, Any]]:
    """The subtree counters (zeros left out) and the villages' nearest distances."""
    async with app.state.runtime.db.sessions() as session:
        subtree = {
            (r.node_id, r.period, r.metric, r.dimension): r.value
            for r in await session.scalars(select(DashSubtreeCounter))
            if r.value
        }
        cover = {
            r.org_id: (r.cell, r.nearest_m) for r in await session.scalars(select(DashVillageCover))
        }
    return subtree, cover


async def kept(app: FastAPI, metrics: set[str]) -> dict[Any, int]:
    async with app.state.runtime.db.sessions() as session:
        return {
            (r.org_id, r.period, r.metric, r.dimension): r.value
            for r in await session.scalars(
                select(DashCounter).where(DashCounter.metric.in_(metrics))
            )
            if r.value
        }


async def test_three_consumers_apply_batches_at_once_and_count_each_event_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    nats_url: str,
    scenario: Scenario,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = f"{app.state.runtime.bus.root}b{uuid.uuid4().hex[:6]}"
    bus = Bus(nats_url, "gateway-batches", root=root)
    bus.start()
    assert await bus.connected(10)
    feed = EventFeed(SimpleNamespace(bus=bus, db=app.state.runtime.db))  # type: ignore[arg-type]
    envelopes = busy_province(scenario)
    try:
        # Everything in the streams before a consumer starts: full batches, the three
        # consumers at once; newest first (orgs after what they count), each twice.
        for envelope in reversed(envelopes):
            await feed.send(envelope)
            await feed.send(envelope, dedupe=False)
        caplog.set_level(logging.WARNING, logger="gonghui_shared.bus.consumer")
        await drain(app, bus)
        await feed.synced()
        went_back = [r.getMessage() for r in caplog.records if "one by one" in r.getMessage()]
        assert not went_back, "a batch was rolled back (a deadlock?)"
        assert await batches(app) < len(envelopes) / 10, "applied a batch at a time"

        members = await kept(app, {"members", "new_members"})
        assert members == await recomputed_members(app)
        approvals = sum(1 for e in envelopes if e.type == m.MemberApproved.type)
        assert approvals == sum(
            v for (_, p, metric, _), v in members.items() if metric == "new_members" and p == "*"
        )
        incremental = await derived(app)
        async with app.state.runtime.db.transaction() as session:
            await repository.rebuild_derived(session)
        assert await derived(app) == incremental

        # Each event counted once: by the inbox, the freshness rows, the attendance.
        by_source: dict[str, int] = defaultdict(int)
        for envelope in envelopes:
            by_source[envelope.source] += 1
        assert await applied(app) == {DURABLE[source]: n for source, n in by_source.items()}
        before = await kept(app, {"members", "new_members", "person_times"})
        assert sum(v for (_, p, _, _), v in before.items() if p == "*") > 0
        assert await freshness(app) == dict(by_source)

        # Delivered once more, long after (a relay that published again): nothing changes.
        for envelope in envelopes[::7]:
            await feed.send(envelope, dedupe=False)
        await drain(app, bus)
        assert await kept(app, {"members", "new_members", "person_times"}) == before
        assert await freshness(app) == dict(by_source)
    finally:
        await bus.close()


async def applied(app: FastAPI) -> dict[str, int]:
    async with app.state.runtime.db.sessions() as session:
        query = select(inbox.c.consumer, func.count()).group_by(inbox.c.consumer)
        return {consumer: n for consumer, n in await session.execute(query)}


async def batches(app: FastAPI) -> int:
    """How many transactions applied the events: a batch's inbox rows share their time."""
    async with app.state.runtime.db.sessions() as session:
        query = select(func.count(func.distinct(inbox.c.processed_at)))
        return int(await session.scalar(query) or 0)


async def freshness(app: FastAPI) -> dict[str, int]:
    async with app.state.runtime.db.sessions() as session:
        query = select(DashSource.source, DashSource.events_applied)
        return {source: n for source, n in await session.execute(query)}
