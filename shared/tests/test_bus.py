"""The outbox relay and the idempotent consumer, against a real NATS and real databases."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest
from nats.js.errors import NotFoundError
from sqlalchemy import func, insert, select

from gonghui_shared import metrics
from gonghui_shared.bus import Bus, EventConsumer, OutboxRelay, Subscription, record_event
from gonghui_shared.contracts import Event, EventEnvelope
from gonghui_shared.db import Database
from gonghui_shared.testing.busdb import inbox, outbox, tally
from gonghui_shared.testing.probe import Tally, applied_ids, thing_envelope
from gonghui_shared.testing.probe import publish as probe_publish
from gonghui_shared.testing.probe import subscription as probe_subscription


class ThingHappened(Event):
    type = "testsvc.thing.happened"

    thing_id: str


async def stream_messages(bus: Bus) -> int:
    info = await bus.js.stream_info(f"{bus.root}_TESTSVC".upper())
    return info.state.messages


async def unsent(db: Database) -> int:
    async with db.sessions() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
            )
            or 0
        )


async def write_event(db: Database, thing_id: str = "t1") -> EventEnvelope:
    async with db.transaction() as session:
        return await record_event(
            session, outbox, ThingHappened(thing_id=thing_id), aggregate_id=thing_id
        )


def relay_for(db: Database, bus: Bus, **kwargs: float) -> OutboxRelay:
    return OutboxRelay(db, bus, outbox, service="testsvc", **kwargs)  # type: ignore[arg-type]


async def test_committed_event_is_published_and_marked_sent(db: Database, bus: Bus) -> None:
    await write_event(db)
    assert await relay_for(db, bus).publish_batch() == 1
    assert await stream_messages(bus) == 1
    assert await unsent(db) == 0
    assert await relay_for(db, bus).publish_batch() == 0


async def test_rolled_back_change_publishes_nothing(db: Database, bus: Bus) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await record_event(session, outbox, ThingHappened(thing_id="x"), aggregate_id="x")
            raise RuntimeError("the change failed")
    assert await relay_for(db, bus).publish_batch() == 0
    assert await stream_messages(bus) == 0


async def test_crash_after_publish_before_marking_sent_publishes_once(
    db: Database, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    envelope = await write_event(db)
    crashing = relay_for(db, bus)

    async def crash(positions: list[int]) -> None:
        raise ConnectionError("process died before stamping sent_at")

    monkeypatch.setattr(crashing, "_mark_sent", crash)
    with pytest.raises(ConnectionError):
        await crashing.publish_batch()
    assert await stream_messages(bus) == 1
    assert await unsent(db) == 1, "the crash left the row unsent"

    duplicates_before = metrics.OUTBOX_DUPLICATES.labels("testsvc")._value.get()
    restarted = relay_for(db, bus)
    assert await restarted.publish_batch() == 1
    assert await stream_messages(bus) == 1, "JetStream dropped the re-publish by Nats-Msg-Id"
    assert metrics.OUTBOX_DUPLICATES.labels("testsvc")._value.get() == duplicates_before + 1
    assert await unsent(db) == 0
    stored = await bus.js.get_last_msg(f"{bus.root}_TESTSVC".upper(), f"{bus.root}.>")
    assert stored.headers and stored.headers["Nats-Msg-Id"] == str(envelope.event_id)


async def test_relay_publishes_in_commit_order(db: Database, bus: Bus) -> None:
    for n in range(5):
        await write_event(db, f"t{n}")
    assert await relay_for(db, bus, batch_size=2).publish_batch() == 2
    assert await relay_for(db, bus, batch_size=10).publish_batch() == 3
    sub = await bus.js.pull_subscribe(
        f"{bus.root}.testsvc.>", durable=None, stream=f"{bus.root}_TESTSVC".upper()
    )
    msgs = await sub.fetch(5, timeout=5)
    ids = [EventEnvelope.model_validate_json(m.data).aggregate_id for m in msgs]
    assert ids == ["t0", "t1", "t2", "t3", "t4"]


async def test_failure_mid_pipeline_stamps_only_the_acked_prefix_and_republish_dedupes(
    db: Database, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's publishes are in flight together: the one after a failure may well be
    stored. It must stay unsent (stamping it would let it overtake the failed one for
    good), and its re-publish must be dropped by JetStream as a duplicate."""
    envelopes = [await write_event(db, "same") for _ in range(6)]  # one aggregate, seq 1..6
    failing_id = str(envelopes[2].event_id)
    real_publish = bus.js.publish
    sent: list[str] = []

    async def third_fails(subject: str, payload: bytes, **kwargs):  # type: ignore[no-untyped-def]
        event_id = kwargs["headers"]["Nats-Msg-Id"]
        sent.append(event_id)
        if event_id == failing_id:
            raise TimeoutError("no ack for this one")
        return await real_publish(subject, payload, **kwargs)

    relay = relay_for(db, bus, max_in_flight=4)
    duplicates_before = metrics.OUTBOX_DUPLICATES.labels("testsvc")._value.get()
    with monkeypatch.context() as patched:
        patched.setattr(bus.js, "publish", third_fails)
        assert await relay.publish_batch() == 2, "only the two before the failure count"
    assert len(sent) > 3, "the publishes after the failed one were already under way"
    stored_ahead = await stream_messages(bus) - 2
    assert stored_ahead >= 1, "some events after the failed one reached the stream"
    assert await unsent(db) == 4, "the failed event and everything after it stay unsent"
    async with db.sessions() as session:
        failed = (
            await session.execute(
                select(outbox.c.attempts, outbox.c.last_error).where(
                    outbox.c.event_id == failing_id
                )
            )
        ).one()
    assert failed.attempts == 1 and "no ack" in failed.last_error

    assert await relay.publish_batch() == 4
    assert await unsent(db) == 0
    assert await stream_messages(bus) == 6, "each event stored once"
    assert (
        metrics.OUTBOX_DUPLICATES.labels("testsvc")._value.get() == duplicates_before + stored_ahead
    )
    sub = await bus.js.pull_subscribe(
        f"{bus.root}.testsvc.>", durable=None, stream=f"{bus.root}_TESTSVC".upper()
    )
    stored = [EventEnvelope.model_validate_json(m.data) for m in await sub.fetch(6, timeout=5)]
    # Stream order puts the retried event after those stored ahead of it; consumers apply
    # by aggregate_seq, holding those back until it arrives (test_ordering covers that).
    assert sorted(e.aggregate_seq or 0 for e in stored) == [1, 2, 3, 4, 5, 6]
    assert [e.aggregate_seq for e in stored][:2] == [1, 2]


async def test_pipelined_batch_keeps_commit_order_in_the_stream(db: Database, bus: Bus) -> None:
    for n in range(40):
        await write_event(db, f"t{n}")
    assert await relay_for(db, bus, max_in_flight=8).publish_batch() == 40
    sub = await bus.js.pull_subscribe(
        f"{bus.root}.testsvc.>", durable=None, stream=f"{bus.root}_TESTSVC".upper()
    )
    msgs = await sub.fetch(40, timeout=5)
    ids = [EventEnvelope.model_validate_json(m.data).aggregate_id for m in msgs]
    assert ids == [f"t{n}" for n in range(40)]


async def test_commit_wakes_running_relay(db: Database, bus: Bus) -> None:
    relay = relay_for(db, bus, poll_seconds=30.0)  # polling alone would take 30 s
    relay.start()
    try:
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        await write_event(db)
        while await stream_messages(bus) < 1:
            assert time.perf_counter() - started < 5, "relay was not woken by the commit"
            await asyncio.sleep(0.01)
    finally:
        await relay.stop()
    assert await unsent(db) == 0


# -- consumer -----------------------------------------------------------------


def consumer_for(db: Database, bus: Bus, handler, durable: str, **kw) -> EventConsumer:  # type: ignore[no-untyped-def]
    sub = Subscription(durable=durable, source="testsvc", handlers={ThingHappened: handler}, **kw)
    return EventConsumer(db, bus, inbox, sub)


async def count_tally(db: Database) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(tally)) or 0)


async def add_tally(session, event: ThingHappened, envelope: EventEnvelope) -> None:  # type: ignore[no-untyped-def]
    await session.execute(insert(tally).values(event_id=str(envelope.event_id)))


async def publish_raw(bus: Bus, envelope: EventEnvelope) -> None:
    # No Nats-Msg-Id: JetStream stores both copies, as after a redelivery.
    await bus.js.publish(envelope.subject(bus.root), envelope.model_dump_json().encode())


def an_envelope(thing_id: str = "t1") -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(),
        type=ThingHappened.type,
        version=1,
        occurred_at=datetime.now(UTC),
        source="testsvc",
        aggregate_id=thing_id,
        data={"thing_id": thing_id},
    )


async def wait_until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await predicate():
                return
        except NotFoundError:  # the consumer is not created yet
            pass
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_same_event_delivered_twice_is_applied_once(db: Database, bus: Bus) -> None:
    envelope = an_envelope()
    await publish_raw(bus, envelope)
    await publish_raw(bus, envelope)
    await publish_raw(bus, an_envelope("t2"))
    durable = f"test_{uuid.uuid4().hex[:8]}"
    consumer = consumer_for(db, bus, add_tally, durable)
    consumer.start()
    try:

        async def all_acked() -> bool:
            info = await bus.js.consumer_info(f"{bus.root}_TESTSVC".upper(), durable)
            return (
                info.num_pending == 0
                and info.num_ack_pending == 0
                and info.delivered.consumer_seq >= 3
            )

        await wait_until(all_acked)
    finally:
        await consumer.stop()
    assert await count_tally(db) == 2, "the duplicate delivery had no effect"


async def test_failed_handler_is_not_acked_and_is_retried(db: Database, bus: Bus) -> None:
    calls = 0

    async def flaky(session, event, envelope) -> None:  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        await add_tally(session, event, envelope)
        if calls == 1:
            raise RuntimeError("first attempt fails after writing")

    await publish_raw(bus, an_envelope())
    consumer = consumer_for(db, bus, flaky, f"test_{uuid.uuid4().hex[:8]}", backoff_seconds=[0.1])
    consumer.start()
    try:

        async def applied() -> bool:
            return await count_tally(db) == 1

        await wait_until(applied)
    finally:
        await consumer.stop()
    assert calls == 2
    assert await count_tally(db) == 1, "the failed attempt's write was rolled back"


async def test_poison_event_is_terminated_after_max_deliveries(db: Database, bus: Bus) -> None:
    calls = 0

    async def broken(session, event, envelope) -> None:  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        raise RuntimeError("cannot apply")

    await publish_raw(bus, an_envelope("poison"))
    await publish_raw(bus, an_envelope("fine"))
    durable = f"test_{uuid.uuid4().hex[:8]}"
    consumer = consumer_for(db, bus, broken, durable, max_deliver=3, backoff_seconds=[0.05])
    consumer.start()
    try:

        async def settled() -> bool:
            info = await bus.js.consumer_info(f"{bus.root}_TESTSVC".upper(), durable)
            return info.num_ack_pending == 0 and info.num_pending == 0 and calls >= 6

        await wait_until(settled)
    finally:
        await consumer.stop()
    assert calls == 6, "each event was tried exactly max_deliver times"
    assert await count_tally(db) == 0


async def test_a_failure_in_a_fetched_batch_undoes_only_its_own_writes(
    db: Database, bus: Bus
) -> None:
    """A batch shares one transaction: the failing event's savepoint is rolled back, the
    others are committed and acked, and the failed one is retried on its own."""
    handler = Tally(failing={"b"})
    envelopes = [thing_envelope(thing, seq=1) for thing in ("a", "b", "c")]
    for envelope in envelopes:
        await probe_publish(bus, envelope)
    sub = probe_subscription(handler, backoff_seconds=[0.1], max_deliver=2, apply_batches=True)
    consumer = EventConsumer(db, bus, inbox, sub)
    consumer.start()
    try:

        async def settled() -> bool:
            info = await bus.js.consumer_info(f"{bus.root}_TESTSVC".upper(), sub.durable)
            return info.num_pending == 0 and info.num_ack_pending == 0 and handler.calls >= 4

        await wait_until(settled)
    finally:
        await consumer.stop()
    a, b, c = (str(e.event_id) for e in envelopes)
    assert await applied_ids(db) == [a, c], "the failed event left no row; the others stayed"
    assert handler.calls == 4, "b was tried max_deliver times, a and c once each"
    assert metrics.DEAD_LETTERS.labels(sub.durable, "failed")._value.get() == 1
