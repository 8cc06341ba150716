"""`/v1/stations/{id}/subsidies` and `/v1/subsidies`: the monthly subsidy ledger and its totals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from gonghui_shared.deps import PageDep, PrincipalDep, SessionDep
from gonghui_shared.errors import ERROR_RESPONSES
from gonghui_shared.pagination import PageOut, page_of
from stations.subsidies import repository, service
from stations.subsidies.schemas import (
    PERIOD_PATTERN,
    SubsidyAccrue,
    SubsidyAccrued,
    SubsidyCreate,
    SubsidyPay,
    SubsidyRead,
    SubsidyStatus,
    SubsidyTotals,
)

router = APIRouter(prefix="/v1", tags=["subsidies"], responses=ERROR_RESPONSES)

OrgQuery = Annotated[
    str | None,
    Query(max_length=36, description="the org whose subtree to read (default your own scope)"),
]


@router.post("/stations/{station_id}/subsidies", status_code=status.HTTP_201_CREATED)
async def record_subsidy(
    station_id: str, body: SubsidyCreate, principal: PrincipalDep, session: SessionDep
) -> SubsidyRead:
    """Record a station's subsidy for a month, unpaid (default: the station's monthly amount)."""
    return await service.record(session, principal, station_id, body)


# Fixed paths before /subsidies/{subsidy_id}/…, though the methods differ today.
@router.post("/subsidies/accrue")
async def accrue_subsidies(
    body: SubsidyAccrue, principal: PrincipalDep, session: SessionDep
) -> SubsidyAccrued:
    """Create the month's unpaid lines for every subsidised active station in a subtree."""
    return await service.accrue(session, principal, body)


@router.get("/subsidies/totals")
async def subsidy_totals(
    principal: PrincipalDep,
    session: SessionDep,
    org_id: OrgQuery = None,
    from_: Annotated[
        str | None, Query(alias="from", pattern=PERIOD_PATTERN, description="first month, YYYY-MM")
    ] = None,
    to: Annotated[
        str | None, Query(pattern=PERIOD_PATTERN, description="last month, YYYY-MM")
    ] = None,
) -> SubsidyTotals:
    """Recorded, paid and unpaid yuan and stations, per month and overall, over an org subtree."""
    return await service.totals(session, principal, org_id, from_, to)


@router.get("/subsidies")
async def list_subsidies(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    org_id: OrgQuery = None,
    period: Annotated[
        str | None, Query(pattern=PERIOD_PATTERN, description="only this month, YYYY-MM")
    ] = None,
    status: SubsidyStatus | None = None,
    station_id: Annotated[str | None, Query(max_length=36)] = None,
) -> PageOut[SubsidyRead]:
    """Ledger lines in an org subtree, filtered by month, status and station."""
    within = await service.scope_path(session, principal, org_id)
    rows = await repository.list_lines(
        session,
        within_path=within,
        period=period,
        status=status.value if status else None,
        station_id=station_id,
        cursor=page.cursor,
        limit=page.limit,
    )
    items, next_cursor = page_of(rows, page.limit, id_of=lambda r: r[0].id)
    return PageOut(
        items=[service.to_read(line, name, kind) for line, name, kind in items],
        next_cursor=next_cursor,
    )


@router.post("/subsidies/{subsidy_id}/pay")
async def pay_subsidy(
    subsidy_id: str, principal: PrincipalDep, session: SessionDep, body: SubsidyPay | None = None
) -> SubsidyRead:
    """Mark a ledger line paid (once); publishes SubsidyPaid."""
    return await service.pay(session, principal, subsidy_id, body or SubsidyPay())
