"""Audit log queries (reads only: nothing here or anywhere updates or deletes a row)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Table, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.pagination import paginate


async def list_entries(
    session: AsyncSession,
    table: Table,
    *,
    within_path: str | None,
    actor: str | None,
    route: str | None,
    since: datetime | None,
    until: datetime | None,
    personal_data: bool | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Row[Any]]:
    """Rows matching the filters, oldest first; `within_path` limits to one org subtree."""
    c = table.c
    query = select(table)
    if within_path is not None:
        query = query.where(
            or_(
                c.org_path.startswith(within_path, autoescape=True),
                c.actor_org_path.startswith(within_path, autoescape=True),
            )
        )
    if actor is not None:
        query = query.where(c.subject == actor)
    if route is not None:
        query = query.where(c.route == route)
    if since is not None:
        query = query.where(c.at >= since)
    if until is not None:
        query = query.where(c.at < until)
    if personal_data is not None:
        query = query.where(c.personal_data == personal_data)
    return (await session.execute(paginate(query, c.id, cursor, limit))).all()
