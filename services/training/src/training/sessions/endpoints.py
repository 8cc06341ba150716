"""`/v1/sessions`: training sessions (培训班) and their lifecycle."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from gonghui_shared.deps import PageDep, PrincipalDep, SessionDep
from gonghui_shared.errors import ERROR_RESPONSES
from gonghui_shared.pagination import PageOut
from gonghui_shared.permissions import Action
from training.sessions import service
from training.sessions.models import SessionStatus
from training.sessions.schemas import SessionCancel, SessionCreate, SessionDetail, SessionRead

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], responses=ERROR_RESPONSES)


@router.post("", status_code=201)
async def schedule_session(
    body: SessionCreate, principal: PrincipalDep, session: SessionDep
) -> SessionRead:
    """Schedule a session of a course at a host org in your scope (status `scheduled`)."""
    ts, course = await service.schedule(session, principal, body)
    return service.to_read(ts, course.title)


@router.get("")
async def list_sessions(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    org_id: Annotated[
        str | None, Query(description="only sessions hosted in this org's subtree")
    ] = None,
    status: SessionStatus | None = None,
    course_id: str | None = None,
    from_: Annotated[
        date | None, Query(alias="from", description="sessions running on or after this day")
    ] = None,
    to: Annotated[date | None, Query(description="sessions running on or before this day")] = None,
) -> PageOut[SessionRead]:
    """Sessions in your subtree; for a member, the sessions of its own org and those above it."""
    items, next_cursor = await service.list_visible(
        session,
        principal,
        org_id=org_id,
        status=status.value if status else None,
        course_id=course_id,
        from_=from_,
        to=to,
        cursor=page.cursor,
        limit=page.limit,
    )
    return PageOut(items=items, next_cursor=next_cursor)


@router.get("/{session_id}")
async def get_session(
    session_id: str, principal: PrincipalDep, session: SessionDep
) -> SessionDetail:
    """One session, with its enrolled and waitlisted counts and budget totals."""
    ts = await service.get_session_in_scope(session, principal, session_id, Action.sessions_read)
    return await service.detail(session, ts)


@router.post("/{session_id}/open")
async def open_session(
    session_id: str, principal: PrincipalDep, session: SessionDep
) -> SessionRead:
    """Open enrolment (scheduled → open)."""
    return await service.read(session, await service.open_enrolment(session, principal, session_id))


@router.post("/{session_id}/start")
async def start_session(
    session_id: str, principal: PrincipalDep, session: SessionDep
) -> SessionRead:
    """Start the training (open → in_progress)."""
    return await service.read(session, await service.start(session, principal, session_id))


@router.post("/{session_id}/cancel")
async def cancel_session(
    session_id: str, body: SessionCancel, principal: PrincipalDep, session: SessionDep
) -> SessionRead:
    """Cancel with a reason; the enrolled and waitlisted are cancelled with it."""
    ts = await service.cancel(session, principal, session_id, body.reason)
    return await service.read(session, ts)
