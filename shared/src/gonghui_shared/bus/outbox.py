"""Writing events: the outbox row goes into the caller's transaction.

Each event is numbered within its aggregate (`aggregate_seq` 1, 2, 3…) in the
same transaction, from the `outbox_sequences` counter. On PostgreSQL the counter
row stays locked until the transaction ends, so a concurrent writer to the same
aggregate waits and takes the next number after it commits: the numbers follow
commit order, which is the order the relay publishes in.

With tracing on, each row also keeps the trace context it was written in
(`headers`), which the relay publishes with the event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.bus.tables import OUTBOX_SEQUENCES, companion
from gonghui_shared.contracts import Event, EventEnvelope, envelope_for
from gonghui_shared.logging import request_id_var
from gonghui_shared.tracing import current_trace_headers

# Set in session.info when an event was recorded, so the commit wakes the relay.
OUTBOX_WRITTEN = "gonghui.outbox_written"

# Aggregates per counter upsert: well under both databases' limit on bound parameters.
_SEQUENCE_CHUNK = 500


async def reserve_sequences(
    session: AsyncSession, outbox: Table, counts: Mapping[str, int]
) -> dict[str, int]:
    """Reserve `counts[aggregate]` numbers for each aggregate; return the last one reserved.

    One `INSERT … ON CONFLICT DO UPDATE … RETURNING` per chunk. Aggregates are
    taken in sorted order, so two bulk writers lock their counter rows in the same
    order and cannot deadlock each other.
    """
    sequences = companion(outbox, OUTBOX_SEQUENCES)
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    ordered = sorted(counts)
    last: dict[str, int] = {}
    for start in range(0, len(ordered), _SEQUENCE_CHUNK):
        chunk = ordered[start : start + _SEQUENCE_CHUNK]
        upsert = module.insert(sequences).values(
            [{"aggregate_id": a, "last_seq": counts[a]} for a in chunk]
        )
        upsert = upsert.on_conflict_do_update(
            index_elements=[sequences.c.aggregate_id],
            set_={"last_seq": sequences.c.last_seq + upsert.excluded.last_seq},
        ).returning(sequences.c.aggregate_id, sequences.c.last_seq)
        for aggregate_id, last_seq in (await session.execute(upsert)).all():
            last[aggregate_id] = last_seq
    return last


async def record_event(
    session: AsyncSession,
    outbox: Table,
    event: Event,
    *,
    aggregate_id: str,
    org_path: str | None = None,
) -> EventEnvelope:
    """Add `event` to the outbox in the session's transaction; it is published after commit."""
    seq = (await reserve_sequences(session, outbox, {aggregate_id: 1}))[aggregate_id]
    envelope = envelope_for(
        event,
        aggregate_id=aggregate_id,
        aggregate_seq=seq,
        org_path=org_path,
        request_id=request_id_var.get(),
    )
    await session.execute(
        insert(outbox).values(
            event_id=str(envelope.event_id),
            event_type=envelope.type,
            event_version=envelope.version,
            aggregate_id=aggregate_id,
            aggregate_seq=seq,
            payload=envelope.model_dump_json(),
            created_at=datetime.now(UTC),
            attempts=0,
            headers=current_trace_headers(),
        )
    )
    session.info[OUTBOX_WRITTEN] = True
    return envelope


class OutboxItem(NamedTuple):
    """One event for `record_events`, with the routing facts `record_event` takes as keywords."""

    event: Event
    aggregate_id: str
    org_path: str | None = None


async def record_events(
    session: AsyncSession,
    outbox: Table,
    items: Iterable[OutboxItem | tuple[Event, str, str | None]],
) -> list[EventEnvelope]:
    """Add many events to the outbox with one executemany insert (bulk imports write thousands)."""
    listed = [OutboxItem(*item) for item in items]
    if not listed:
        return []
    counts = Counter(item.aggregate_id for item in listed)
    last = await reserve_sequences(session, outbox, counts)
    next_seq = {aggregate: last[aggregate] - n + 1 for aggregate, n in counts.items()}
    request_id = request_id_var.get()
    trace_headers = current_trace_headers()
    now = datetime.now(UTC)
    envelopes: list[EventEnvelope] = []
    rows: list[dict[str, object]] = []
    for event, aggregate_id, org_path in listed:
        seq = next_seq[aggregate_id]
        next_seq[aggregate_id] = seq + 1
        envelope = envelope_for(
            event,
            aggregate_id=aggregate_id,
            aggregate_seq=seq,
            org_path=org_path,
            request_id=request_id,
            occurred_at=now,
        )
        envelopes.append(envelope)
        rows.append(
            {
                "event_id": str(envelope.event_id),
                "event_type": envelope.type,
                "event_version": envelope.version,
                "aggregate_id": aggregate_id,
                "aggregate_seq": seq,
                "payload": envelope.model_dump_json(),
                "created_at": now,
                "attempts": 0,
                "headers": trace_headers,
            }
        )
    await session.execute(insert(outbox), rows)
    session.info[OUTBOX_WRITTEN] = True
    return envelopes
