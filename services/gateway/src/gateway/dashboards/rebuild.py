"""Rebuild the dashboards: empty the read models, replay the streams' history into them.

The replay reads each source's JetStream stream with an ephemeral ordered consumer from
the first sequence up to the last one present when the rebuild started, and applies every
event with the same handlers and the same inbox as the live consumers. That makes it safe
while the gateway runs: an event the live consumer applies meanwhile is in the inbox, so
the replay skips it, and the other way round; the handlers do not depend on order.

Events are applied in batches of `batch` per transaction (a county's history is a few
hundred thousand events); a batch that fails is retried one event per transaction, and an
event that still fails is counted and logged, as the live consumer would dead-letter it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import DeliverPolicy
from pydantic import ValidationError
from sqlalchemy import Table, delete, insert, select

from gateway.dashboards import repository
from gateway.dashboards.handlers import BATCHES, DURABLE, SOURCES, handlers_for
from gonghui_shared.bus import Bus, EventConsumer, Subscription, stream_name
from gonghui_shared.contracts import Event, EventEnvelope
from gonghui_shared.db import Database

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # source, messages read, messages to read


@dataclass
class SourceReplay:
    source: str
    to_read: int = 0  # messages in the stream when the rebuild started
    read: int = 0
    applied: int = 0
    duplicates: int = 0  # already applied (by the live consumer meanwhile)
    ignored: int = 0  # types the dashboards have no handler for
    failed: int = 0
    seconds: float = 0.0


@dataclass
class RebuildReport:
    sources: list[SourceReplay] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.sources)


@dataclass
class _Item:
    envelope: EventEnvelope
    event: Event


class _Replayer:
    def __init__(self, db: Database, bus: Bus, inbox: Table, source: str) -> None:
        self.db = db
        self.inbox = inbox
        self.durable = DURABLE[source]
        self.handlers = handlers_for(source)
        self.classes = {(cls.type, cls.version): cls for cls in self.handlers}
        # The live consumer's own apply(): handler and inbox row in one transaction.
        self.single = EventConsumer(
            db,
            bus,
            inbox,
            Subscription(durable=self.durable, source=source, handlers=self.handlers),
        )

    def parse(self, data: bytes, report: SourceReplay) -> _Item | None:
        try:
            envelope = EventEnvelope.model_validate_json(data)
            cls = self.classes.get((envelope.type, envelope.version))
            if cls is None:
                report.ignored += 1
                return None
            return _Item(envelope, cls.model_validate(envelope.data))
        except ValidationError as exc:
            log.error("unreadable event skipped: %s", exc)
            report.failed += 1
            return None

    async def apply(self, items: list[_Item], report: SourceReplay) -> None:
        """Apply a batch in one transaction; on failure, one event per transaction."""
        if not items:
            return
        try:
            applied, duplicates = await self._batch(items)
        except Exception as exc:  # noqa: BLE001 - retried event by event below
            log.warning("batch of %d failed (%s); applying one by one", len(items), exc)
            for item in items:
                try:
                    if await self.single.apply(item.envelope, item.event):
                        report.applied += 1
                    else:
                        report.duplicates += 1
                except Exception as exc:  # noqa: BLE001 - counted, as a dead letter
                    report.failed += 1
                    log.error(
                        "event failed in the rebuild: %s",
                        exc,
                        extra={"event_id": str(item.envelope.event_id)},
                    )
            return
        report.applied += applied
        report.duplicates += duplicates

    async def _batch(self, items: list[_Item]) -> tuple[int, int]:
        ids = [str(item.envelope.event_id) for item in items]
        inbox = self.inbox.c
        async with self.db.transaction() as session:
            seen = set(
                await session.scalars(
                    select(inbox.event_id).where(
                        inbox.consumer == self.durable, inbox.event_id.in_(ids)
                    )
                )
            )
            fresh: list[_Item] = []
            for item, event_id in zip(items, ids, strict=True):
                if event_id not in seen:
                    seen.add(event_id)  # the same event twice in the stream: once is enough
                    fresh.append(item)
            # The live consumers' batch hooks: the same locks, the counters folded.
            await BATCHES.before(session, [(item.envelope, item.event) for item in fresh])
            for item in fresh:
                await self.handlers[type(item.event)](session, item.event, item.envelope)
            await BATCHES.after(session)
            rows = []
            for item in fresh:
                event_id = str(item.envelope.event_id)
                rows.append(
                    {
                        "consumer": self.durable,
                        "event_id": event_id,
                        "event_type": item.envelope.type,
                        "processed_at": datetime.now(UTC),
                    }
                )
            if rows:
                await session.execute(insert(self.inbox), rows)
        return len(rows), len(items) - len(rows)


async def empty(db: Database, inbox: Table) -> None:
    """Delete the read models and the dashboard consumers' inbox rows, in one transaction."""
    async with db.transaction() as session:
        await repository.empty_read_models(session)
        await session.execute(delete(inbox).where(inbox.c.consumer.in_(list(DURABLE.values()))))


async def replay(
    db: Database,
    bus: Bus,
    inbox: Table,
    source: str,
    *,
    batch: int = 500,
    idle_seconds: float = 5.0,
    progress: Progress | None = None,
) -> SourceReplay:
    """Apply `source`'s stream, from its first message to its last one now."""
    report = SourceReplay(source=source)
    started = time.monotonic()
    stream = await bus.ensure_stream(source, update=False)
    state = (await bus.js.stream_info(stream)).state
    report.to_read, last = state.messages, state.last_seq
    if not report.to_read:
        return report
    replayer = _Replayer(db, bus, inbox, source)
    sub = await bus.js.subscribe(
        f"{bus.root}.{source}.>",
        stream=stream_name(bus.root, source),
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
    )
    items: list[_Item] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=idle_seconds)
            except (TimeoutError, NatsTimeout):
                # Messages removed by the stream's limits since we looked: stop at the gap.
                log.warning(
                    "no message for %.0fs; stopping %s at %d", idle_seconds, source, report.read
                )
                break
            report.read += 1
            item = replayer.parse(msg.data, report)
            if item is not None:
                items.append(item)
            sequence = msg.metadata.sequence.stream
            if len(items) >= batch or sequence >= last:
                await replayer.apply(items, report)
                items = []
                if progress is not None:
                    progress(source, report.read, report.to_read)
            if sequence >= last:
                break
        await replayer.apply(items, report)
    finally:
        await sub.unsubscribe()
    report.seconds = time.monotonic() - started
    return report


async def rebuild(
    db: Database,
    bus: Bus,
    inbox: Table,
    *,
    batch: int = 500,
    idle_seconds: float = 5.0,
    progress: Progress | None = None,
) -> RebuildReport:
    """Empty the read models, then replay membership's, training's and stations' streams."""
    await empty(db, inbox)
    report = RebuildReport()
    for source in SOURCES:
        report.sources.append(
            await replay(
                db, bus, inbox, source, batch=batch, idle_seconds=idle_seconds, progress=progress
            )
        )
    return report
