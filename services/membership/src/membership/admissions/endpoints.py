"""`/v1/rosters` and `/v1/applications`: the admission procedure (入会)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.auth import Principal
from gonghui_shared.deps import PageDep, PrincipalDep, RuntimeDep, SessionDep
from gonghui_shared.errors import ERROR_RESPONSES
from gonghui_shared.pagination import PageOut, page_of
from gonghui_shared.permissions import Action
from membership.admissions import repository, service
from membership.admissions.models import ApplicationStatus
from membership.admissions.schemas import (
    ApplicationCreate,
    ApplicationDetail,
    ApplicationRead,
    ApprovalCreate,
    ApprovalRead,
    RejectionCreate,
    RosterApplicationsAdd,
    RosterApprovalRead,
    RosterBatchApprovalRead,
    RosterCreate,
    RosterRead,
    SelfApplicationCreate,
    SkippedApplication,
)
from membership.cards.endpoints import CardSealDep
from membership.cards.schemas import CardToken
from membership.cards.service import issue_card
from membership.deps import PiiDep
from membership.orgs import service as orgs_service

router = APIRouter(prefix="/v1", tags=["admissions"], responses=ERROR_RESPONSES)

OrgFilter = Annotated[str | None, Query(description="only this org and the orgs below it")]


async def _within(session: AsyncSession, principal: Principal, org_id: str | None) -> str | None:
    """The subtree to list: the named org's (if in scope), else the principal's whole scope."""
    principal.require(Action.applications_read)
    if org_id:
        return (
            await orgs_service.get_in_scope(session, principal, org_id, Action.applications_read)
        ).path
    return service.scope_path(principal)


# ---------------------------------------------------------------- rosters


@router.post("/rosters", status_code=status.HTTP_201_CREATED)
async def create_roster(
    body: RosterCreate, principal: PrincipalDep, session: SessionDep
) -> RosterRead:
    """Start a roster (花名册): the batch of applications an org sends for approval."""
    roster = await service.open_roster(session, principal, body)
    return (await service.rosters_read(session, [roster]))[0]


@router.get("/rosters")
async def list_rosters(
    principal: PrincipalDep, session: SessionDep, page: PageDep, org_id: OrgFilter = None
) -> PageOut[RosterRead]:
    """Rosters in your scope, or in one org's subtree, oldest first."""
    within = await _within(session, principal, org_id)
    rows = await repository.list_rosters(
        session, within_path=within, cursor=page.cursor, limit=page.limit
    )
    items, next_cursor = page_of(rows, page.limit)
    return PageOut(items=await service.rosters_read(session, items), next_cursor=next_cursor)


@router.get("/rosters/{roster_id}")
async def get_roster(roster_id: str, principal: PrincipalDep, session: SessionDep) -> RosterRead:
    """One roster, with how many of its applications are in each status."""
    roster = await service.get_roster_in_scope(
        session, principal, roster_id, Action.applications_read
    )
    return (await service.rosters_read(session, [roster]))[0]


@router.post("/rosters/{roster_id}/applications")
async def add_to_roster(
    roster_id: str, body: RosterApplicationsAdd, principal: PrincipalDep, session: SessionDep
) -> RosterRead:
    """Put submitted applications of the roster's org onto the roster (all or none)."""
    roster = await service.add_to_roster(session, principal, roster_id, body.application_ids)
    return (await service.rosters_read(session, [roster]))[0]


@router.post("/rosters/{roster_id}/approve")
async def approve_roster(
    roster_id: str, body: ApprovalCreate, principal: PrincipalDep, session: SessionDep
) -> RosterApprovalRead:
    """Approve every application on the roster under one approval document (批复)."""
    admitted, skipped = await service.approve_roster(
        session, principal, roster_id, body.approval_doc_no
    )
    return RosterApprovalRead(
        approved=len(admitted),
        member_nos=[a.member.member_no for a in admitted],
        skipped=[SkippedApplication(application_id=i, code=code) for i, code in skipped],
    )


@router.post("/rosters/{roster_id}/approve-in-batches")
async def approve_roster_in_batches(
    roster_id: str,
    body: ApprovalCreate,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    batch_size: Annotated[int, Query(ge=1, le=5000, description="applications a batch")] = (
        service.APPROVAL_BATCH
    ),
) -> RosterBatchApprovalRead:
    """Approve a large roster (批复) batch by batch, each batch committed on its own.

    Same permission and outcome as `/approve`; for rosters of many thousands. Should it
    fail part way, the batches before stay approved, and calling it again approves the rest.
    """
    result = await service.approve_roster_in_batches(
        runtime.db, principal, roster_id, body.approval_doc_no, batch_size=batch_size
    )
    return RosterBatchApprovalRead(
        approved=result.approved,
        member_nos=result.member_nos,
        skipped=[SkippedApplication(application_id=i, code=code) for i, code in result.skipped],
        batches=result.batches,
    )


# ---------------------------------------------------------------- applications


@router.post("/applications", status_code=status.HTTP_201_CREATED)
async def submit_application(
    body: ApplicationCreate, principal: PrincipalDep, session: SessionDep, pii: PiiDep
) -> ApplicationRead:
    """Record a worker's own signed application to join (入会申请书)."""
    application = await service.submit(session, pii, principal, body)
    return service.to_read(application, pii, principal)


@router.post("/applications/self", status_code=status.HTTP_201_CREATED)
async def apply_for_myself(
    body: SelfApplicationCreate, principal: PrincipalDep, session: SessionDep, pii: PiiDep
) -> ApplicationRead:
    """Apply to join, for yourself: a person logged in by phone who is not a member yet."""
    application = await service.submit_own(session, pii, principal, body)
    return service.to_read(application, pii, principal)


@router.get("/applications")
async def list_applications(
    principal: PrincipalDep,
    session: SessionDep,
    pii: PiiDep,
    page: PageDep,
    org_id: OrgFilter = None,
    status_filter: Annotated[ApplicationStatus | None, Query(alias="status")] = None,
    roster_id: str | None = None,
) -> PageOut[ApplicationRead]:
    """Applications in your scope, filtered by org subtree, status and roster."""
    within = await _within(session, principal, org_id)
    rows = await repository.list_applications(
        session,
        within_path=within,
        status=status_filter.value if status_filter else None,
        roster_id=roster_id,
        cursor=page.cursor,
        limit=page.limit,
    )
    items, next_cursor = page_of(rows, page.limit)
    return PageOut(
        items=[service.to_read(a, pii, principal) for a in items], next_cursor=next_cursor
    )


@router.get("/applications/{application_id}")
async def get_application(
    application_id: str, principal: PrincipalDep, session: SessionDep, pii: PiiDep
) -> ApplicationDetail:
    """One application with its history: every step, who took it, when and why."""
    application = await service.get_application_in_scope(
        session, principal, application_id, Action.applications_read
    )
    return await service.to_detail(session, application, pii, principal)


@router.post("/applications/{application_id}/approve")
async def approve_application(
    application_id: str,
    body: ApprovalCreate,
    principal: PrincipalDep,
    session: SessionDep,
    pii: PiiDep,
    seal: CardSealDep,
) -> ApprovalRead:
    """Approve an application on a roster: the member number is assigned and a card issued."""
    admission = await service.approve(session, principal, application_id, body.approval_doc_no)
    token, expires_at = issue_card(
        seal,
        admission.member,
        admission.org.name,
        seal.valid_days,
        county_code=admission.org.county_code,
    )
    return ApprovalRead(
        application=service.to_read(admission.application, pii, principal),
        member=service.member_summary(admission.member),
        card=CardToken(token=token, expires_at=expires_at),
    )


@router.post("/applications/{application_id}/reject")
async def reject_application(
    application_id: str,
    body: RejectionCreate,
    principal: PrincipalDep,
    session: SessionDep,
    pii: PiiDep,
) -> ApplicationRead:
    """Reject a pending application, with the reason the worker will be told."""
    application = await service.reject(session, principal, application_id, body.reason)
    return service.to_read(application, pii, principal)
