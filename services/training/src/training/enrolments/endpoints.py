"""`/v1/sessions/{id}/enrolments` and `/v1/enrolments`: enrolment, waitlist, cancellation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from gonghui_shared.deps import PageDep, PrincipalDep, SessionDep
from gonghui_shared.errors import ERROR_RESPONSES
from gonghui_shared.pagination import PageOut, page_of
from gonghui_shared.permissions import Action
from training.deps import PiiDep
from training.enrolments import repository, service
from training.enrolments.models import EnrolmentStatus
from training.enrolments.schemas import (
    EnrolmentCancellation,
    EnrolmentCreate,
    EnrolmentRead,
    EnrolmentWithSession,
)

router = APIRouter(prefix="/v1", tags=["enrolments"], responses=ERROR_RESPONSES)


@router.post("/sessions/{session_id}/enrolments", status_code=status.HTTP_201_CREATED)
async def enrol(
    session_id: str,
    body: EnrolmentCreate,
    principal: PrincipalDep,
    session: SessionDep,
    pii: PiiDep,
) -> EnrolmentRead:
    """Enrol a member or a non-member, or yourself; waitlisted when the session is full."""
    enrolment = await service.enrol(session, pii, principal, session_id, body)
    return service.to_read(enrolment, pii, principal)


@router.get("/sessions/{session_id}/enrolments")
async def list_enrolments(
    session_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    pii: PiiDep,
    page: PageDep,
    status: Annotated[EnrolmentStatus | None, Query(description="only this status")] = None,
) -> PageOut[EnrolmentRead]:
    """The session's enrolments, in enrolment order; personal data masked unless you may read it."""
    ts = await service.session_for_listing(session, principal, session_id)
    rows = await repository.list_for_session(
        session,
        ts.id,
        status=status.value if status else None,
        cursor=page.cursor,
        limit=page.limit,
    )
    items, next_cursor = page_of(rows, page.limit)
    return PageOut(
        items=[service.to_read(e, pii, principal) for e in items], next_cursor=next_cursor
    )


@router.get("/enrolments")
async def list_enrolments_across_sessions(
    principal: PrincipalDep,
    session: SessionDep,
    pii: PiiDep,
    page: PageDep,
    member_no: Annotated[
        str | None, Query(max_length=16, description="one member's enrolments")
    ] = None,
    org_id: Annotated[
        str | None, Query(description="sessions hosted in this org's subtree")
    ] = None,
    status: Annotated[EnrolmentStatus | None, Query(description="only this status")] = None,
) -> PageOut[EnrolmentWithSession]:
    """Enrolments across sessions, with each session (a member: their own), by member or org."""
    rows = await service.list_across_sessions(
        session,
        principal,
        member_no=member_no,
        org_id=org_id,
        status=status.value if status else None,
        cursor=page.cursor,
        limit=page.limit,
    )
    items, next_cursor = page_of(rows, page.limit, id_of=lambda row: row[0].id)
    return PageOut(
        items=[service.with_session(e, ts, title, pii, principal) for e, ts, title in items],
        next_cursor=next_cursor,
    )


@router.get("/enrolments/{enrolment_id}")
async def get_enrolment(
    enrolment_id: str, principal: PrincipalDep, session: SessionDep, pii: PiiDep
) -> EnrolmentRead:
    """One enrolment: your own as a member, or any in a session you may see."""
    enrolment, _ = await service.get_in_scope(
        session,
        principal,
        enrolment_id,
        staff_action=Action.sessions_read,
        self_action=Action.sessions_read,
    )
    return service.to_read(enrolment, pii, principal)


@router.post("/enrolments/{enrolment_id}/cancel")
async def cancel_enrolment(
    enrolment_id: str, principal: PrincipalDep, session: SessionDep, pii: PiiDep
) -> EnrolmentCancellation:
    """Cancel an enrolment; a freed place goes to the earliest waitlisted person at once."""
    enrolment, promoted = await service.cancel(session, principal, enrolment_id)
    return EnrolmentCancellation(
        enrolment=service.to_read(enrolment, pii, principal),
        promoted=service.to_read(promoted, pii, principal) if promoted else None,
    )
