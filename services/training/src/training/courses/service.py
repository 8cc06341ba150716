"""Course catalogue rules (培训课程): who owns a course and who may see it.

A course sits in its owner org's catalogue. The catalogue serves the owner's
whole subtree (a county's welding course is offered in its villages), and an
org above the owner sees it too; sibling subtrees (another county) do not.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.auth import Principal
from gonghui_shared.errors import Conflict, NotFound, OutOfScope
from gonghui_shared.permissions import Action, Role
from training.courses import repository
from training.courses.models import Course
from training.courses.schemas import CourseCreate, CourseUpdate
from training.replicas.models import MemberReplica, OrgReplica
from training.replicas.service import OrgNotKnown, org_in_scope


class CourseNotFound(NotFound):
    code = "course_not_found"
    message = "No such course"
    message_zh = "培训课程不存在"


class OrgDissolved(Conflict):
    code = "org_dissolved"
    message = "The organisation has been dissolved"
    message_zh = "该工会组织已撤销"


async def get_course(session: AsyncSession, course_id: str) -> Course:
    """The course, or 404 `course_not_found`."""
    course = await repository.get(session, course_id)
    if course is None:
        raise CourseNotFound()
    return course


def ancestor_paths(path: str) -> list[str]:
    """'/a/b/c/' -> ['/a/', '/a/b/', '/a/b/c/']: the org and every org above it."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def visible_from(course: Course, path: str) -> bool:
    """Whether an org at `path` sees the course: inside the owner's subtree, or above the owner."""
    return path.startswith(course.owner_org_path) or course.owner_org_path.startswith(path)


async def vantage_path(session: AsyncSession, principal: Principal) -> str | None:
    """The org path the principal sees the catalogue from; None for a platform admin (all)."""
    if principal.role is Role.platform_admin:
        return None
    if principal.role is Role.member and principal.member_no:
        # A member sees from the org they belong to now (the replica follows transfers).
        member = await session.get(MemberReplica, principal.member_no)
        # org_path is "" while only an out-of-order event is known; "" would cover everything.
        if member is not None and member.org_path:
            return member.org_path
    if principal.org_path:
        return principal.org_path
    raise OutOfScope()


async def host_org(
    session: AsyncSession, principal: Principal, org_id: str, action: Action, field: str
) -> OrgReplica:
    """An active org from the replica, in the principal's scope for `action`."""
    try:
        org = await org_in_scope(session, principal, org_id, action)
    except OrgNotKnown as exc:
        raise OrgNotKnown(details={"field": field}) from exc
    if org.status != "active":
        raise OrgDissolved(details={"field": field})
    return org


async def get_visible(session: AsyncSession, principal: Principal, course_id: str) -> Course:
    """The course, if the principal may read sessions and sees the course's catalogue."""
    principal.require(Action.sessions_read)
    course = await get_course(session, course_id)
    path = await vantage_path(session, principal)
    if path is not None and not visible_from(course, path):
        raise OutOfScope()
    return course


async def list_visible(
    session: AsyncSession,
    principal: Principal,
    *,
    org_id: str | None,
    category: str | None,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> list[Course]:
    """Courses the principal sees, or those offered at `org_id` (an org in scope)."""
    principal.require(Action.sessions_read)
    if org_id is not None:
        path: str | None = (
            await org_in_scope(session, principal, org_id, Action.sessions_read)
        ).path
    else:
        path = await vantage_path(session, principal)
    rows = await repository.list_courses(
        session,
        view=None if path is None else (path, ancestor_paths(path)),
        category=category,
        q=q,
        cursor=cursor,
        limit=limit,
    )
    return list(rows)


async def create(session: AsyncSession, principal: Principal, data: CourseCreate) -> Course:
    """Add a course to the catalogue of an active org in the principal's scope."""
    org = await host_org(
        session, principal, data.owner_org_id, Action.courses_write, "owner_org_id"
    )
    course = Course(
        owner_org_id=org.id,
        owner_org_path=org.path,
        title=data.title,
        category=data.category.value,
        skills=data.skills,
        target_groups=[g.value for g in data.target_groups],
        leads_to_certificate=data.leads_to_certificate,
        hours=data.hours,
        min_attendance_rate=data.min_attendance_rate,
        created_by=principal.subject,
    )
    session.add(course)
    await session.flush()
    return course


async def update(
    session: AsyncSession, principal: Principal, course_id: str, data: CourseUpdate
) -> Course:
    """Change the fields given; only the owner org's scope may."""
    principal.require(Action.courses_write)
    course = await get_course(session, course_id)
    principal.require(Action.courses_write, course.owner_org_path)
    changes = data.model_dump(mode="json", exclude_unset=True)
    for field, value in changes.items():
        if getattr(course, field) != value:
            setattr(course, field, value)
    await session.flush()
    return course
