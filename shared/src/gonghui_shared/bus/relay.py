"""The outbox relay: publishes committed events to JetStream, in order, at least once.

Each event is published with `Nats-Msg-Id` = its event id, so JetStream drops
a re-publish (after a crash between publishing and stamping `sent_at`) within
the stream's duplicate window; consumers' inboxes catch anything older.

Publishes are pipelined (see `publish_batch`): `sent_at` is stamped only on the
run of acked events from the first of a batch, so an event never counts as sent
while one before it may be missing.

The relay claims *unsent rows*, never "rows after the last position seen":
on PostgreSQL a lower position can commit after a higher one, and reading by
position would skip it. Only one relay per service publishes at a time
(a PostgreSQL advisory lock), which keeps per-aggregate order.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, Select, Table, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gonghui_shared import metrics
from gonghui_shared.bus.connection import Bus
from gonghui_shared.bus.outbox import OUTBOX_WRITTEN
from gonghui_shared.contracts import subject_for
from gonghui_shared.db import Database
from gonghui_shared.tracing import Tracing

log = logging.getLogger(__name__)

# Back-off between failed rounds: 0.4 s, 0.8 s… up to this, then steadily this (the relay
# never gives up: it resumes by itself when NATS or the database is back).
MAX_BACKOFF_SECONDS = 10.0

# The longest we expect between a publish that may have reached JetStream and its
# re-publish: while the relay runs it retries within MAX_BACKOFF_SECONDS, so this is the
# relay's (or NATS's) outage we plan for. The stream's duplicate window is longer
# (`connection.DUPLICATE_WINDOW_SECONDS`, a test holds them apart); a re-publish after
# a longer outage may be stored twice, and the consumers' inboxes drop the copy.
RETRY_HORIZON_SECONDS = 6 * 3600.0

# Publishes awaiting their acks at once. JetStream with `sync_interval: always` fsyncs each
# message before acking it: one at a time the relay waits a round trip and an fsync per
# event, pipelined the server works through a queue. Bounded, so a slow server holds at
# most this many messages of ours in the client's buffers.
MAX_IN_FLIGHT = 256

# While a long backlog drains, the outbox is counted (for the backlog gauge) at most this
# often: counting a million unsent rows on every batch would cost more than publishing them.
BACKLOG_COUNT_SECONDS = 5.0


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        bus: Bus,
        outbox: Table,
        *,
        service: str,
        batch_size: int = 500,
        max_in_flight: int = MAX_IN_FLIGHT,
        poll_seconds: float = 1.0,
        tracing: Tracing | None = None,
    ) -> None:
        self.db = db
        self.bus = bus
        self.outbox = outbox
        self.service = service
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        self.poll_seconds = poll_seconds
        self.tracing = tracing or Tracing()
        self._wake = asyncio.Event()
        self._resume = asyncio.Event()  # NATS is back: cut a back-off short
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._lock_conn: AsyncConnection | None = None
        self._failures = 0
        self._backlog = 0  # the gauge's value, kept between counts of the outbox
        self._next_backlog_count = 0.0  # monotonic time of the next count

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        self.db.after_commit(self.wake)
        self.bus.reconnect_listeners.append(self._resume.set)
        self._task = asyncio.create_task(self.run(), name=f"{self.service}-outbox-relay")

    def wake(self, session: AsyncSession | None = None) -> None:
        """Called after each commit; only a commit that wrote an event wakes the relay."""
        if session is None or session.info.get(OUTBOX_WRITTEN):
            self._wake.set()

    async def stop(self, drain_seconds: float = 5.0) -> None:
        """Stop, after one last attempt to publish what is committed."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, drain_seconds)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        await self._release_lead()

    async def _release_lead(self) -> None:
        """Give up the advisory lock by discarding its connection: closed, a pooled
        connection would go back to the pool still holding the lock (it is the session's),
        and no relay, this one included, could take it again."""
        if self._lock_conn is not None:
            conn, self._lock_conn = self._lock_conn, None
            with contextlib.suppress(Exception):  # a broken connection cannot close cleanly
                await conn.invalidate()
                await conn.close()

    # -- the loop ------------------------------------------------------------

    async def run(self) -> None:
        await self.bus.connected()
        await self._ensure_stream()
        while True:
            published = 0
            # Cleared before the attempt, not in _back_off: NATS may come back while a
            # publish is still timing out, and that reconnect must still end the back-off.
            self._resume.clear()
            try:
                if await self._lead():
                    published = await self.publish_batch()
                    self._failures = 0
            except Exception as exc:  # noqa: BLE001 - keep relaying whatever failed
                self._failures += 1
                log.warning("outbox relay error: %s", exc, extra={"service": self.service})
                # The lock's connection may be the one that broke (a database outage):
                # the server then released the lock, and holding on to a dead connection
                # would let this relay publish beside the one that took it over.
                await self._release_lead()
                if self._stopping:
                    return  # what is left stays in the outbox for the next start
                await self._back_off(min(0.2 * 2**self._failures, MAX_BACKOFF_SECONDS))
                continue
            if self._stopping and published == 0:
                return
            if published < self.batch_size:
                await self._idle()

    async def _back_off(self, seconds: float) -> None:
        """Sleep after a failure, but no longer than until NATS reconnects: otherwise the
        events of a long outage would wait out the full back-off after NATS is back."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._resume.wait(), seconds)

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
        self._wake.clear()

    async def _ensure_stream(self) -> None:
        while True:
            try:
                await self.bus.ensure_stream(self.service)
                return
            except Exception as exc:  # noqa: BLE001
                log.warning("cannot set up stream yet: %s", exc)
                await asyncio.sleep(1.0)

    async def _lead(self) -> bool:
        """True if this process may publish (always on SQLite: one process owns the file)."""
        if self.db.dialect != "postgresql":
            return True
        if self._lock_conn is not None and not self._lock_conn.closed:
            return True
        conn = await self.db.engine.connect()
        got = await conn.scalar(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": _lock_key(f"outbox:{self.service}")}
        )
        await conn.commit()
        if got:
            self._lock_conn = conn
            log.info("this instance now relays the outbox", extra={"service": self.service})
            return True
        await conn.close()
        return False

    # -- one batch -----------------------------------------------------------

    async def publish_batch(self) -> int:
        """Publish up to `batch_size` unsent events in position order; return how many.

        The publishes are pipelined (up to `max_in_flight` awaiting their acks), and
        `sent_at` is stamped only on the events acked without a gap from the first: an
        event whose publish failed, and every event after it, stay unsent and are
        published again. Those of them JetStream had stored are dropped then as
        duplicates (same `Nats-Msg-Id`); one stored ahead of the failed event is held
        back by consumers until its predecessor arrives (they apply each aggregate by
        `aggregate_seq`), so per-aggregate order holds either way.
        """
        rows = await self._claim()
        backlog = await self._backlog_before(len(rows))
        metrics.OUTBOX_BACKLOG.labels(self.service).set(backlog)
        if not rows:
            return 0
        acked, failure = await self._publish_in_order(rows)
        if failure is not None:
            await self._record_failure(rows[acked], failure)
            if not acked:
                raise failure
        await self._mark_sent([row.position for row in rows[:acked]])
        metrics.OUTBOX_PUBLISHED.labels(self.service).inc(acked)
        # Down at once, not at the next round (events committed meanwhile are counted then).
        self._backlog = max(backlog - acked, 0)
        metrics.OUTBOX_BACKLOG.labels(self.service).set(self._backlog)
        return acked

    async def _publish_in_order(self, rows: Sequence[Any]) -> tuple[int, Exception | None]:
        """Publish `rows` in order; return how many from the first were acked without a
        gap, and the failure that ended the run of acks (None if all were acked)."""
        # The first goes alone: it finds NATS down without queueing a whole batch behind
        # it, and sets up the connection's reply subscription, so the publishes below
        # reach the wire in the order their tasks are created (each writes its message
        # before its first pause, and tasks start in creation order).
        try:
            await self._publish(rows[0])
        except Exception as exc:  # noqa: BLE001 - reported to the caller
            return 0, exc
        acked = 1
        in_flight: deque[asyncio.Task[None]] = deque()
        try:
            for row in rows[1:]:
                if len(in_flight) >= self.max_in_flight:
                    await in_flight.popleft()
                    acked += 1
                in_flight.append(asyncio.create_task(self._publish(row)))
            while in_flight:
                await in_flight.popleft()
                acked += 1
        except Exception as exc:  # noqa: BLE001 - the rest is published again next round
            return acked, exc
        finally:
            # After a failure nothing more is sent; the acks still awaited are not
            # needed (those events stay unsent either way), so stop waiting for them.
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
        return acked, None

    async def _publish(self, row: Any) -> None:
        subject = subject_for(row.event_type, row.event_version, self.bus.root)
        with self.tracing.producing(subject, row.event_id, row.headers) as headers:
            ack = await self.bus.js.publish(
                subject,
                row.payload.encode(),
                timeout=self.bus.request_timeout,
                headers={**headers, "Nats-Msg-Id": row.event_id},
            )
        if ack.duplicate:
            metrics.OUTBOX_DUPLICATES.labels(self.service).inc()

    async def _backlog_before(self, claimed: int) -> int:
        """The unsent events, for the backlog gauge, without counting a long backlog on
        every round: a short claim saw every unsent row; during a drain the outbox is
        counted every BACKLOG_COUNT_SECONDS, and between counts the gauge goes down by
        what was published (events committed meanwhile show at the next count)."""
        if claimed < self.batch_size:
            return claimed
        now = time.monotonic()
        if now >= self._next_backlog_count:
            self._next_backlog_count = now + BACKLOG_COUNT_SECONDS
            self._backlog = await self.backlog()
        return max(self._backlog, claimed)

    async def _claim(self) -> Sequence[Any]:
        async with self.db.transaction() as session:
            result = await session.execute(unsent_batch(self.outbox, self.batch_size))
            return result.all()

    async def _mark_sent(self, positions: list[int]) -> None:
        if not positions:
            return
        async with self.db.transaction() as session:
            await session.execute(
                update(self.outbox)
                .where(self.outbox.c.position.in_(positions))
                .values(sent_at=datetime.now(UTC))
            )

    async def _record_failure(self, row: Row[Any], exc: Exception) -> None:
        log.warning(
            "publish failed: %s",
            exc,
            extra={"event_id": row.event_id, "event_type": row.event_type},
        )
        async with self.db.transaction() as session:
            await session.execute(
                update(self.outbox)
                .where(self.outbox.c.position == row.position)
                .values(attempts=self.outbox.c.attempts + 1, last_error=str(exc)[:500])
            )

    async def backlog(self) -> int:
        async with self.db.sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(self.outbox).where(self.outbox.c.sent_at.is_(None))
            )
            return int(count or 0)


def unsent_batch(outbox: Table, size: int) -> Select[Any]:
    """The oldest `size` unsent events, in commit order."""
    o = outbox.c
    return (
        select(o.position, o.event_id, o.event_type, o.event_version, o.payload, o.headers)
        .where(o.sent_at.is_(None))
        # In the unsent index's own order (sent_at is NULL throughout, so this is position
        # order): ordered by position alone, PostgreSQL walked the primary key past every
        # sent row when a long backlog was mostly unsent (282 ms a batch with 1.3 million
        # unsent behind 700,000 sent, against 0.5 ms this way).
        .order_by(o.sent_at, o.position)
        .limit(size)
    )
