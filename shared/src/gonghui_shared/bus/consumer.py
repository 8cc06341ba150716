"""Consuming events: durable pull consumers, explicit ack, an inbox for idempotency.

For each message: in one transaction, skip it if its event id is already in the
inbox, else apply the handler and insert the inbox row; commit; then ack. A
handler that fails is never acked: the message is redelivered with back-off,
and after `max_deliver` attempts it is terminated and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError
from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared import metrics
from gonghui_shared.bus.connection import Bus, stream_name
from gonghui_shared.contracts import Event, EventEnvelope
from gonghui_shared.db import Database

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, Event, EventEnvelope], Awaitable[None]]


@dataclass
class Subscription:
    """What a consumer listens to: a durable name, the producer, and a handler per event class."""

    durable: str  # who consumes what, e.g. "training__membership_member"
    source: str  # the producing service, whose stream we read
    handlers: Mapping[type[Event], Handler]
    max_deliver: int = 5
    backoff_seconds: list[float] = field(default_factory=lambda: [1.0, 5.0, 15.0, 60.0])


class EventConsumer:
    def __init__(self, db: Database, bus: Bus, inbox: Table, subscription: Subscription) -> None:
        self.db = db
        self.bus = bus
        self.inbox = inbox
        self.sub = subscription
        self._classes = {(cls.type, cls.version): cls for cls in subscription.handlers}
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

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
            durable_name=self.sub.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=30,
            max_deliver=self.sub.max_deliver,
            # The whole source stream, not one filter per handled type: multi-subject
            # filters need NATS 2.10, and an unhandled type is simply acked.
            filter_subject=f"{root}.{self.sub.source}.>",
        )

    async def run(self) -> None:
        await self.bus.connected()
        stream = stream_name(self.bus.root, self.sub.source)
        while not self._stopping:
            try:
                await self.bus.ensure_stream(self.sub.source)
                psub = await self.bus.js.pull_subscribe(
                    "", durable=self.sub.durable, stream=stream, config=self._config()
                )
                break
            except Exception as exc:  # noqa: BLE001 - retry until NATS is there
                log.warning("cannot subscribe %s yet: %s", self.sub.durable, exc)
                await asyncio.sleep(1.0)
        else:
            return
        try:
            await self._consume(psub)
        finally:
            with contextlib.suppress(Exception):  # the connection may be gone already
                await psub.unsubscribe()

    async def _consume(self, psub: Any) -> None:
        while not self._stopping:
            try:
                messages = await psub.fetch(batch=50, timeout=1.0)
            except NatsTimeout:
                continue
            except Exception as exc:  # noqa: BLE001 - reconnects are handled by the client
                log.warning("fetch failed for %s: %s", self.sub.durable, exc)
                await asyncio.sleep(0.5)
                continue
            for msg in messages:
                await self.handle(msg)

    async def handle(self, msg: Msg) -> None:
        """Apply one message exactly once, then ack; never ack a failure."""
        try:
            envelope = EventEnvelope.model_validate_json(msg.data)
            event_class = self._classes.get((envelope.type, envelope.version))
            if event_class is None:
                await msg.ack()  # a type this consumer does not handle
                metrics.CONSUMER_EVENTS.labels(self.sub.durable, "ignored").inc()
                return
            event = event_class.model_validate(envelope.data)
        except ValidationError as exc:
            log.error("unreadable event on %s: %s", msg.subject, exc)
            metrics.CONSUMER_FAILED.labels(self.sub.durable).inc()
            await msg.term()
            return
        try:
            applied = await self.apply(envelope, event)
        except Exception as exc:  # noqa: BLE001 - redeliver with back-off
            metrics.CONSUMER_FAILED.labels(self.sub.durable).inc()
            delivered = msg.metadata.num_delivered
            if delivered >= self.sub.max_deliver:
                log.error(
                    "giving up on event after %d deliveries: %s",
                    delivered,
                    exc,
                    extra={"event_id": str(envelope.event_id), "event_type": envelope.type},
                )
                await msg.term()
            else:
                delay = self.sub.backoff_seconds[min(delivered, len(self.sub.backoff_seconds)) - 1]
                log.warning(
                    "handler failed (delivery %d), retrying in %.0fs: %s",
                    delivered,
                    delay,
                    exc,
                    extra={"event_id": str(envelope.event_id), "event_type": envelope.type},
                )
                await msg.nak(delay=delay)
            return
        await msg.ack()
        outcome = "applied" if applied else "duplicate"
        metrics.CONSUMER_EVENTS.labels(self.sub.durable, outcome).inc()

    async def apply(self, envelope: EventEnvelope, event: Event) -> bool:
        """Run the handler and record the event in the inbox, in one transaction.

        Returns False when the event had already been applied.
        """
        handler = self.sub.handlers[type(event)]
        try:
            async with self.db.transaction() as session:
                if await self._seen(session, envelope):
                    return False
                await handler(session, event, envelope)
                await session.execute(
                    insert(self.inbox).values(
                        consumer=self.sub.durable,
                        event_id=str(envelope.event_id),
                        event_type=envelope.type,
                        processed_at=datetime.now(UTC),
                    )
                )
        except IntegrityError:
            # Either a concurrent delivery of the same event committed first
            # (then it is done), or the handler itself broke a constraint.
            async with self.db.sessions() as session:
                if await self._seen(session, envelope):
                    return False
            raise
        return True

    async def _seen(self, session: AsyncSession, envelope: EventEnvelope) -> bool:
        inbox = self.inbox.c
        found = await session.scalar(
            select(inbox.event_id).where(
                inbox.consumer == self.sub.durable, inbox.event_id == str(envelope.event_id)
            )
        )
        return found is not None
