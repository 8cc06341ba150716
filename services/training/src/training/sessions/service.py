"""Training session rules (培训班): scheduling, the lifecycle, scope.

scheduled → open (enrolment opens) → in_progress → completed, or cancelled with
a reason from any state before completed. `/complete` lives with certificates;
it uses `require_status` from here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.auth import Principal
from gonghui_shared.clock import CHINA
from gonghui_shared.contracts.training import SessionCancelled, SessionScheduled
from gonghui_shared.errors import Conflict, NotFound, OutOfScope, Unprocessable
from gonghui_shared.pagination import page_of
from gonghui_shared.permissions import Action, Role
from training.budget import repository as budget_repository
from training.budget.schemas import BudgetTotals, to_fen, yuan
from training.courses.models import Course
from training.courses.service import ancestor_paths, get_course, host_org, visible_from
from training.events.publish import publish
from training.replicas.models import MemberReplica
from training.replicas.service import org_in_scope
from training.sessions import repository
from training.sessions.models import SessionStatus, TrainingSession
from training.sessions.schemas import SessionCreate, SessionDetail, SessionRead


class SessionNotFound(NotFound):
    code = "session_not_found"
    message = "No such training session"
    message_zh = "培训班不存在"


class CourseNotAvailable(Unprocessable):
    code = "course_not_available"
    message = "The course is not in the host organisation's catalogue"
    message_zh = "该课程不在主办工会可用的课程目录中"


class InvalidSessionTransition(Conflict):
    code = "invalid_session_transition"
    message = "The session is not in a state that allows this"
    message_zh = "培训班当前状态不允许此操作"


_STATUS_ZH = {
    SessionStatus.scheduled: "已排期",
    SessionStatus.open: "报名中",
    SessionStatus.in_progress: "培训中",
    SessionStatus.completed: "已结业",
    SessionStatus.cancelled: "已取消",
}


async def get_session_in_scope(
    session: AsyncSession,
    principal: Principal,
    session_id: str,
    action: Action,
    *,
    lock: bool = False,
) -> TrainingSession:
    """The session (404 `session_not_found`), if the principal may take `action` on it.

    Staff act on sessions hosted inside their subtree. A member acts on sessions
    hosted by their own org or an org above it: the sessions they could join.
    `lock` takes a row lock (PostgreSQL) so concurrent state changes serialise.
    """
    principal.require(action)
    ts = await repository.get(session, session_id, lock=lock)
    if ts is None:
        raise SessionNotFound()
    if principal.role is Role.member:
        member = (
            await session.get(MemberReplica, principal.member_no) if principal.member_no else None
        )
        if member is None or not member.org_path.startswith(ts.host_org_path):
            raise OutOfScope()
        return ts
    principal.require(action, ts.host_org_path)
    return ts


def session_days(ts: TrainingSession) -> list[date]:
    """The China-local calendar days the session runs on, first_day..last_day inclusive."""
    count = (ts.last_day - ts.first_day).days + 1
    return [ts.first_day + timedelta(days=i) for i in range(count)]


def require_status(ts: TrainingSession, wanted: SessionStatus, *allowed: SessionStatus) -> None:
    """409 `invalid_session_transition` unless the session is in one of `allowed`."""
    current = SessionStatus(ts.status)
    if current not in allowed:
        raise InvalidSessionTransition(
            f"The session is {current.value}; it cannot become {wanted.value}",
            f"培训班当前为“{_STATUS_ZH[current]}”，不能变为“{_STATUS_ZH[wanted]}”",
            details={"current": current.value, "wanted": wanted.value},
        )


def to_read(ts: TrainingSession, course_title: str) -> SessionRead:
    """The session as the API shows it, planned budget in yuan."""
    return SessionRead.model_validate(
        {
            **{
                field: getattr(ts, field)
                for field in SessionRead.model_fields
                if hasattr(ts, field)
            },
            "course_title": course_title,
            "planned_budget": yuan(ts.planned_budget_fen),
        }
    )


async def read(session: AsyncSession, ts: TrainingSession) -> SessionRead:
    """`to_read` with the course title looked up."""
    return to_read(ts, (await get_course(session, ts.course_id)).title)


async def detail(session: AsyncSession, ts: TrainingSession) -> SessionDetail:
    """The session with its enrolled/waitlisted counts and budget totals."""
    counts = await repository.enrolment_counts(session, ts.id)
    sums = await budget_repository.sums(session, ts.id)
    return SessionDetail.model_validate(
        {
            **(await read(session, ts)).model_dump(),
            "enrolled": counts.get("enrolled", 0),
            "waitlisted": counts.get("waitlisted", 0),
            "budget": BudgetTotals.of(sums, ts.planned_budget_fen),
        }
    )


async def schedule(
    session: AsyncSession, principal: Principal, data: SessionCreate
) -> tuple[TrainingSession, Course]:
    """Schedule a session of a course at a host org; it publishes SessionScheduled."""
    org = await host_org(session, principal, data.host_org_id, Action.sessions_write, "host_org_id")
    course = await get_course(session, data.course_id)
    if not visible_from(course, org.path):
        raise CourseNotAvailable(details={"field": "course_id"})
    ts = TrainingSession(
        course_id=course.id,
        course_category=course.category,
        host_org_id=org.id,
        host_org_path=org.path,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        # Attendance is per calendar day in China, whatever offset the client sent.
        first_day=data.starts_at.astimezone(CHINA).date(),
        last_day=data.ends_at.astimezone(CHINA).date(),
        place=data.place,
        station_id=data.station_id,
        delivery_mode=data.delivery_mode.value,
        trainer=data.trainer,
        capacity=data.capacity,
        planned_budget_fen=to_fen(data.planned_budget),
        status=SessionStatus.scheduled.value,
        created_by=principal.subject,
    )
    session.add(ts)
    await session.flush()
    await publish(
        session,
        SessionScheduled(
            session_id=ts.id,
            course_id=course.id,
            course_category=course.category,
            host_org_id=org.id,
            starts_at=data.starts_at,
            ends_at=data.ends_at,
            delivery_mode=ts.delivery_mode,
            capacity=ts.capacity,
            planned_budget_fen=ts.planned_budget_fen,
        ),
        aggregate_id=ts.id,
        org_path=org.path,
    )
    return ts, course


async def _transition(
    session: AsyncSession,
    principal: Principal,
    session_id: str,
    wanted: SessionStatus,
    *allowed: SessionStatus,
) -> TrainingSession:
    """Move the (locked) session to `wanted` if it is in one of `allowed`."""
    ts = await get_session_in_scope(
        session, principal, session_id, Action.sessions_write, lock=True
    )
    require_status(ts, wanted, *allowed)
    ts.status = wanted.value
    await session.flush()
    return ts


async def open_enrolment(
    session: AsyncSession, principal: Principal, session_id: str
) -> TrainingSession:
    """scheduled → open: enrolment opens."""
    return await _transition(
        session, principal, session_id, SessionStatus.open, SessionStatus.scheduled
    )


async def start(session: AsyncSession, principal: Principal, session_id: str) -> TrainingSession:
    """open → in_progress: the first day has come."""
    return await _transition(
        session, principal, session_id, SessionStatus.in_progress, SessionStatus.open
    )


async def cancel(
    session: AsyncSession, principal: Principal, session_id: str, reason: str
) -> TrainingSession:
    """Cancel with a reason; every enrolled or waitlisted person's enrolment is cancelled too."""
    ts = await _transition(
        session,
        principal,
        session_id,
        SessionStatus.cancelled,
        SessionStatus.scheduled,
        SessionStatus.open,
        SessionStatus.in_progress,
    )
    ts.cancel_reason = reason
    await session.flush()
    await repository.cancel_live_enrolments(session, ts.id, datetime.now(UTC))
    await publish(
        session,
        SessionCancelled(session_id=ts.id, host_org_id=ts.host_org_id, reason=reason),
        aggregate_id=ts.id,
        org_path=ts.host_org_path,
    )
    return ts


async def list_visible(
    session: AsyncSession,
    principal: Principal,
    *,
    org_id: str | None,
    status: str | None,
    course_id: str | None,
    from_: date | None,
    to: date | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[SessionRead], str | None]:
    """Sessions in the principal's subtree (or `org_id`'s); a member's: those it could join."""
    principal.require(Action.sessions_read)
    if from_ is not None and to is not None and from_ > to:
        raise Unprocessable(
            "`from` is after `to`", "起始日期晚于截止日期", details={"field": "from"}
        )
    within_path: str | None = None
    host_paths: list[str] | None = None
    host_org_id: str | None = None
    if principal.role is Role.member:
        member = (
            await session.get(MemberReplica, principal.member_no) if principal.member_no else None
        )
        # Not (yet) known to training: nothing it could join.
        host_paths = ancestor_paths(member.org_path) if member is not None else []
        host_org_id = org_id
    elif org_id is not None:
        within_path = (await org_in_scope(session, principal, org_id, Action.sessions_read)).path
    elif principal.role is not Role.platform_admin:
        if not principal.org_path:
            raise OutOfScope()
        within_path = principal.org_path
    rows = await repository.list_sessions(
        session,
        within_path=within_path,
        host_paths=host_paths,
        host_org_id=host_org_id,
        status=status,
        course_id=course_id,
        from_=from_,
        to=to,
        cursor=cursor,
        limit=limit,
    )
    page, next_cursor = page_of(rows, limit, id_of=lambda row: row[0].id)
    return [to_read(ts, title) for ts, title in page], next_cursor
