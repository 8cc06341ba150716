"""Queries on the course catalogue."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.pagination import paginate
from training.courses.models import Course


async def get(session: AsyncSession, course_id: str) -> Course | None:
    return await session.get(Course, course_id)


def visible_from(path: str, ancestors: list[str]) -> ColumnElement[bool]:
    """Courses owned by the org at `path`, an ancestor of it, or an org inside its subtree."""
    return or_(
        Course.owner_org_path.in_(ancestors),
        Course.owner_org_path.startswith(path, autoescape=True),
    )


async def list_courses(
    session: AsyncSession,
    *,
    view: tuple[str, list[str]] | None,
    category: str | None,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Course]:
    """`view` is (path, its ancestor paths) to see the catalogue from; None sees every course."""
    query = select(Course)
    if view is not None:
        query = query.where(visible_from(*view))
    if category:
        query = query.where(Course.category == category)
    if q:
        query = query.where(Course.title.contains(q, autoescape=True))
    return (await session.scalars(paginate(query, Course.id, cursor, limit))).all()
