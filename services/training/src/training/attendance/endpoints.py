"""`/v1/sessions/{id}/attendance`: check-in by staff or QR, the check-in QR code, the records."""

from __future__ import annotations

from datetime import date
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Query, Request, status

from gonghui_shared.deps import PageDep, PrincipalDep, RuntimeDep, SessionDep
from gonghui_shared.errors import ERROR_RESPONSES
from gonghui_shared.pagination import page_of
from training.attendance import repository, service
from training.attendance.schemas import AttendanceCreate, AttendanceList, AttendanceRead, CheckinQr
from training.attendance.service import QrSigner
from training.config import TrainingSettings
from training.enrolments.service import session_for_listing


async def get_qr_signer(request: Request) -> QrSigner:
    """The signer loaded at start-up (so production refuses a missing key before serving)."""
    signer: QrSigner = request.app.state.qr_signer
    return signer


QrSignerDep = Annotated[QrSigner, Depends(get_qr_signer)]

router = APIRouter(prefix="/v1/sessions", tags=["attendance"], responses=ERROR_RESPONSES)


@router.post("/{session_id}/attendance", status_code=status.HTTP_201_CREATED)
async def check_in(
    session_id: str,
    body: AttendanceCreate,
    principal: PrincipalDep,
    session: SessionDep,
    signer: QrSignerDep,
) -> AttendanceRead:
    """Check a person in for a session day (staff), or yourself with the scanned QR token."""
    record, enrolment = await service.check_in(session, principal, signer, session_id, body)
    return service.to_read(record, enrolment.name, enrolment.member_no)


@router.get("/{session_id}/attendance/qr")
async def checkin_qr(
    session_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
    signer: QrSignerDep,
    day: Annotated[date | None, Query(description="default today in China")] = None,
) -> CheckinQr:
    """A short-lived check-in token for a session day and its QR code (SVG) to show trainees."""
    settings = cast(TrainingSettings, runtime.settings)
    return await service.checkin_qr(
        session, principal, signer, settings.qr_token_seconds, session_id, day
    )


@router.get("/{session_id}/attendance")
async def list_attendance(
    session_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    day: Annotated[date | None, Query(description="only this day")] = None,
) -> AttendanceList:
    """Attendance records (person-times, 人次) and the distinct people among them."""
    ts = await session_for_listing(session, principal, session_id)
    rows = await repository.list_for_session(
        session, ts.id, day=day, cursor=page.cursor, limit=page.limit
    )
    items, next_cursor = page_of(rows, page.limit, id_of=lambda r: r[0].id)
    person_times, unique_persons = await repository.figures(session, ts.id, day)
    return AttendanceList(
        items=[service.to_read(record, name, member_no) for record, name, member_no in items],
        next_cursor=next_cursor,
        person_times=person_times,
        unique_persons=unique_persons,
    )
