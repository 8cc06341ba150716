"""Consuming events: durable pull consumers, explicit ack, an inbox for idempotency.

For each message, in one transaction: skip it if it was applied already (its
event id is in the inbox, or its `aggregate_seq` is at or below the last one
applied for its aggregate: one lookup finds both); hold it back if it is early (a
number is missing before it); else apply the handler, insert the inbox row and
advance the aggregate's position; commit; then ack. An early event is nak'ed with
a delay, so it comes back after its predecessor.

With `Subscription.apply_batches`, a fetched batch shares one transaction instead,
each message in a savepoint of its own: the batch commits once, and only then are
its messages acked; a message whose savepoint was rolled back is settled as a
failure, and a batch that cannot commit (or meets a database error) is handled
again one message per transaction. With `Subscription.batch_hooks` as well, a batch is
applied whole or not at all, with no savepoint: the positions and inbox entries of the
whole batch are read in one round trip (the positions locked, in one order), the hooks
run before and after its handlers (a read model folds its writes into one statement per
table there), its inbox rows and positions are written at once; if anything fails, the
batch is rolled back and its messages are handled again one per transaction, so a
failing event is settled as it would have been on its own.

A handler that fails is never acked: the message is nak'ed with back-off and the
consumer goes on with the rest of the batch, so one poison event holds back only
the later events of its own aggregate, never other aggregates. After
`max_deliver` deliveries (at once, when the message cannot even be parsed) it
becomes a dead letter: stored in the service's `dead_letters` table, published
on `<root>.deadletter.<durable>`, counted, and terminated. The delivery bound is
counted here, not by JetStream (the consumer's own `max_deliver` is unlimited):
if storing the dead letter fails, the message must come back to be stored later.

nats-py pull subscriptions can stall after a server restart (the client resends
its SUB but not an outstanding pull request), so the pull subscription is
re-created after every reconnect, and whenever nothing arrived for
`stall_seconds` while the consumer has messages waiting.

`gonghui_consumer_lag{consumer}` is the durable's `num_pending` (messages not yet
delivered to it): taken from the consumer info when subscribing and when idle, and
between those from each delivered message's metadata, which carries it for free.
With tracing on, each message is applied in a CONSUMER span that continues the
trace its `traceparent` header names (the request that wrote the event).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError, NotFoundError
from opentelemetry.trace import Span
from pydantic import ValidationError
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared import metrics
from gonghui_shared.bus.connection import (
    DEAD_LETTER_SOURCE,
    Bus,
    dead_letter_subject,
    stream_name,
)
from gonghui_shared.bus.tables import CONSUMER_POSITIONS, DEAD_LETTERS, companion
from gonghui_shared.contracts import Event, EventEnvelope
from gonghui_shared.db import Database
from gonghui_shared.deadletters import repository as dead_letter_repository
from gonghui_shared.ids import new_id
from gonghui_shared.tracing import Tracing, mark_failed

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, Event, EventEnvelope], Awaitable[None]]
# Runs in the transaction that applies an event (a replay marks its dead letter there).
AlsoInTransaction = Callable[[AsyncSession], Awaitable[None]]


class BatchHooks(Protocol):
    """What runs around the handlers of a batch applied whole (`Subscription.batch_hooks`)."""

    async def before(
        self, session: AsyncSession, events: Sequence[tuple[EventEnvelope, Event]]
    ) -> None:
        """Before the handlers, with the events about to be applied, in order."""

    async def after(self, session: AsyncSession) -> None:
        """After the handlers, before the batch's inbox rows are written and it commits."""


@dataclass
class Subscription:
    """What a consumer listens to: a durable name, the producer, and a handler per event class."""

    durable: str  # who consumes what, e.g. "training__membership_member"
    source: str  # the producing service, whose stream we read
    handlers: Mapping[type[Event], Handler]
    max_deliver: int = 5
    backoff_seconds: list[float] = field(default_factory=lambda: [1.0, 5.0, 15.0, 60.0])
    ack_wait_seconds: float = 30.0
    # An early event waits for its predecessor, which may be a delivery whose ack NATS lost
    # (it comes back only after ack_wait): retry it often, and give up only after a time
    # well past ack_wait, not after max_deliver tries of the failure back-off.
    early_retry_seconds: float = 1.0
    early_give_up_seconds: float = 120.0
    # Re-create the pull subscription when nothing arrived for this long while
    # messages are waiting for this consumer.
    stall_seconds: float = 10.0
    # Apply each fetched batch in one transaction (a savepoint per message, one commit):
    # far fewer commits, but the batch's locks are held until its end. Only for handlers
    # whose locks cannot deadlock with another consumer's batch on the same database
    # (the gateway's dashboards take theirs in one order in `batch_hooks`).
    apply_batches: bool = False
    # With apply_batches: apply a batch whole or not at all (no savepoint per message), with
    # these hooks around its handlers; a failure sends it back to one message at a time.
    batch_hooks: BatchHooks | None = None


class Outcome(StrEnum):
    applied = "applied"
    duplicate = "duplicate"  # applied before: nothing done
    ignored = "ignored"  # a type this consumer has no handler for
    early = "early"  # an earlier event of its aggregate has not been applied yet


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    last_seq: int | None = None  # the aggregate's position before this event, if numbered


@dataclass(frozen=True)
class ConsumerTables:
    """The tables a consumer writes, all attached by `bus_tables` to the service's metadata."""

    inbox: Table
    positions: Table
    dead_letters: Table

    @classmethod
    def beside(cls, inbox: Table) -> ConsumerTables:
        return cls(inbox, companion(inbox, CONSUMER_POSITIONS), companion(inbox, DEAD_LETTERS))


class PositionMoved(RuntimeError):
    """Another delivery advanced the aggregate meanwhile (two instances): retry."""


class EventConsumer:
    # Each message of a batch is settled on its own (ack, nak with a delay, term), so a
    # failing one never holds up the messages after it in the batch.
    fetch_batch = 200
    fetch_seconds = 1.0

    def __init__(
        self,
        db: Database,
        bus: Bus,
        inbox: Table,
        subscription: Subscription,
        tracing: Tracing | None = None,
    ) -> None:
        self.db = db
        self.bus = bus
        self.inbox = inbox
        self.tables = ConsumerTables.beside(inbox)
        self.sub = subscription
        self.tracing = tracing or Tracing()
        self._lag = metrics.CONSUMER_LAG.labels(subscription.durable)
        self._classes = {(cls.type, cls.version): cls for cls in subscription.handlers}
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._reconnects_seen = 0
        self._dead_letter_stream_ready = False
        # Stream sequence -> first failed delivery, while a message is being retried.
        self._first_failure: dict[int, datetime] = {}

    @property
    def durable(self) -> str:
        return self.sub.durable

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"consumer-{self.sub.durable}")

    async def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()

    def _config(self) -> ConsumerConfig:
        root = self.bus.root
        return ConsumerConfig(
            name=self.sub.durable,
            durable_name=self.sub.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.sub.ack_wait_seconds,
            max_deliver=-1,  # bounded by `handle`, which dead-letters (see the module doc)
            # The whole source stream, not one filter per handled type: multi-subject
            # filters need NATS 2.10, and an unhandled type still advances its aggregate.
            filter_subject=f"{root}.{self.sub.source}.>",
        )

    @property
    def _stream(self) -> str:
        return stream_name(self.bus.root, self.sub.source)

    # -- the loop ------------------------------------------------------------

    async def run(self) -> None:
        await self.bus.connected()
        try:
            await self.refresh_unreplayed()
        except Exception as exc:  # noqa: BLE001 - the gauge catches up at the next dead letter
            log.warning("cannot count dead letters of %s: %s", self.sub.durable, exc)
        while not self._stopping:
            psub = await self._subscribe()
            if psub is None:
                return
            try:
                await self._consume(psub)
            finally:
                with contextlib.suppress(Exception):  # the connection may be gone already
                    await psub.unsubscribe()

    async def _subscribe(self) -> Any:
        """Create or update the durable consumer and bind a pull subscription to it."""
        while not self._stopping:
            try:
                await self.bus.ensure_stream(self.sub.source, update=False)
                self._reconnects_seen = self.bus.reconnects
                try:
                    # Create or update: a changed configuration reaches an existing durable.
                    info = await self.bus.js.add_consumer(self._stream, self._config())
                    self._lag.set(info.num_pending or 0)
                except BadRequestError as exc:
                    log.warning("consumer %s kept as it is: %s", self.sub.durable, exc)
                return await self.bus.js.pull_subscribe_bind(
                    durable=self.sub.durable, stream=self._stream
                )
            except Exception as exc:  # noqa: BLE001 - retry until NATS is there
                log.warning("cannot subscribe %s yet: %s", self.sub.durable, exc)
                await asyncio.sleep(1.0)
        return None

    async def _consume(self, psub: Any) -> None:
        """Fetch and handle until stopping, or until the subscription needs re-creating."""
        last_progress = time.monotonic()
        while not self._stopping:
            if self.bus.reconnects != self._reconnects_seen:
                log.info("NATS reconnected: re-creating the pull subscription %s", self.durable)
                metrics.CONSUMER_RESUBSCRIBED.labels(self.durable, "reconnect").inc()
                return
            try:
                messages = await psub.fetch(self.fetch_batch, timeout=self.fetch_seconds)
            except Exception as exc:  # noqa: BLE001 - a timeout means "nothing new", mostly
                if not isinstance(exc, TimeoutError):
                    log.warning("fetch failed for %s: %s", self.durable, exc)
                    await asyncio.sleep(0.5)
                if time.monotonic() - last_progress >= self.sub.stall_seconds:
                    last_progress = time.monotonic()
                    if await self._stalled():
                        metrics.CONSUMER_RESUBSCRIBED.labels(self.durable, "stall").inc()
                        return
                continue
            last_progress = time.monotonic()
            if self.sub.apply_batches:
                await self.handle_batch(messages)
            else:
                for msg in messages:
                    await self._settling(self.handle(msg))
            with contextlib.suppress(Exception):  # not a JetStream message: no metadata
                self._lag.set(messages[-1].metadata.num_pending)

    async def _stalled(self) -> bool:
        """No message came for a while: is one waiting (or the consumer gone)?"""
        try:
            info = await self.bus.js.consumer_info(self._stream, self.sub.durable)
        except NotFoundError:
            log.warning("consumer %s is gone; re-creating it", self.durable)
            return True
        except Exception:  # noqa: BLE001 - NATS unreachable: nothing to re-create yet
            return False
        self._lag.set(info.num_pending or 0)
        if info.num_pending:
            log.warning(
                "consumer %s stalled with %d messages waiting; re-subscribing",
                self.durable,
                info.num_pending,
            )
            return True
        return False

    # -- one message ---------------------------------------------------------

    def parse(self, data: bytes) -> tuple[EventEnvelope, Event | None]:
        """The envelope and its typed event (None for a type this consumer does not handle).

        Raises ValidationError for a message that is not a valid event.
        """
        envelope = EventEnvelope.model_validate_json(data)
        event_class = self._classes.get((envelope.type, envelope.version))
        event = None if event_class is None else event_class.model_validate(envelope.data)
        return envelope, event

    async def handle(self, msg: Msg) -> None:
        """Apply one message exactly once and in order (in a transaction of its own), then
        ack; never ack a failure."""
        with self.tracing.consuming(msg.subject, msg.headers, self.durable) as span:
            parsed = await self._parse_or_give_up(msg, span)
            if parsed is None:
                return
            envelope, event = parsed
            try:
                result: Result | Exception = await self.apply_in_order(envelope, event)
            except Exception as exc:  # noqa: BLE001 - settled below: nak, retry or give up
                result = exc
            await self._settle(msg, envelope, result, span)

    async def handle_batch(self, messages: Sequence[Msg]) -> None:
        """Apply a fetched batch in one transaction, each message in a savepoint, then settle
        each (ack only after the commit). If the transaction itself fails, each message is
        handled again on its own: nothing of the batch was kept, nothing was acked."""
        readable: list[tuple[Msg, EventEnvelope, Event | None]] = []
        for msg in messages:
            # Unreadable ones are given up on first: storing a dead letter takes a
            # transaction of its own, which must not wait behind the batch's (SQLite).
            try:
                envelope, event = self.parse(msg.data)
            except ValidationError:
                await self._settling(self.handle(msg))
                continue
            readable.append((msg, envelope, event))
        if self.sub.batch_hooks is not None:
            await self._handle_whole(readable)
            return
        batch: list[tuple[Msg, EventEnvelope, Result | Exception]] = []
        try:
            async with self.db.transaction() as session:
                for msg, envelope, event in readable:
                    with self.tracing.consuming(msg.subject, msg.headers, self.durable) as span:
                        if span.is_recording():
                            span.set_attribute("messaging.message.id", str(envelope.event_id))
                            span.set_attribute("gonghui.event.type", envelope.type)
                        result = await self._apply_in_savepoint(session, envelope, event)
                        if isinstance(result, Exception):
                            mark_failed(span, result)
                        else:
                            span.set_attribute("gonghui.consumer.outcome", result.outcome.value)
                    batch.append((msg, envelope, result))
        except Exception as exc:  # noqa: BLE001 - rolled back: retried one by one
            log.warning(
                "batch of %d on %s not committed (%s); handling one by one",
                len(readable),
                self.durable,
                exc,
            )
            for msg, _, _ in readable:
                await self._settling(self.handle(msg))
            return
        for msg, envelope, result in batch:
            await self._settling(self._settle(msg, envelope, result, None))

    async def _handle_whole(
        self, readable: Sequence[tuple[Msg, EventEnvelope, Event | None]]
    ) -> None:
        """Apply the batch in one transaction, all or nothing; settle each message after the
        commit, or, if it failed, handle each on its own."""
        if not readable:
            return
        try:
            results = await self._apply_whole(readable)
        except Exception as exc:  # noqa: BLE001 - rolled back: retried one by one
            if len(readable) == 1:  # one by one already: settled as its failure
                msg, envelope, _ = readable[0]
                await self._settling(self._settle(msg, envelope, exc, None))
                return
            log.warning(
                "batch of %d on %s not applied whole (%s: %s); handling one by one",
                len(readable),
                self.durable,
                type(exc).__name__,
                exc,
            )
            for msg, _, _ in readable:
                await self._settling(self.handle(msg))
            return
        for (msg, envelope, _), result in zip(readable, results, strict=True):
            await self._settling(self._settle(msg, envelope, result, None))

    async def _apply_whole(
        self, readable: Sequence[tuple[Msg, EventEnvelope, Event | None]]
    ) -> list[Result]:
        """`_apply_in` for a whole batch: one lookup, the hooks around the handlers, one
        write of the inbox rows and one of the positions. Raises on any failure."""
        hooks = self.sub.batch_hooks
        assert hooks is not None
        async with self.db.transaction() as session:
            envelopes = [envelope for _, envelope, _ in readable]
            known, seen = await self._lookup_batch(session, envelopes)
            positions = dict(known)
            results: list[Result] = []
            chosen: list[tuple[Msg, EventEnvelope, Event]] = []
            for msg, envelope, event in readable:
                result = self._decide(envelope, event, positions, seen)
                if result.outcome is Outcome.applied and event is not None:
                    chosen.append((msg, envelope, event))
                results.append(result)
            await hooks.before(session, [(envelope, event) for _, envelope, event in chosen])
            for msg, envelope, event in chosen:
                with self.tracing.consuming(msg.subject, msg.headers, self.durable) as span:
                    if span.is_recording():
                        span.set_attribute("messaging.message.id", str(envelope.event_id))
                        span.set_attribute("gonghui.event.type", envelope.type)
                    await self.sub.handlers[type(event)](session, event, envelope)
                    # Chosen to be applied; a failure later in the batch redoes it alone.
                    span.set_attribute("gonghui.consumer.outcome", Outcome.applied.value)
            await hooks.after(session)
            await self._record_batch(session, [envelope for _, envelope, _ in chosen])
            await self._advance_batch(session, known, positions)
        return results

    @staticmethod
    def _decide(
        envelope: EventEnvelope,
        event: Event | None,
        positions: dict[str, int],
        seen: set[str],
    ) -> Result:
        """`_apply_in`'s choice for one message of a batch, from (and advancing) the batch's
        view of the positions and the inbox."""
        seq = envelope.aggregate_seq
        if seq is None and event is None:
            return Result(Outcome.ignored)
        last = positions.get(envelope.aggregate_id, 0)
        if seq is not None:
            if seq <= last:
                return Result(Outcome.duplicate, last)
            if seq > last + 1:
                return Result(Outcome.early, last)
            positions[envelope.aggregate_id] = seq
        event_id = str(envelope.event_id)
        if event is None:
            outcome = Outcome.ignored
        elif event_id in seen:
            outcome = Outcome.duplicate
        else:
            seen.add(event_id)
            outcome = Outcome.applied
        return Result(outcome, None if seq is None else last)

    async def _lookup_batch(
        self, session: AsyncSession, envelopes: Sequence[EventEnvelope]
    ) -> tuple[dict[str, int], set[str]]:
        """The numbered aggregates' positions (their rows locked until the commit, in one
        order: another instance's batch waits, it cannot deadlock on them) and which
        events are in the inbox already."""
        p = self.tables.positions.c
        inbox = self.inbox.c
        aggregates = sorted({e.aggregate_id for e in envelopes if e.aggregate_seq is not None})
        event_ids = sorted({str(e.event_id) for e in envelopes})
        known: dict[str, int] = {}
        for chunk in _chunks(aggregates):
            query = (
                select(p.aggregate_id, p.last_seq)
                .where(p.consumer == self.sub.durable, p.aggregate_id.in_(chunk))
                .order_by(p.aggregate_id)
                .with_for_update()
            )
            known.update({aggregate: int(seq) for aggregate, seq in await session.execute(query)})
        seen: set[str] = set()
        for chunk in _chunks(event_ids):
            query = select(inbox.event_id).where(
                inbox.consumer == self.sub.durable, inbox.event_id.in_(chunk)
            )
            seen.update(await session.scalars(query))
        return known, seen

    async def _record_batch(
        self, session: AsyncSession, envelopes: Sequence[EventEnvelope]
    ) -> None:
        if not envelopes:
            return
        now = datetime.now(UTC)
        await session.execute(
            insert(self.inbox),
            [
                {
                    "consumer": self.sub.durable,
                    "event_id": str(envelope.event_id),
                    "event_type": envelope.type,
                    "processed_at": now,
                }
                for envelope in envelopes
            ],
        )

    async def _advance_batch(
        self, session: AsyncSession, known: Mapping[str, int], positions: Mapping[str, int]
    ) -> None:
        """Write the positions the batch moved: new rows in one insert (a concurrent first
        event of an aggregate makes it a primary key conflict: the batch goes back), the
        others, locked since the lookup, in one update."""
        table, now = self.tables.positions, datetime.now(UTC)
        moved = sorted((a, seq) for a, seq in positions.items() if known.get(a) != seq)
        new = [
            {"consumer": self.sub.durable, "aggregate_id": a, "last_seq": seq, "updated_at": now}
            for a, seq in moved
            if a not in known
        ]
        if new:
            await session.execute(insert(table), new)
        changed = [
            {"b_consumer": self.sub.durable, "b_aggregate": a, "b_seq": seq, "b_at": now}
            for a, seq in moved
            if a in known
        ]
        if changed:
            p = table.c
            await session.execute(
                update(table)
                .where(
                    p.consumer == bindparam("b_consumer"),
                    p.aggregate_id == bindparam("b_aggregate"),
                )
                .values(last_seq=bindparam("b_seq"), updated_at=bindparam("b_at")),
                changed,
            )

    async def _settling(self, settle: Awaitable[None]) -> None:
        try:
            await settle
        except Exception as exc:  # noqa: BLE001 - an ack lost with the connection
            # Unacked, the message is redelivered after ack_wait; the loop goes on.
            log.warning("could not settle a message on %s: %s", self.durable, exc)

    async def _parse_or_give_up(
        self, msg: Msg, span: Span
    ) -> tuple[EventEnvelope, Event | None] | None:
        """The message's envelope and event; None (given up on at once) if unreadable."""
        try:
            envelope, event = self.parse(msg.data)
        except ValidationError as exc:
            mark_failed(span, exc)
            await self._settling(self._give_up(msg, None, f"unreadable event: {exc}", "unreadable"))
            return None
        if span.is_recording():
            span.set_attribute("messaging.message.id", str(envelope.event_id))
            span.set_attribute("gonghui.event.type", envelope.type)
        return envelope, event

    async def _settle(
        self, msg: Msg, envelope: EventEnvelope, result: Result | Exception, span: Span | None
    ) -> None:
        """Ack, hold back, or retry `msg` by what applying it gave."""
        if isinstance(result, PositionMoved):
            # Another instance applied this aggregate meanwhile: no failure, look again now
            # (it will be a duplicate, or next in line).
            await msg.nak()
            return
        if isinstance(result, Exception):
            metrics.CONSUMER_FAILED.labels(self.durable).inc()
            if span is not None:
                mark_failed(span, result)
            await self._retry_or_give_up(
                msg,
                envelope,
                f"{type(result).__name__}: {result}",
                "failed",
                level=logging.WARNING,
            )
            return
        if span is not None:
            span.set_attribute("gonghui.consumer.outcome", result.outcome.value)
        if result.outcome is Outcome.early:
            metrics.CONSUMER_EVENTS.labels(self.durable, "early").inc()
            last = result.last_seq or 0
            await self._wait_for_predecessor(
                msg,
                envelope,
                f"out of order: aggregate {envelope.aggregate_id} is at {last}, this event is "
                f"{envelope.aggregate_seq}; {last + 1} has not arrived",
            )
            return
        await msg.ack()
        self._first_failure.pop(msg.metadata.sequence.stream, None)
        metrics.CONSUMER_EVENTS.labels(self.durable, result.outcome.value).inc()

    def _backoff(self, delivered: int) -> float:
        steps = self.sub.backoff_seconds
        return steps[max(min(delivered, len(steps)), 1) - 1]

    async def _wait_for_predecessor(self, msg: Msg, envelope: EventEnvelope, error: str) -> None:
        first = self._first_failure.setdefault(msg.metadata.sequence.stream, datetime.now(UTC))
        waited = (datetime.now(UTC) - first).total_seconds()
        if waited >= self.sub.early_give_up_seconds:
            await self._give_up(msg, envelope, error, "out_of_order")
            return
        log.info(
            "held back (waited %.0fs of %.0fs): %s",
            waited,
            self.sub.early_give_up_seconds,
            error,
            extra={"event_id": str(envelope.event_id), "event_type": envelope.type},
        )
        await msg.nak(delay=self.sub.early_retry_seconds)

    async def _retry_or_give_up(
        self, msg: Msg, envelope: EventEnvelope, error: str, reason: str, *, level: int
    ) -> None:
        delivered = msg.metadata.num_delivered
        self._first_failure.setdefault(msg.metadata.sequence.stream, datetime.now(UTC))
        if delivered >= self.sub.max_deliver:
            await self._give_up(msg, envelope, error, reason)
            return
        delay = self._backoff(delivered)
        log.log(
            level,
            "not applied (delivery %d of %d), retrying in %.1fs: %s",
            delivered,
            self.sub.max_deliver,
            delay,
            error,
            extra={"event_id": str(envelope.event_id), "event_type": envelope.type},
        )
        await msg.nak(delay=delay)

    # -- applying ------------------------------------------------------------

    async def apply_in_order(
        self,
        envelope: EventEnvelope,
        event: Event | None,
        *,
        force: bool = False,
        also: AlsoInTransaction | None = None,
    ) -> Result:
        """Apply the event unless it is a duplicate or early, in one transaction with its
        inbox row, the aggregate's new position and `also`.

        `force` applies an early event anyway (a replay whose predecessor will never come);
        the position then jumps to it.
        """
        if envelope.aggregate_seq is None and event is None and also is None:
            return Result(Outcome.ignored)  # nothing to apply, nothing to record
        try:
            async with self.db.transaction() as session:
                return await self._apply_in(session, envelope, event, force=force, also=also)
        except IntegrityError:
            # Either a concurrent delivery of the same event committed first
            # (then it is done), or the handler itself broke a constraint.
            async with self.db.sessions() as session:
                if await self._seen(session, envelope):
                    return Result(Outcome.duplicate)
            raise

    async def _apply_in_savepoint(
        self, session: AsyncSession, envelope: EventEnvelope, event: Event | None
    ) -> Result | Exception:
        """`apply_in_order` for one message of a batch: its writes kept or undone on their
        own, in a savepoint of the batch's transaction. Returns the failure, not raises."""
        if envelope.aggregate_seq is None and event is None:
            return Result(Outcome.ignored)
        try:
            async with session.begin_nested():
                return await self._apply_in(session, envelope, event)
        except IntegrityError as exc:
            # As in apply_in_order: a concurrent delivery committed it first, or a bug.
            if await self._seen(session, envelope):
                return Result(Outcome.duplicate)
            return exc
        except DBAPIError:
            # A deadlock, a lost connection…: the whole batch goes back, and is applied
            # again one message per transaction, in order, rather than this one retried
            # later behind the events after it.
            raise
        except Exception as exc:  # noqa: BLE001 - the handler failed: settled after commit
            return exc

    async def _apply_in(
        self,
        session: AsyncSession,
        envelope: EventEnvelope,
        event: Event | None,
        *,
        force: bool = False,
        also: AlsoInTransaction | None = None,
    ) -> Result:
        seq = envelope.aggregate_seq
        # One round trip for both facts: the aggregate's position and the inbox entry.
        known, seen = await self._lookup(session, envelope)
        last = known or 0
        if seq is not None:
            if seq <= last:
                if also is not None:
                    await also(session)
                return Result(Outcome.duplicate, last)
            if seq > last + 1 and not force:
                return Result(Outcome.early, last)
        if event is None:
            outcome = Outcome.ignored
        elif seen:
            outcome = Outcome.duplicate
        else:
            await self.sub.handlers[type(event)](session, event, envelope)
            await self._record_in_inbox(session, envelope)
            outcome = Outcome.applied
        if seq is not None:
            await self._advance(session, envelope, known, seq)
        if also is not None:
            await also(session)
        return Result(outcome, None if seq is None else last)

    async def apply(self, envelope: EventEnvelope, event: Event) -> bool:
        """Run the handler and record the event in the inbox, in one transaction, whatever
        the aggregate's position (a rebuild replays a whole stream in the stream's order).

        Returns False when the event had already been applied.
        """
        handler = self.sub.handlers[type(event)]
        try:
            async with self.db.transaction() as session:
                if await self._seen(session, envelope):
                    return False
                await handler(session, event, envelope)
                await self._record_in_inbox(session, envelope)
        except IntegrityError:
            async with self.db.sessions() as session:
                if await self._seen(session, envelope):
                    return False
            raise
        return True

    async def _record_in_inbox(self, session: AsyncSession, envelope: EventEnvelope) -> None:
        await session.execute(
            insert(self.inbox).values(
                consumer=self.sub.durable,
                event_id=str(envelope.event_id),
                event_type=envelope.type,
                processed_at=datetime.now(UTC),
            )
        )

    async def _seen(self, session: AsyncSession, envelope: EventEnvelope) -> bool:
        inbox = self.inbox.c
        found = await session.scalar(
            select(inbox.event_id).where(
                inbox.consumer == self.sub.durable, inbox.event_id == str(envelope.event_id)
            )
        )
        return found is not None

    async def _lookup(
        self, session: AsyncSession, envelope: EventEnvelope
    ) -> tuple[int | None, bool]:
        """The aggregate's last applied number (None before its first), and whether the
        event is in the inbox already: two scalar subqueries, one statement."""
        p = self.tables.positions.c
        inbox = self.inbox.c
        position = (
            select(p.last_seq)
            .where(p.consumer == self.sub.durable, p.aggregate_id == envelope.aggregate_id)
            .scalar_subquery()
        )
        in_inbox = (
            select(inbox.event_id)
            .where(inbox.consumer == self.sub.durable, inbox.event_id == str(envelope.event_id))
            .exists()
        )
        found, seen = (await session.execute(select(position, in_inbox))).one()
        return (None if found is None else int(found)), bool(seen)

    async def _advance(
        self, session: AsyncSession, envelope: EventEnvelope, known: int | None, seq: int
    ) -> None:
        positions = self.tables.positions
        now = datetime.now(UTC)
        if known is None:
            # A concurrent first event of the aggregate makes this a primary key conflict.
            await session.execute(
                insert(positions).values(
                    consumer=self.sub.durable,
                    aggregate_id=envelope.aggregate_id,
                    last_seq=seq,
                    updated_at=now,
                )
            )
            return
        p = positions.c
        moved = await session.execute(
            update(positions)
            .where(
                p.consumer == self.sub.durable,
                p.aggregate_id == envelope.aggregate_id,
                p.last_seq == known,
            )
            .values(last_seq=seq, updated_at=now)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            raise PositionMoved(f"aggregate {envelope.aggregate_id} moved past {known}")

    # -- dead letters --------------------------------------------------------

    async def _give_up(
        self, msg: Msg, envelope: EventEnvelope | None, error: str, reason: str
    ) -> None:
        """Store the dead letter, publish a copy, terminate the message, count it."""
        now = datetime.now(UTC)
        meta = msg.metadata
        first = self._first_failure.pop(meta.sequence.stream, now)
        headers = dict(msg.headers or {})
        row: dict[str, Any] = {
            "id": new_id(),
            "consumer": self.durable,
            "event_id": str(envelope.event_id) if envelope else _message_id(headers),
            "event_type": envelope.type if envelope else None,
            "aggregate_id": envelope.aggregate_id if envelope else None,
            "aggregate_seq": envelope.aggregate_seq if envelope else None,
            "org_path": envelope.org_path if envelope else None,
            "subject": msg.subject[:255],
            "stream_seq": meta.sequence.stream,
            "payload": _storable(msg.data.decode("utf-8", errors="replace")),
            "headers": {k: _storable(v) for k, v in headers.items()} or None,
            "error": _storable(error[:4000]),
            "attempts": meta.num_delivered,
            "first_failed_at": first,
            "last_failed_at": now,
        }
        try:
            async with self.db.transaction() as session:
                await dead_letter_repository.store(session, self.tables.dead_letters, row)
        except Exception as exc:  # noqa: BLE001 - kept unacked: stored at a later delivery
            self._first_failure[meta.sequence.stream] = first
            log.error("cannot store a dead letter of %s: %s", self.durable, exc)
            await msg.nak(delay=self._backoff(meta.num_delivered))
            return
        await self._publish_dead_letter(msg, row, reason)
        await msg.term()
        metrics.DEAD_LETTERS.labels(self.durable, reason).inc()
        log.error(
            "gave up on an event after %d deliveries (%s): %s",
            meta.num_delivered,
            reason,
            error,
            extra={"event_id": row["event_id"], "event_type": row["event_type"]},
        )
        with contextlib.suppress(Exception):  # the gauge catches up at the next change
            await self.refresh_unreplayed()

    async def _publish_dead_letter(self, msg: Msg, row: dict[str, Any], reason: str) -> None:
        """A copy on `<root>.deadletter.<durable>` for operators' tools; the table row is
        what replays read, so a failure here is only logged."""
        headers = {
            **(msg.headers or {}),
            # Deduplicates the copy if the same message is given up on twice.
            "Nats-Msg-Id": f"{self.durable}:{row['event_id'] or row['stream_seq']}",
            "Gonghui-Consumer": self.durable,
            "Gonghui-Original-Subject": msg.subject,
            "Gonghui-Dead-Letter-Reason": reason,
            "Gonghui-Error": " ".join(row["error"].split())[:500],
        }
        try:
            if not self._dead_letter_stream_ready:
                await self.bus.ensure_stream(DEAD_LETTER_SOURCE)
                self._dead_letter_stream_ready = True
            await self.bus.js.publish(
                dead_letter_subject(self.bus.root, self.durable),
                msg.data,
                headers=headers,
                timeout=self.bus.request_timeout,
            )
        except Exception as exc:  # noqa: BLE001 - stored already; the copy is a convenience
            log.warning("dead letter of %s stored but not published: %s", self.durable, exc)

    async def refresh_unreplayed(self) -> None:
        """Set the gauge of this consumer's dead letters waiting for a replay."""
        async with self.db.sessions() as session:
            count = await dead_letter_repository.count_unreplayed(
                session, self.tables.dead_letters, self.durable
            )
        metrics.DEAD_LETTERS_UNREPLAYED.labels(self.durable).set(count)


def _chunks(values: Sequence[str], size: int = 500) -> list[Sequence[str]]:
    """Lists of at most `size` values: well under SQLite's bound-parameter limit."""
    return [values[start : start + size] for start in range(0, len(values), size)]


def _storable(text: str) -> str:
    """PostgreSQL text cannot hold NUL: a poison message carrying one must still be stored."""
    return text.replace("\x00", "\ufffd")


def _message_id(headers: Mapping[str, str]) -> str | None:
    """The relay's `Nats-Msg-Id` (the event id), if an unreadable message carried one."""
    value = headers.get("Nats-Msg-Id")
    return value if value and len(value) <= 36 else None
