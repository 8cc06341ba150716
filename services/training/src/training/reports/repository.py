"""Report queries: every figure is an aggregate computed by the database.

Nothing here loads attendance, certificate or budget rows into Python: each
statement returns one row, or one row per category. A subtree is a prefix of the
materialised org path copied onto each row (`host_org_path`, `org_path`). The big
tables (attendance, certificates) compare paths byte by byte, so a subtree and a
period are one range of a covering index. Where the two databases count distinct
people fastest in different ways, each is asked its own way; the tests hold both
to the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Executable,
    Select,
    and_,
    case,
    distinct,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from training.attendance.models import Attendance
from training.budget.models import BudgetEntry, BudgetKind
from training.certificates.models import Certificate
from training.competitions.models import Competition, CompetitionEntry, CompetitionEvent
from training.courses.models import CourseCategory
from training.enrolments.models import Enrolment, EnrolmentStatus
from training.replicas.models import CadreReplica, MemberReplica, OrgReplica
from training.sessions.models import SessionStatus, TrainingSession

VALID = "valid"
REVOKED = "revoked"
_LIKE_WILDCARDS = frozenset("%_\\")


def in_subtree(column: Any, path: str) -> ColumnElement[bool]:
    """Rows of the org at `path` and every org below it: a prefix of the materialised path."""
    if _LIKE_WILDCARDS.intersection(path):  # never in membership's paths (ids joined by "/")
        return column.startswith(path, autoescape=True)
    # One bound pattern rather than `:path || '%'`, which PostgreSQL's generic plan for a
    # prepared statement would rebuild on every row.
    return column.like(path + "%")


def in_subtree_range(column: Any, path: str) -> ColumnElement[bool]:
    """`in_subtree` as an index range, for path columns compared byte by byte (`BYTEWISE_PATH`).

    Every path below "/a/b/" sorts at or after it and before "/a/b0" ("0" follows "/").
    """
    return and_(column >= path, column < path[:-1] + chr(ord(path[-1]) + 1))


def in_period(column: Any, start: date, end: date) -> ColumnElement[bool]:
    return column.between(start, end)


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def allow_large_aggregates(session: AsyncSession) -> None:
    """Let this transaction's aggregates hash a county's records in memory (PostgreSQL).

    A county's year is ~100,000 attendance records grouped per person: ~17 MB of hash
    table, which the default 4 MB work_mem would spill to disk. SET LOCAL ends with the
    transaction.
    """
    if _dialect(session) == "postgresql":
        await session.execute(text("SET LOCAL work_mem = '32MB'"))


def _count_distinct(session: AsyncSession, column: Any, *where: Any) -> Select[Any]:
    """How many distinct values of `column` the rows matching `where` hold.

    PostgreSQL sorts for COUNT(DISTINCT) but can hash a GROUP BY, so there the values
    are grouped first; SQLite sorts either way, and COUNT(DISTINCT) is its quicker form.
    """
    if _dialect(session) == "postgresql":
        values = select(column).where(*where).group_by(column).subquery()
        return select(func.count()).select_from(values)
    return select(func.count(distinct(column))).where(*where)


@dataclass
class Counts:
    """Person-times and unique persons of one group of attendance records."""

    person_times: int = 0
    unique_persons: int = 0


@dataclass
class AttendanceFigures:
    total: Counts
    by_course_category: dict[str, Counts]
    by_worker_category: dict[str, Counts]


@dataclass
class SessionCounts:
    held: int = 0
    scheduled: int = 0


@dataclass
class CertificateFigures:
    valid: int = 0
    revoked: int = 0
    certified_persons: int = 0
    valid_by_course_category: dict[str, int] = field(default_factory=dict)
    valid_by_worker_category: dict[str, int] = field(default_factory=dict)


async def sessions_by_category(
    session: AsyncSession, path: str, start: date, end: date
) -> dict[str, SessionCounts]:
    """Sessions held (completed, last day in the period) and scheduled, per course category."""
    ts = TrainingSession
    held = and_(ts.status == SessionStatus.completed, in_period(ts.last_day, start, end))
    scheduled = and_(ts.status != SessionStatus.cancelled, in_period(ts.first_day, start, end))
    query = (
        select(
            ts.course_category,
            func.count(case((held, 1))),
            func.count(case((scheduled, 1))),
        )
        .where(in_subtree(ts.host_org_path, path), or_(held, scheduled))
        .group_by(ts.course_category)
    )
    rows = (await session.execute(query)).all()
    return {category: SessionCounts(h, s) for category, h, s in rows}


async def attendance_figures(
    session: AsyncSession, path: str, start: date, end: date
) -> AttendanceFigures:
    """Person-times and unique persons in all, per course category and per worker category.

    One statement, one pass over the records; each database is asked the way it answers
    fastest (the figures are the same, and tested on both).
    """
    att = Attendance
    where = (in_subtree_range(att.host_org_path, path), in_period(att.day, start, end))
    if _dialect(session) == "postgresql":
        query: Executable = _attendance_by_grouping_sets(where)
    else:
        query = _attendance_by_person_groups(where)
    figures = AttendanceFigures(Counts(), {}, {})
    for split, key, person_times, unique_persons in (await session.execute(query)).all():
        counts = Counts(int(person_times or 0), int(unique_persons))
        if split == "all":
            figures.total = counts
        elif split == "course":
            figures.by_course_category[key] = counts
        else:
            figures.by_worker_category[key] = counts
    return figures


def _attendance_by_grouping_sets(where: tuple[Any, ...]) -> Select[Any]:
    """(split, key, person-times, unique persons) rows, for PostgreSQL.

    GROUPING SETS group the records per person three ways (within each course category,
    within each worker category, in all) in one hashing pass; each group is one unique
    person of its split, and its row count their person-times.
    """
    att = Attendance
    per_person = (
        select(
            case(
                (func.grouping(att.course_category) == 0, "course"),
                (func.grouping(att.worker_category) == 0, "worker"),
                else_="all",
            ).label("split"),
            func.coalesce(att.course_category, att.worker_category, "").label("key"),
            func.count().label("person_times"),
        )
        .where(*where)
        .group_by(
            func.grouping_sets(
                tuple_(att.course_category, att.person_key),
                tuple_(att.worker_category, att.person_key),
                tuple_(att.person_key),
            )
        )
        .subquery()
    )
    c = per_person.c
    return select(c.split, c.key, func.sum(c.person_times), func.count()).group_by(c.split, c.key)


def _attendance_by_person_groups(where: tuple[Any, ...]) -> CompoundSelect:
    """The same rows, for SQLite (which has no GROUPING SETS).

    The records are grouped once per person, course category and worker category; the
    three splits count distinct people among those groups, a smaller set to sort.
    """
    att = Attendance
    groups = (
        select(
            att.person_key,
            att.course_category,
            att.worker_category,
            func.count().label("person_times"),
        )
        .where(*where)
        .group_by(att.person_key, att.course_category, att.worker_category)
        .cte("groups")
    )
    c = groups.c

    def split(name: str, key: Any) -> Select[Any]:
        return select(
            literal(name), key, func.sum(c.person_times), func.count(distinct(c.person_key))
        )

    return union_all(
        split("course", c.course_category).group_by(c.course_category),
        split("worker", c.worker_category).group_by(c.worker_category),
        split("all", literal("")),
    )


async def certificate_figures(
    session: AsyncSession, path: str, start: date, end: date
) -> CertificateFigures:
    """Certificates issued in the period: still valid or revoked, per category, and holders."""
    cert = Certificate
    where = (
        in_subtree_range(cert.host_org_path, path),
        in_period(cert.issued_on, start, end),
    )
    # Counts per status and category add up to every total the report needs.
    per_category = (
        select(cert.status, cert.course_category, cert.worker_category, func.count())
        .where(*where)
        .group_by(cert.status, cert.course_category, cert.worker_category)
    )
    figures = CertificateFigures()
    for status, course_category, worker_category, n in await session.execute(per_category):
        if status == VALID:
            figures.valid += n
            by_course = figures.valid_by_course_category
            by_course[course_category] = by_course.get(course_category, 0) + n
            by_worker = figures.valid_by_worker_category
            by_worker[worker_category] = by_worker.get(worker_category, 0) + n
        elif status == REVOKED:
            figures.revoked += n
    holders = _count_distinct(session, cert.person_key, *where, cert.status == VALID)
    figures.certified_persons = int(await session.scalar(holders) or 0)
    return figures


async def budget_totals(
    session: AsyncSession, path: str, start: date, end: date
) -> tuple[int, int]:
    """Planned and spent fen of the budget entries dated in the period."""
    entry = BudgetEntry

    def total(kind: BudgetKind) -> Any:
        return func.coalesce(func.sum(case((entry.kind == kind, entry.amount_fen))), 0)

    row = (
        await session.execute(
            select(total(BudgetKind.planned), total(BudgetKind.spent)).where(
                in_subtree(entry.host_org_path, path), in_period(entry.entry_date, start, end)
            )
        )
    ).one()
    # PostgreSQL sums a bigint as numeric (a Decimal here): fen stay whole numbers.
    return int(row[0]), int(row[1])


async def competition_participants(session: AsyncSession, path: str, start: date, end: date) -> int:
    query = (
        select(func.count(distinct(CompetitionEntry.person_key)))
        .join(CompetitionEvent, CompetitionEvent.id == CompetitionEntry.event_id)
        .join(Competition, Competition.id == CompetitionEvent.competition_id)
        .where(
            in_subtree(Competition.host_org_path, path),
            in_period(Competition.starts_on, start, end),
        )
    )
    return int(await session.scalar(query) or 0)


def _completed_cadre_training() -> ColumnElement[bool]:
    """The cadre (correlated by member number) completed a cadre-training session anywhere."""
    return exists(
        select(1)
        .select_from(Enrolment)
        .join(TrainingSession, TrainingSession.id == Enrolment.session_id)
        .where(
            Enrolment.member_no == CadreReplica.member_no,
            Enrolment.status == EnrolmentStatus.completed,
            TrainingSession.course_category == CourseCategory.cadre_training,
        )
    )


async def cadre_counts(session: AsyncSession, path: str) -> tuple[int, int]:
    """Distinct cadres with a post in the subtree, and how many of them are trained."""
    cadre = CadreReplica
    trained = _completed_cadre_training()
    row = (
        await session.execute(
            select(
                func.count(distinct(cadre.member_no)),
                func.count(distinct(case((trained, cadre.member_no)))),
            ).where(in_subtree(cadre.org_path, path))
        )
    ).one()
    return row[0], row[1]


async def untrained_cadres(
    session: AsyncSession, path: str, limit: int
) -> list[tuple[str, str | None, str, str | None]]:
    """(member_no, name, org path, org name) of untrained cadres, one row per person."""
    cadre = CadreReplica
    per_person = (
        select(cadre.member_no, func.min(cadre.org_path).label("org_path"))
        .where(in_subtree(cadre.org_path, path), ~_completed_cadre_training())
        .group_by(cadre.member_no)
        .subquery()
    )
    query = (
        select(per_person.c.member_no, MemberReplica.name, per_person.c.org_path, OrgReplica.name)
        .outerjoin(MemberReplica, MemberReplica.member_no == per_person.c.member_no)
        .outerjoin(OrgReplica, OrgReplica.path == per_person.c.org_path)
        .order_by(per_person.c.org_path, per_person.c.member_no)
        .limit(limit)
    )
    return [(m, n, p, o) for m, n, p, o in (await session.execute(query)).all()]
