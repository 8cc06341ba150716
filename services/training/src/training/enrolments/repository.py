"""Enrolment queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.pagination import paginate
from training.courses.models import Course
from training.enrolments.models import Enrolment, EnrolmentStatus
from training.sessions.models import TrainingSession


async def get(session: AsyncSession, enrolment_id: str, *, fresh: bool = False) -> Enrolment | None:
    query = select(Enrolment).where(Enrolment.id == enrolment_id)
    if fresh:
        query = query.execution_options(populate_existing=True)
    return await session.scalar(query)


async def of_person(session: AsyncSession, session_id: str, person_key: str) -> Enrolment | None:
    return await session.scalar(
        select(Enrolment).where(
            Enrolment.session_id == session_id, Enrolment.person_key == person_key
        )
    )


async def count_enrolled(session: AsyncSession, session_id: str) -> int:
    found = await session.scalar(
        select(func.count())
        .select_from(Enrolment)
        .where(Enrolment.session_id == session_id, Enrolment.status == EnrolmentStatus.enrolled)
    )
    return int(found or 0)


async def first_waitlisted(session: AsyncSession, session_id: str) -> Enrolment | None:
    """The next in line: waitlisted earliest, ties broken by id (UUIDv7, creation order)."""
    return await session.scalar(
        select(Enrolment)
        .where(Enrolment.session_id == session_id, Enrolment.status == EnrolmentStatus.waitlisted)
        .order_by(Enrolment.waitlisted_at, Enrolment.id)
        .limit(1)
    )


async def list_for_session(
    session: AsyncSession,
    session_id: str,
    *,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Enrolment]:
    query = select(Enrolment).where(Enrolment.session_id == session_id)
    if status:
        query = query.where(Enrolment.status == status)
    return (await session.scalars(paginate(query, Enrolment.id, cursor, limit))).all()


async def list_across_sessions(
    session: AsyncSession,
    *,
    within_path: str | None,
    member_no: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Row[Enrolment, TrainingSession, str]]:
    """Enrolments with their session and course title, in any session hosted within a path."""
    query = (
        select(Enrolment, TrainingSession, Course.title)
        .join(TrainingSession, TrainingSession.id == Enrolment.session_id)
        .join(Course, Course.id == TrainingSession.course_id)
    )
    if within_path:
        query = query.where(TrainingSession.host_org_path.startswith(within_path, autoescape=True))
    if member_no:
        query = query.where(Enrolment.member_no == member_no)
    if status:
        query = query.where(Enrolment.status == status)
    return (await session.execute(paginate(query, Enrolment.id, cursor, limit))).all()
