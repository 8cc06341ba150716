"""`/v1/courses`: the course catalogue (培训课程)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from gonghui_shared.deps import PageDep, PrincipalDep, SessionDep
from gonghui_shared.errors import ERROR_RESPONSES
from gonghui_shared.pagination import PageOut, page_of
from training.courses import service
from training.courses.models import CourseCategory
from training.courses.schemas import CourseCreate, CourseRead, CourseUpdate

router = APIRouter(prefix="/v1/courses", tags=["courses"], responses=ERROR_RESPONSES)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_course(
    body: CourseCreate, principal: PrincipalDep, session: SessionDep
) -> CourseRead:
    """Add a course to an org's catalogue; the org's whole subtree can run sessions of it."""
    return CourseRead.model_validate(await service.create(session, principal, body))


@router.get("")
async def list_courses(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    category: CourseCategory | None = None,
    q: Annotated[str | None, Query(max_length=100, description="text in the title")] = None,
    org_id: Annotated[
        str | None, Query(description="only courses offered at this org (an org in your scope)")
    ] = None,
) -> PageOut[CourseRead]:
    """Courses you can see: your org's catalogue, those above it, and those below it."""
    rows = await service.list_visible(
        session,
        principal,
        org_id=org_id,
        category=category.value if category else None,
        q=q,
        cursor=page.cursor,
        limit=page.limit,
    )
    items, next_cursor = page_of(rows, page.limit)
    return PageOut(items=[CourseRead.model_validate(c) for c in items], next_cursor=next_cursor)


@router.get("/{course_id}")
async def get_course(course_id: str, principal: PrincipalDep, session: SessionDep) -> CourseRead:
    """One course."""
    return CourseRead.model_validate(await service.get_visible(session, principal, course_id))


@router.patch("/{course_id}")
async def update_course(
    course_id: str, body: CourseUpdate, principal: PrincipalDep, session: SessionDep
) -> CourseRead:
    """Change a course's title, skills, target groups, hours or completion rule."""
    return CourseRead.model_validate(await service.update(session, principal, course_id, body))
