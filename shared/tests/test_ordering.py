"""Per-aggregate order: the outbox numbers each aggregate's events, consumers apply them in
that order whatever order they arrive in, and late copies have no effect."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gonghui_shared import metrics
from gonghui_shared.bus import Bus, EventConsumer
from gonghui_shared.bus.outbox import OutboxItem, record_event, record_events
from gonghui_shared.contracts import EventEnvelope
from gonghui_shared.db import Database
from gonghui_shared.testing.busdb import inbox, metadata, outbox
from gonghui_shared.testing.probe import (
    ProbeSettings,
    Tally,
    ThingHappened,
    ThingNoted,
    applied_ids,
    probe_app,
    publish,
    subscription,
    thing_envelope,
    wait_until,
)

positions = metadata.tables["consumer_positions"]


async def outbox_numbers(db: Database) -> list[tuple[str, int, int]]:
    """(aggregate, column seq, envelope seq) per outbox row, in position order."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(outbox.c.aggregate_id, outbox.c.aggregate_seq, outbox.c.payload).order_by(
                outbox.c.position
            )
        )
        return [(a, seq, json.loads(payload)["aggregate_seq"]) for a, seq, payload in rows]


async def test_outbox_numbers_each_aggregate_in_commit_order(db: Database) -> None:
    for thing in ("x", "x", "y", "x"):
        async with db.transaction() as session:
            await record_event(session, outbox, ThingHappened(thing_id=thing), aggregate_id=thing)
    async with db.transaction() as session:
        items = [OutboxItem(ThingHappened(thing_id=t), t) for t in ("x", "y", "z", "x")]
        await record_events(session, outbox, items)
    numbers = await outbox_numbers(db)
    assert [(a, seq) for a, seq, _ in numbers] == [
        ("x", 1),
        ("x", 2),
        ("y", 1),
        ("x", 3),
        ("x", 4),
        ("y", 2),
        ("z", 1),
        ("x", 5),
    ]
    assert all(column == envelope for _, column, envelope in numbers)


async def test_new_aggregates_start_at_one_and_go_on_from_there(db: Database) -> None:
    async with db.transaction() as session:
        items = [OutboxItem(ThingHappened(thing_id=t), t) for t in ("a", "b", "a")]
        await record_events(session, outbox, items, new_aggregates=True)
    async with db.transaction() as session:
        await record_event(session, outbox, ThingHappened(thing_id="a"), aggregate_id="a")
    numbers = await outbox_numbers(db)
    assert [(a, seq) for a, seq, _ in numbers] == [("a", 1), ("b", 1), ("a", 2), ("a", 3)]
    assert all(column == envelope for _, column, envelope in numbers)


async def test_an_aggregate_said_to_be_new_that_is_not_is_refused(db: Database) -> None:
    async with db.transaction() as session:
        await record_event(session, outbox, ThingHappened(thing_id="old"), aggregate_id="old")
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            items = [OutboxItem(ThingHappened(thing_id="old"), "old")]
            await record_events(session, outbox, items, new_aggregates=True)
    # Nothing of the refused write is left, and the number 1 was not given twice.
    assert [(a, seq) for a, seq, _ in await outbox_numbers(db)] == [("old", 1)]


async def test_concurrent_writers_to_one_aggregate_get_consecutive_numbers(db: Database) -> None:
    async def write() -> None:
        async with db.transaction() as session:
            await record_event(session, outbox, ThingHappened(thing_id="hot"), aggregate_id="hot")
            await asyncio.sleep(0.01)  # hold the transaction open while the others queue

    await asyncio.gather(*(write() for _ in range(8)))
    numbers = [seq for _, seq, _ in await outbox_numbers(db)]
    # Numbered in commit order, which is position order: what the relay publishes in.
    assert numbers == list(range(1, 9))


async def test_events_arriving_out_of_order_are_applied_in_order_once(
    db: Database, bus: Bus
) -> None:
    first = thing_envelope("t", seq=1)
    second = thing_envelope("t", seq=2)
    noted = thing_envelope("t", seq=3, event_type=ThingNoted.type)  # not handled: still counts
    fourth = thing_envelope("t", seq=4)
    stale_copy = thing_envelope("t", seq=1)  # another id, a number already applied
    for envelope in (second, fourth, first, first, stale_copy, noted):
        await publish(bus, envelope)
    # A redelivery that lands just as a pull request expires is seen by nats-py only when
    # ack_wait sends it again (30 s by default): a short ack_wait keeps this test about order.
    sub = subscription(
        Tally(), backoff_seconds=[0.1], early_retry_seconds=0.2, ack_wait_seconds=2.0
    )
    consumer = EventConsumer(db, bus, inbox, sub)
    consumer.start()
    try:
        wanted = [str(e.event_id) for e in (first, second, fourth)]

        async def done() -> bool:
            return await applied_ids(db) == wanted

        await wait_until(done, what="all three applied in order")
        await asyncio.sleep(0.3)  # anything left over would show up now
    finally:
        await consumer.stop()
    assert await applied_ids(db) == wanted, "in order, each once, the stale copy never"
    async with db.sessions() as session:
        last = await session.scalar(
            select(positions.c.last_seq).where(
                positions.c.consumer == sub.durable, positions.c.aggregate_id == "t"
            )
        )
    assert last == 4
    assert metrics.CONSUMER_EVENTS.labels(sub.durable, "early")._value.get() >= 2
    assert metrics.CONSUMER_EVENTS.labels(sub.durable, "duplicate")._value.get() == 2


async def test_unnumbered_events_from_before_numbering_still_apply(db: Database, bus: Bus) -> None:
    legacy = [thing_envelope("old") for _ in range(2)]
    for envelope in legacy:
        await publish(bus, envelope)
    consumer = EventConsumer(db, bus, inbox, subscription(Tally()))
    consumer.start()
    try:

        async def done() -> bool:
            return await applied_ids(db) == [str(e.event_id) for e in legacy]

        await wait_until(done)
    finally:
        await consumer.stop()


async def test_writes_through_the_service_reach_its_consumer_numbered(
    db: Database, bus: Bus, nats_url: str, subject_root: str, data_dir: Path
) -> None:
    settings = ProbeSettings(
        database_url=db.url,
        nats_url=nats_url,
        subject_root=subject_root,
        data_dir=data_dir,
        environment="test",
        outbox_poll_seconds=0.1,
    )
    async with probe_app(settings, [subscription(Tally())]) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://p") as client:
            for _ in range(3):
                assert (await client.post("/v1/things/w")).status_code == 201

        async def applied() -> bool:
            return len(await applied_ids(db)) == 3

        await wait_until(applied)
    async with db.sessions() as session:
        payloads = list(await session.scalars(select(outbox.c.payload)))
    envelopes = [EventEnvelope.model_validate_json(p) for p in payloads]
    by_id = {str(e.event_id): e.aggregate_seq for e in envelopes}
    assert [by_id[i] for i in await applied_ids(db)] == [1, 2, 3]
