"""Attendance queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import ColumnElement, Row, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.pagination import decode_cursor
from training.attendance.models import Attendance
from training.enrolments.models import Enrolment


def _of_session(session_id: str, day: date | None) -> list[ColumnElement[bool]]:
    conditions = [Attendance.session_id == session_id]
    if day is not None:
        conditions.append(Attendance.day == day)
    return conditions


async def list_for_session(
    session: AsyncSession, session_id: str, *, day: date | None, cursor: str | None, limit: int
) -> Sequence[Row[Attendance, str, str | None]]:
    """Records with the person's name and member number, in check-in order."""
    query = (
        select(Attendance, Enrolment.name, Enrolment.member_no)
        .join(Enrolment, Enrolment.id == Attendance.enrolment_id)
        .where(*_of_session(session_id, day))
    )
    if cursor:
        query = query.where(Attendance.id > decode_cursor(cursor))
    return (await session.execute(query.order_by(Attendance.id).limit(limit + 1))).all()


async def figures(session: AsyncSession, session_id: str, day: date | None) -> tuple[int, int]:
    """(person-times, unique persons): records, and distinct people among them."""
    row = (
        await session.execute(
            select(func.count(Attendance.id), func.count(distinct(Attendance.person_key))).where(
                *_of_session(session_id, day)
            )
        )
    ).one()
    return int(row[0]), int(row[1])
