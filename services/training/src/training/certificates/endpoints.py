"""`/v1/sessions/{id}/complete` and `/v1/certificates`: completion, certificates, verification."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from gonghui_shared.deps import PageDep, PrincipalDep, SessionDep
from gonghui_shared.errors import ERROR_RESPONSES
from gonghui_shared.pagination import PageOut, page_of
from training.certificates import service
from training.certificates.schemas import (
    NUMBER_EXAMPLE,
    CertificateRead,
    CertificateRevoke,
    CertificateVerification,
    SessionCompletionRead,
)

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)

# No length limit here: a malformed number is answered as `invalid_certificate_number`.
Number = Annotated[str, Path(description="certificate number", examples=[NUMBER_EXAMPLE])]


@router.post("/sessions/{session_id}/complete", tags=["sessions"])
async def complete_session(
    session_id: str, principal: PrincipalDep, session: SessionDep
) -> SessionCompletionRead:
    """End a session in progress (结业): apply the completion rule, issue certificates."""
    return await service.complete_session(session, principal, session_id)


@router.get("/certificates/{number}/verify", tags=["certificates"])
async def verify_certificate(number: Number, session: SessionDep) -> CertificateVerification:
    """Check a certificate (no login): valid or revoked, masked holder, course and issuer."""
    return await service.verify(session, number)


@router.post("/certificates/{number}/revoke", tags=["certificates"])
async def revoke_certificate(
    number: Number, body: CertificateRevoke, principal: PrincipalDep, session: SessionDep
) -> CertificateRead:
    """Revoke a certificate with a reason (county administrators, in scope)."""
    return service.to_read(await service.revoke(session, principal, number, body.reason))


@router.get("/certificates", tags=["certificates"])
async def list_certificates(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    org_id: Annotated[
        str | None, Query(description="sessions hosted in this org's subtree")
    ] = None,
    member_no: Annotated[str | None, Query(max_length=16)] = None,
    session_id: str | None = None,
) -> PageOut[CertificateRead]:
    """Certificates in your scope (a member: their own), by org subtree, member or session."""
    rows = await service.list_certificates(
        session,
        principal,
        org_id=org_id,
        member_no=member_no,
        session_id=session_id,
        cursor=page.cursor,
        limit=page.limit,
    )
    items, next_cursor = page_of(rows, page.limit)
    return PageOut(items=[service.to_read(c) for c in items], next_cursor=next_cursor)
