"""Publishing from stations: every event goes through the outbox, in the caller's transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.bus import record_event
from gonghui_shared.contracts import Event, EventEnvelope
from stations.base import outbox


async def publish(
    session: AsyncSession, event: Event, *, aggregate_id: str, org_path: str | None
) -> EventEnvelope:
    return await record_event(session, outbox, event, aggregate_id=aggregate_id, org_path=org_path)
