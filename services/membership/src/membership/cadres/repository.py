"""Cadre queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.pagination import paginate
from membership.cadres.models import Cadre
from membership.members.models import Member
from membership.orgs.models import Org


async def get(session: AsyncSession, cadre_id: str) -> Cadre | None:
    return await session.get(Cadre, cadre_id)


async def member_by_no(session: AsyncSession, member_no: str) -> Member | None:
    return await session.scalar(select(Member).where(Member.member_no == member_no))


async def holds_role(session: AsyncSession, org_id: str, member_id: str, role: str) -> bool:
    """Whether the member already holds this role in this org, unended."""
    found = await session.scalar(
        select(func.count())
        .select_from(Cadre)
        .where(
            Cadre.org_id == org_id,
            Cadre.member_id == member_id,
            Cadre.role == role,
            Cadre.ended_on.is_(None),
        )
    )
    return bool(found)


async def names(session: AsyncSession, cadre: Cadre) -> tuple[str, str]:
    """The member's and the org's name, for the response."""
    row = (
        await session.execute(
            select(Member.name, Org.name)
            .select_from(Member)
            .join(Org, Org.id == cadre.org_id)
            .where(Member.id == cadre.member_id)
        )
    ).one()
    return row[0], row[1]


async def list_cadres(
    session: AsyncSession,
    *,
    within_path: str | None,
    org_id: str | None,
    role: str | None,
    active: bool,
    cursor: str | None,
    limit: int,
) -> Sequence[Row[Cadre, str, str]]:
    """Cadres with their member's and org's names; a subtree is a prefix of the cadre's org path."""
    query = (
        select(Cadre, Member.name.label("member_name"), Org.name.label("org_name"))
        .join(Member, Member.id == Cadre.member_id)
        .join(Org, Org.id == Cadre.org_id)
    )
    if within_path:
        query = query.where(Cadre.org_path.startswith(within_path, autoescape=True))
    if org_id:
        query = query.where(Cadre.org_id == org_id)
    if role:
        query = query.where(Cadre.role == role)
    query = query.where(Cadre.ended_on.is_(None) if active else Cadre.ended_on.is_not(None))
    return (await session.execute(paginate(query, Cadre.id, cursor, limit))).all()
