"""Enrolment queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.pagination import paginate
from training.courses.models import Course
from training.enrolments.models import Enrolment, EnrolmentStatus
from training.sessions.models import TrainingSession

# The write paths' reads, made once: SQLAlchemy builds and hashes a statement made per call
# every time, which cost more than its round trip (see `gonghui_shared.bus.outbox`).
_BY_ID = select(Enrolment).where(Enrolment.id == bindparam("enrolment_id"))
_BY_ID_FRESH = _BY_ID.execution_options(populate_existing=True)
_OF_PERSON = select(Enrolment).where(
    Enrolment.session_id == bindparam("session_id"), Enrolment.person_key == bindparam("person_key")
)
_ENROLLED = (
    select(func.count())
    .select_from(Enrolment)
    .where(
        Enrolment.session_id == bindparam("session_id"),
        Enrolment.status == EnrolmentStatus.enrolled,
    )
)


async def get(session: AsyncSession, enrolment_id: str, *, fresh: bool = False) -> Enrolment | None:
    query = _BY_ID_FRESH if fresh else _BY_ID
    return await session.scalar(query, {"enrolment_id": enrolment_id})


async def of_person(session: AsyncSession, session_id: str, person_key: str) -> Enrolment | None:
    return await session.scalar(_OF_PERSON, {"session_id": session_id, "person_key": person_key})


async def count_enrolled(session: AsyncSession, session_id: str) -> int:
    found = await session.scalar(_ENROLLED, {"session_id": session_id})
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
