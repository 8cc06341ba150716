"""Org queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.pagination import paginate
from membership.orgs.models import Org


async def get(session: AsyncSession, org_id: str) -> Org | None:
    return await session.get(Org, org_id)


async def name_taken(session: AsyncSession, parent_id: str | None, name: str) -> bool:
    found = await session.scalar(
        select(func.count()).select_from(Org).where(Org.parent_id == parent_id, Org.name == name)
    )
    return bool(found)


async def territorial_union_at(
    session: AsyncSession, region_code: str, org_type: str
) -> Org | None:
    return await session.scalar(
        select(Org).where(Org.region_code == region_code, Org.org_type == org_type).limit(1)
    )


async def list_orgs(
    session: AsyncSession,
    *,
    within_path: str | None,
    parent_id: str | None,
    org_type: str | None,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Org]:
    query = select(Org)
    if within_path:
        query = query.where(Org.path.startswith(within_path, autoescape=True))
    if parent_id:
        query = query.where(Org.parent_id == parent_id)
    if org_type:
        query = query.where(Org.org_type == org_type)
    if q:
        query = query.where(Org.name.contains(q, autoescape=True))
    return (await session.scalars(paginate(query, Org.id, cursor, limit))).all()
