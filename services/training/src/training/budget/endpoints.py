"""`/v1/sessions/{id}/budget`: planned and spent money of a session (培训经费)."""

from __future__ import annotations

from fastapi import APIRouter

from gonghui_shared.deps import PrincipalDep, SessionDep
from gonghui_shared.errors import ERROR_RESPONSES
from training.budget import service
from training.budget.schemas import BudgetEntryCreate, BudgetEntryRead, BudgetSummary

router = APIRouter(
    prefix="/v1/sessions/{session_id}/budget", tags=["budget"], responses=ERROR_RESPONSES
)


@router.post("", status_code=201)
async def add_budget_entry(
    session_id: str, body: BudgetEntryCreate, principal: PrincipalDep, session: SessionDep
) -> BudgetEntryRead:
    """Record a planned or spent amount (yuan, 2 decimals) in one budget category."""
    return service.to_read(await service.add_entry(session, principal, session_id, body))


@router.get("")
async def get_budget(
    session_id: str, principal: PrincipalDep, session: SessionDep
) -> BudgetSummary:
    """Planned and spent per category, totals, the planned budget, and whether it is overspent."""
    return await service.summary(session, principal, session_id)
