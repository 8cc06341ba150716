"""`/v1/reports`: training figures for an org subtree."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from gonghui_shared.deps import PrincipalDep, SessionDep
from gonghui_shared.errors import ERROR_RESPONSES
from training.reports import service
from training.reports.schemas import CadreTrainingCoverage, ReportSummary

router = APIRouter(prefix="/v1/reports", tags=["reports"], responses=ERROR_RESPONSES)

OrgId = Annotated[str, Query(description="the org whose whole subtree is reported")]


@router.get("/summary")
async def get_summary(
    org_id: OrgId,
    principal: PrincipalDep,
    session: SessionDep,
    from_: Annotated[
        date | None,
        Query(alias="from", description="first day, inclusive; default 1 January this year"),
    ] = None,
    to: Annotated[
        date | None,
        Query(description="last day, inclusive; at most 5 years after `from`; default 31 Dec"),
    ] = None,
) -> ReportSummary:
    """Sessions held, person-times (人次) vs unique persons, certificates and cost of a subtree."""
    return await service.summary(session, principal, org_id, from_, to)


@router.get("/cadre-training")
async def get_cadre_training(
    org_id: OrgId,
    principal: PrincipalDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="most untrained cadres listed")] = 100,
) -> CadreTrainingCoverage:
    """Cadre training coverage: the subtree's cadres, those trained, and those not yet."""
    return await service.cadre_training(session, principal, org_id, limit)
