"""Writing events: the outbox row goes into the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.contracts import Event, EventEnvelope, envelope_for
from gonghui_shared.logging import request_id_var

# Set in session.info when an event was recorded, so the commit wakes the relay.
OUTBOX_WRITTEN = "gonghui.outbox_written"


async def record_event(
    session: AsyncSession,
    outbox: Table,
    event: Event,
    *,
    aggregate_id: str,
    org_path: str | None = None,
) -> EventEnvelope:
    """Add `event` to the outbox in the session's transaction; it is published after commit."""
    envelope = envelope_for(
        event, aggregate_id=aggregate_id, org_path=org_path, request_id=request_id_var.get()
    )
    await session.execute(
        insert(outbox).values(
            event_id=str(envelope.event_id),
            event_type=envelope.type,
            event_version=envelope.version,
            aggregate_id=aggregate_id,
            payload=envelope.model_dump_json(),
            created_at=datetime.now(UTC),
            attempts=0,
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
    request_id = request_id_var.get()
    now = datetime.now(UTC)
    envelopes: list[EventEnvelope] = []
    rows: list[dict[str, object]] = []
    for event, aggregate_id, org_path in items:
        envelope = envelope_for(
            event,
            aggregate_id=aggregate_id,
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
                "payload": envelope.model_dump_json(),
                "created_at": now,
                "attempts": 0,
            }
        )
    if rows:
        await session.execute(insert(outbox), rows)
        session.info[OUTBOX_WRITTEN] = True
    return envelopes
