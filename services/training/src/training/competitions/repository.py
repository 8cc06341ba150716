"""Competition queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.pagination import paginate
from training.competitions.models import Competition, CompetitionEntry, CompetitionEvent


async def get(session: AsyncSession, competition_id: str) -> Competition | None:
    return await session.get(Competition, competition_id)


async def get_event(
    session: AsyncSession, event_id: str, *, lock: bool = False
) -> CompetitionEvent | None:
    return await session.get(CompetitionEvent, event_id, with_for_update=lock or None)


async def get_entry(session: AsyncSession, entry_id: str) -> CompetitionEntry | None:
    return await session.get(CompetitionEntry, entry_id)


async def list_competitions(
    session: AsyncSession,
    *,
    within_path: str | None,
    host_paths: Sequence[str] | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Competition]:
    """Competitions hosted inside `within_path`, or (a member's view) hosted at `host_paths`."""
    query = select(Competition)
    if within_path:
        query = query.where(Competition.host_org_path.startswith(within_path, autoescape=True))
    if host_paths is not None:
        query = query.where(Competition.host_org_path.in_(host_paths))
    return (await session.scalars(paginate(query, Competition.id, cursor, limit))).all()


async def events_of(session: AsyncSession, competition_id: str) -> Sequence[CompetitionEvent]:
    return (
        await session.scalars(
            select(CompetitionEvent)
            .where(CompetitionEvent.competition_id == competition_id)
            .order_by(CompetitionEvent.id)
        )
    ).all()


async def trade_taken(session: AsyncSession, competition_id: str, trade: str) -> bool:
    found = await session.scalar(
        select(func.count())
        .select_from(CompetitionEvent)
        .where(CompetitionEvent.competition_id == competition_id, CompetitionEvent.trade == trade)
    )
    return bool(found)


async def entry_counts(session: AsyncSession, event_ids: Sequence[str]) -> dict[str, int]:
    if not event_ids:
        return {}
    rows = await session.execute(
        select(CompetitionEntry.event_id, func.count())
        .where(CompetitionEntry.event_id.in_(event_ids))
        .group_by(CompetitionEntry.event_id)
    )
    return {event_id: int(n) for event_id, n in rows.all()}


async def entries_of(session: AsyncSession, event_id: str) -> Sequence[CompetitionEntry]:
    """An event's entries, best score first (unscored last), then in order of entry."""
    return (
        await session.scalars(
            select(CompetitionEntry)
            .where(CompetitionEntry.event_id == event_id)
            .order_by(
                CompetitionEntry.score.is_(None),
                CompetitionEntry.score.desc(),
                CompetitionEntry.id,
            )
        )
    ).all()


async def results_of(
    session: AsyncSession, event_ids: Sequence[str]
) -> dict[str, list[CompetitionEntry]]:
    """The ranked entries of published events, by event."""
    if not event_ids:
        return {}
    rows = await session.scalars(
        select(CompetitionEntry)
        .where(CompetitionEntry.event_id.in_(event_ids))
        .order_by(CompetitionEntry.rank, CompetitionEntry.id)
    )
    results: dict[str, list[CompetitionEntry]] = {event_id: [] for event_id in event_ids}
    for entry in rows:
        results[entry.event_id].append(entry)
    return results


async def entered(session: AsyncSession, event_id: str, person_key: str) -> bool:
    found = await session.scalar(
        select(func.count())
        .select_from(CompetitionEntry)
        .where(CompetitionEntry.event_id == event_id, CompetitionEntry.person_key == person_key)
    )
    return bool(found)
