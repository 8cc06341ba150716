"""Dead letter queries: stored by the consumer, read and marked replayed by the endpoints."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Table, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.pagination import paginate


async def store(session: AsyncSession, table: Table, row: dict[str, Any]) -> None:
    """Insert the dead letter; the same event given up on again updates its row instead."""
    if row.get("event_id") is None:
        await session.execute(insert(table).values(**row))
        return
    on_postgres = session.get_bind().dialect.name == "postgresql"
    module = postgresql if on_postgres else sqlite
    greatest = func.greatest if on_postgres else func.max  # SQLite's two-argument max()
    upsert = module.insert(table).values(**row)
    fresh = upsert.excluded
    await session.execute(
        upsert.on_conflict_do_update(
            index_elements=[table.c.consumer, table.c.event_id],
            set_={
                "subject": fresh.subject,
                "stream_seq": fresh.stream_seq,
                "payload": fresh.payload,
                "headers": fresh.headers,
                "error": fresh.error,
                # num_delivered is JetStream's running count: a second give-up on the same
                # message (its term lost) must not count the first deliveries again.
                "attempts": greatest(table.c.attempts, fresh.attempts),
                "last_failed_at": fresh.last_failed_at,
                "replayed_at": None,
                "replayed_by": None,
            },
        )
    )


async def get(session: AsyncSession, table: Table, dead_letter_id: str) -> Row[Any] | None:
    return (await session.execute(select(table).where(table.c.id == dead_letter_id))).first()


async def list_dead_letters(
    session: AsyncSession,
    table: Table,
    *,
    within_path: str | None,
    consumer: str | None,
    replayed: bool | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Row[Any]]:
    """Rows matching the filters, oldest first; `within_path` limits to one org subtree
    (rows without an org, unreadable ones among them, are then left out)."""
    c = table.c
    query = select(table)
    if within_path is not None:
        query = query.where(c.org_path.startswith(within_path, autoescape=True))
    if consumer is not None:
        query = query.where(c.consumer == consumer)
    if replayed is not None:
        query = query.where(c.replayed_at.is_not(None) if replayed else c.replayed_at.is_(None))
    return (await session.execute(paginate(query, c.id, cursor, limit))).all()


async def mark_replayed(
    session: AsyncSession, table: Table, dead_letter_id: str, *, by: str, at: datetime
) -> None:
    await session.execute(
        update(table).where(table.c.id == dead_letter_id).values(replayed_at=at, replayed_by=by)
    )


async def record_replay_failure(
    session: AsyncSession, table: Table, dead_letter_id: str, *, error: str, at: datetime
) -> None:
    await session.execute(
        update(table)
        .where(table.c.id == dead_letter_id)
        .values(error=error, attempts=table.c.attempts + 1, last_failed_at=at)
    )


async def count_unreplayed(session: AsyncSession, table: Table, consumer: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(table)
        .where(table.c.consumer == consumer, table.c.replayed_at.is_(None))
    )
    return int(count or 0)
