"""Queries of completion and certificates."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Row, Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.db import reserve_block
from gonghui_shared.pagination import paginate
from training.attendance.models import Attendance
from training.budget.models import BudgetEntry, BudgetKind
from training.certificates.models import Certificate, CertificateNumberSequence
from training.courses.models import Course
from training.enrolments.models import Enrolment, EnrolmentStatus
from training.replicas.models import OrgReplica
from training.sessions.models import TrainingSession

# Keeps IN lists well under SQLite's and asyncpg's parameter limits.
_BATCH = 500


def _batches(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _BATCH):
        yield values[start : start + _BATCH]


# ---------------------------------------------------------------- completion


async def enrolled_with_attendance(
    session: AsyncSession, session_id: str, first_day: date, last_day: date
) -> Sequence[Row[Any]]:
    """Every `enrolled` enrolment of the session with the number of session days it attended.

    One grouped count, not a query per enrolment: a county session can have hundreds.
    """
    days = (
        select(Attendance.enrolment_id, func.count().label("attended"))
        .where(
            Attendance.session_id == session_id,
            Attendance.day >= first_day,
            Attendance.day <= last_day,
        )
        .group_by(Attendance.enrolment_id)
        .subquery()
    )
    query = (
        select(
            Enrolment.id,
            Enrolment.person_key,
            Enrolment.member_no,
            Enrolment.name,
            Enrolment.worker_category,
            func.coalesce(days.c.attended, 0).label("attended"),
        )
        .outerjoin(days, days.c.enrolment_id == Enrolment.id)
        .where(Enrolment.session_id == session_id, Enrolment.status == EnrolmentStatus.enrolled)
        .order_by(Enrolment.id)
    )
    return (await session.execute(query)).all()


async def close_enrolments(
    session: AsyncSession, session_id: str, completed_ids: Sequence[str]
) -> None:
    """Listed enrolled enrolments become `completed`, the other enrolled ones `not_completed`."""
    for batch in _batches(completed_ids):
        await session.execute(
            update(Enrolment)
            .where(
                Enrolment.session_id == session_id,
                Enrolment.status == EnrolmentStatus.enrolled,
                Enrolment.id.in_(batch),
            )
            .values(status=EnrolmentStatus.completed)
            .execution_options(synchronize_session=False)
        )
    await session.execute(
        update(Enrolment)
        .where(Enrolment.session_id == session_id, Enrolment.status == EnrolmentStatus.enrolled)
        .values(status=EnrolmentStatus.not_completed)
        .execution_options(synchronize_session=False)
    )


async def cancel_waitlist(session: AsyncSession, session_id: str, now: datetime) -> int:
    """Nobody left on the waitlist of an ended session gets a place: cancel them all."""
    result = await session.execute(
        update(Enrolment)
        .where(Enrolment.session_id == session_id, Enrolment.status == EnrolmentStatus.waitlisted)
        .values(status=EnrolmentStatus.cancelled, cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def attendance_figures(session: AsyncSession, session_id: str) -> tuple[int, int]:
    """(person-times, unique persons) of the session: records, and distinct people among them."""
    row = (
        await session.execute(
            select(func.count(), func.count(Attendance.person_key.distinct())).where(
                Attendance.session_id == session_id
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def spent_fen(session: AsyncSession, session_id: str) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(BudgetEntry.amount_fen), 0)).where(
            BudgetEntry.session_id == session_id, BudgetEntry.kind == BudgetKind.spent
        )
    )
    return int(total or 0)


# ---------------------------------------------------------------- numbers


async def reserve_numbers(session: AsyncSession, county_code: str, year: int, count: int) -> int:
    """Reserve `count` consecutive sequence values of (county, year); returns the last one.
    Concurrent completions in one county queue on the counter row and never share a number."""
    table = cast(Table, CertificateNumberSequence.__table__)
    return await reserve_block(session, table, count, county_code=county_code, year=year)


async def insert_certificates(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """One executemany insert for a whole session's certificates."""
    if rows:
        await session.execute(insert(Certificate), rows)


# ---------------------------------------------------------------- certificates


async def org(session: AsyncSession, org_id: str) -> OrgReplica | None:
    return await session.get(OrgReplica, org_id)


async def by_number(
    session: AsyncSession, number: str, *, lock: bool = False
) -> Certificate | None:
    query = select(Certificate).where(Certificate.number == number)
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


async def host_org_id(session: AsyncSession, session_id: str) -> str:
    value = await session.scalar(
        select(TrainingSession.host_org_id).where(TrainingSession.id == session_id)
    )
    assert value is not None  # certificates reference their session
    return value


async def verification(
    session: AsyncSession, number: str
) -> Row[Certificate, str, float, str] | None:
    """The certificate with its course and the name of the host org, in one query."""
    query = (
        select(Certificate, Course.title, Course.hours, OrgReplica.name)
        .join(Course, Course.id == Certificate.course_id)
        .join(TrainingSession, TrainingSession.id == Certificate.session_id)
        .outerjoin(OrgReplica, OrgReplica.id == TrainingSession.host_org_id)
        .where(Certificate.number == number)
    )
    return (await session.execute(query)).first()


async def list_certificates(
    session: AsyncSession,
    *,
    within_path: str | None,
    member_no: str | None,
    session_id: str | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Certificate]:
    query = select(Certificate)
    if within_path:
        query = query.where(Certificate.host_org_path.startswith(within_path, autoescape=True))
    if member_no:
        query = query.where(Certificate.member_no == member_no)
    if session_id:
        query = query.where(Certificate.session_id == session_id)
    return (await session.scalars(paginate(query, Certificate.id, cursor, limit))).all()
