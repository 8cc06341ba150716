"""Admission queries: rosters, applications, the member number sequence, members by number."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.db import reserve_block
from gonghui_shared.pagination import paginate
from membership.admissions.models import (
    PENDING,
    Application,
    ApplicationStatus,
    MemberNumberSequence,
    Roster,
)
from membership.members.models import Member, MemberStatus

# ---------------------------------------------------------------- rosters


async def get_roster(session: AsyncSession, roster_id: str) -> Roster | None:
    return await session.get(Roster, roster_id)


async def list_rosters(
    session: AsyncSession, *, within_path: str | None, cursor: str | None, limit: int
) -> Sequence[Roster]:
    query = select(Roster)
    if within_path:
        query = query.where(Roster.org_path.startswith(within_path, autoescape=True))
    return (await session.scalars(paginate(query, Roster.id, cursor, limit))).all()


async def status_counts(
    session: AsyncSession, roster_ids: Sequence[str]
) -> dict[str, dict[str, int]]:
    """roster id -> application status -> count, for the given rosters."""
    if not roster_ids:
        return {}
    rows = await session.execute(
        select(Application.roster_id, Application.status, func.count())
        .where(Application.roster_id.in_(roster_ids))
        .group_by(Application.roster_id, Application.status)
    )
    counts: dict[str, dict[str, int]] = {}
    for roster_id, status, n in rows:
        if roster_id is not None:
            counts.setdefault(roster_id, {})[status] = n
    return counts


# ---------------------------------------------------------------- applications


async def get_application(
    session: AsyncSession, application_id: str, *, for_update: bool = False
) -> Application | None:
    """One application; `for_update` locks its row (PostgreSQL) until the transaction ends."""
    query = select(Application).where(Application.id == application_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


async def applications_for_update(session: AsyncSession, ids: Sequence[str]) -> list[Application]:
    """The applications with these ids, locked in id order so concurrent batches cannot deadlock."""
    rows = await session.scalars(
        select(Application)
        .where(Application.id.in_(ids))
        .order_by(Application.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def roster_applications_for_update(
    session: AsyncSession,
    roster_id: str,
    status: ApplicationStatus,
    *,
    after_id: str | None = None,
    limit: int | None = None,
) -> list[Application]:
    """The roster's applications in `status`, locked, in id order; `after_id` and `limit`
    take them a batch at a time."""
    query = select(Application).where(
        Application.roster_id == roster_id, Application.status == status
    )
    if after_id is not None:
        query = query.where(Application.id > after_id)
    query = query.order_by(Application.id).limit(limit)
    rows = await session.scalars(query.with_for_update().execution_options(populate_existing=True))
    return list(rows)


async def active_members_among(session: AsyncSession, id_number_hashes: Sequence[str]) -> set[str]:
    """Which of these people (by ID number hash) are active members already."""
    found: set[str] = set()
    # A bound parameter each: a few hundred a query, far below the drivers' limits.
    for start in range(0, len(id_number_hashes), _LOOKUP_BATCH):
        batch = id_number_hashes[start : start + _LOOKUP_BATCH]
        found.update(
            await session.scalars(
                select(Member.id_number_hash).where(
                    Member.id_number_hash.in_(batch), Member.status == MemberStatus.active
                )
            )
        )
    return found


_LOOKUP_BATCH = 500


async def reserve_member_sequences(
    session: AsyncSession, county_code: str, year: int, count: int
) -> int:
    """Take `count` consecutive sequence values of (county, year); returns the last one."""
    table = cast(Table, MemberNumberSequence.__table__)
    return await reserve_block(session, table, count, county_code=county_code, year=year)


async def list_applications(
    session: AsyncSession,
    *,
    within_path: str | None,
    status: str | None,
    roster_id: str | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Application]:
    query = select(Application)
    if within_path:
        query = query.where(Application.org_path.startswith(within_path, autoescape=True))
    if status:
        query = query.where(Application.status == status)
    if roster_id:
        query = query.where(Application.roster_id == roster_id)
    return (await session.scalars(paginate(query, Application.id, cursor, limit))).all()


async def pending_application_of(session: AsyncSession, id_number_hash: str) -> Application | None:
    return await session.scalar(
        select(Application)
        .where(Application.id_number_hash == id_number_hash, Application.status.in_(PENDING))
        .limit(1)
    )


async def pending_application_by(session: AsyncSession, submitted_by: str) -> str | None:
    """The id of an application awaiting a decision that `submitted_by` submitted, if any."""
    return await session.scalar(
        select(Application.id)
        .where(Application.status.in_(PENDING), Application.submitted_by == submitted_by)
        .limit(1)
    )


# ---------------------------------------------------------------- members


async def active_member_of(session: AsyncSession, id_number_hash: str) -> Member | None:
    return await session.scalar(
        select(Member)
        .where(Member.id_number_hash == id_number_hash, Member.status == MemberStatus.active)
        .limit(1)
    )


async def member_by_no(session: AsyncSession, member_no: str) -> Member | None:
    return await session.scalar(select(Member).where(Member.member_no == member_no))


async def next_member_sequence(session: AsyncSession, county_code: str, year: int) -> int:
    """Take the next sequence value of (county, year); concurrent approvals in one county
    queue on the counter row and never share a number."""
    return await reserve_member_sequences(session, county_code, year, 1)
