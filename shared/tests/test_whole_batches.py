"""`Subscription.batch_hooks`: a fetched batch applied whole, with hooks around its handlers,
against a real NATS and both databases."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared import metrics
from gonghui_shared.bus import Bus, EventConsumer
from gonghui_shared.bus.consumer import ConsumerTables
from gonghui_shared.contracts import Event, EventEnvelope
from gonghui_shared.db import Database
from gonghui_shared.testing.busdb import inbox
from gonghui_shared.testing.probe import Tally, applied_ids, thing_envelope, wait_until
from gonghui_shared.testing.probe import publish as probe_publish
from gonghui_shared.testing.probe import subscription as probe_subscription


class Hooks:
    """Records what it is called with; each call sees the batch's own transaction."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.after_calls = 0

    async def before(
        self, session: AsyncSession, events: Sequence[tuple[EventEnvelope, Event]]
    ) -> None:
        self.batches.append([str(envelope.event_id) for envelope, _ in events])

    async def after(self, session: AsyncSession) -> None:
        self.after_calls += 1


async def drained(bus: Bus, durable: str) -> bool:
    info = await bus.js.consumer_info(f"{bus.root}_TESTSVC".upper(), durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_a_batch_is_applied_once_with_its_hooks_duplicates_and_all(
    db: Database, bus: Bus
) -> None:
    """Redelivered copies, an event already applied and an aggregate's numbers in order
    within one batch: each event applied once, its position where it should be."""
    first, second = thing_envelope("x", seq=1), thing_envelope("x", seq=2)
    loose = thing_envelope("loose")
    for envelope in (first, loose, first, second, loose, second):  # copies: no Nats-Msg-Id
        await probe_publish(bus, envelope)
    handler, hooks = Tally(), Hooks()
    sub = probe_subscription(handler, apply_batches=True, batch_hooks=hooks)
    consumer = EventConsumer(db, bus, inbox, sub)
    consumer.start()
    try:
        await wait_until(lambda: drained(bus, sub.durable))
    finally:
        await consumer.stop()
    wanted = [str(e.event_id) for e in (first, loose, second)]
    assert await applied_ids(db) == wanted
    assert handler.calls == 3
    assert hooks.batches == [wanted] and hooks.after_calls == 1, "one batch, hooks around it"
    positions = ConsumerTables.beside(inbox).positions
    async with db.sessions() as session:
        seq = await session.scalar(
            select(positions.c.last_seq).where(
                positions.c.consumer == sub.durable, positions.c.aggregate_id == "x"
            )
        )
    assert seq == 2

    # Delivered again later (a relay that published twice): a duplicate, nothing applied.
    await probe_publish(bus, second)
    await probe_publish(bus, loose)
    consumer = EventConsumer(db, bus, inbox, sub)
    consumer.start()
    try:
        await wait_until(lambda: drained(bus, sub.durable))
    finally:
        await consumer.stop()
    assert await applied_ids(db) == wanted and handler.calls == 3
    assert hooks.batches[1:] == [[]], "nothing of that batch was applied"


async def test_a_failure_sends_the_batch_back_one_message_at_a_time(db: Database, bus: Bus) -> None:
    """Nothing of the failed batch stays; its messages are then handled one per
    transaction: the others applied, the failing one retried and dead-lettered."""
    handler, hooks = Tally(failing={"b"}), Hooks()
    envelopes = [thing_envelope(thing, seq=1) for thing in ("a", "b", "c")]
    for envelope in envelopes:
        await probe_publish(bus, envelope)
    sub = probe_subscription(
        handler, backoff_seconds=[0.1], max_deliver=2, apply_batches=True, batch_hooks=hooks
    )
    consumer = EventConsumer(db, bus, inbox, sub)
    consumer.start()
    try:

        async def settled() -> bool:
            return await drained(bus, sub.durable) and handler.calls >= 6

        await wait_until(settled)
    finally:
        await consumer.stop()
    a, b, c = (str(e.event_id) for e in envelopes)
    assert await applied_ids(db) == [a, c], "the whole batch went back; a and c alone stayed"
    # The batch: a, b (fails); alone: a, b, c; the retry of b alone (as a batch of one).
    assert handler.calls == 6
    assert hooks.batches[0] == [a, b, c] and hooks.after_calls == 0
    assert metrics.DEAD_LETTERS.labels(sub.durable, "failed")._value.get() == 1
