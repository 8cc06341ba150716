"""Subsidy ledger queries: totals are aggregate SQL over an org subtree (path prefix)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.db import insert_ignoring_conflicts
from gonghui_shared.pagination import paginate
from stations.stations.models import Station, StationStatus
from stations.subsidies.models import Subsidy


async def station(session: AsyncSession, station_id: str) -> Station | None:
    return await session.get(Station, station_id)


async def get(
    session: AsyncSession, subsidy_id: str, *, for_update: bool = False
) -> Subsidy | None:
    return await session.get(Subsidy, subsidy_id, with_for_update=for_update)


async def for_period(session: AsyncSession, station_id: str, period: str) -> Subsidy | None:
    return await session.scalar(
        select(Subsidy).where(Subsidy.station_id == station_id, Subsidy.period == period)
    )


async def accrual_candidates(session: AsyncSession, within_path: str, period: str) -> Sequence[Any]:
    """Active stations in the subtree with a monthly subsidy and no line for `period` yet."""
    already = exists().where(Subsidy.station_id == Station.id, Subsidy.period == period)
    query = (
        select(Station.id, Station.host_org_path, Station.monthly_subsidy_fen)
        .where(
            Station.host_org_path.startswith(within_path, autoescape=True),
            Station.status == StationStatus.active,
            Station.monthly_subsidy_fen > 0,
            ~already,
        )
        .order_by(Station.id)
    )
    return (await session.execute(query)).all()


async def insert_lines(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert ledger lines, skipping any (station, period) another request inserted first."""
    if rows:
        await session.execute(insert_ignoring_conflicts(session, Subsidy.__table__), rows)


async def count_ids(session: AsyncSession, ids: list[str]) -> tuple[int, int]:
    """How many of these lines exist, and their sum in fen."""
    if not ids:
        return 0, 0
    row = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Subsidy.amount_fen), 0)).where(
                Subsidy.id.in_(ids)
            )
        )
    ).one()
    return int(row[0]), int(row[1])


def _filtered(query: Any, within_path: str | None, first: str | None, last: str | None) -> Any:
    if within_path:
        query = query.where(Subsidy.host_org_path.startswith(within_path, autoescape=True))
    # YYYY-MM strings sort as the months they name.
    if first:
        query = query.where(Subsidy.period >= first)
    if last:
        query = query.where(Subsidy.period <= last)
    return query


async def list_lines(
    session: AsyncSession,
    *,
    within_path: str | None,
    period: str | None,
    status: str | None,
    station_id: str | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Any]:
    """Ledger lines with their station's name and type."""
    query = select(Subsidy, Station.name, Station.station_type).join(
        Station, Station.id == Subsidy.station_id
    )
    query = _filtered(query, within_path, period, period)
    if status:
        query = query.where(Subsidy.status == status)
    if station_id:
        query = query.where(Subsidy.station_id == station_id)
    return (await session.execute(paginate(query, Subsidy.id, cursor, limit))).all()


def _sums() -> list[Any]:
    paid = case((Subsidy.status == "paid", Subsidy.amount_fen), else_=0)
    return [
        func.coalesce(func.sum(Subsidy.amount_fen), 0).label("recorded"),
        func.coalesce(func.sum(paid), 0).label("paid"),
        func.count(func.distinct(Subsidy.station_id)).label("stations"),
        func.count().label("lines"),
    ]


async def totals_per_period(
    session: AsyncSession, within_path: str | None, first: str | None, last: str | None
) -> Sequence[Any]:
    query = _filtered(select(Subsidy.period, *_sums()), within_path, first, last)
    return (await session.execute(query.group_by(Subsidy.period).order_by(Subsidy.period))).all()


async def totals_overall(
    session: AsyncSession, within_path: str | None, first: str | None, last: str | None
) -> Any:
    # Its own query: a station paid in two months counts once over the range.
    return (await session.execute(_filtered(select(*_sums()), within_path, first, last))).one()
