"""Visit queries: the daily counts are aggregate SQL, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.pagination import paginate
from stations.replicas.models import MemberReplica
from stations.stations.models import Station
from stations.visits.models import Visit


async def station(session: AsyncSession, station_id: str) -> Station | None:
    return await session.get(Station, station_id)


async def member(session: AsyncSession, member_no: str) -> MemberReplica | None:
    return await session.get(MemberReplica, member_no)


async def daily_counts(
    session: AsyncSession, station_id: str, first: date, last: date
) -> Sequence[Any]:
    """Per day: visits, member visits, ratings given and their sum."""
    query = (
        select(
            Visit.day,
            func.count().label("visits"),
            func.count(Visit.member_no).label("member_visits"),
            func.count(Visit.rating).label("ratings"),
            func.coalesce(func.sum(Visit.rating), 0).label("rating_sum"),
        )
        .where(Visit.station_id == station_id, Visit.day.between(first, last))
        .group_by(Visit.day)
    )
    return (await session.execute(query)).all()


async def daily_services(
    session: AsyncSession, station_id: str, first: date, last: date
) -> Sequence[Any]:
    """Per day and service: how many visits used it (the JSON list unnested in SQL)."""
    # Each dialect has its own set-returning function over a JSON array; both are
    # lateral to `visits`, so the count never leaves the database as rows of visits.
    if session.get_bind().dialect.name == "postgresql":
        elements = func.json_array_elements_text(Visit.services).table_valued("value")
    else:
        elements = func.json_each(Visit.services).table_valued("value")
    query = (
        select(Visit.day, elements.c.value.label("service"), func.count().label("visits"))
        .select_from(Visit)
        .join(elements, true())
        .where(Visit.station_id == station_id, Visit.day.between(first, last))
        .group_by(Visit.day, elements.c.value)
    )
    return (await session.execute(query)).all()


async def list_visits(
    session: AsyncSession,
    station_id: str,
    *,
    day: date | None,
    member_no: str | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Visit]:
    query = select(Visit).where(Visit.station_id == station_id)
    if day is not None:
        query = query.where(Visit.day == day)
    if member_no is not None:
        query = query.where(Visit.member_no == member_no)
    return (await session.scalars(paginate(query, Visit.id, cursor, limit))).all()
