"""Training budgets: planned and spent money per session and category (培训经费).

Entries carry the host org's path and a date, so reports can total costs for an
org subtree and a period without joining sessions.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.auth import Principal
from gonghui_shared.clock import today_in_china
from gonghui_shared.errors import Conflict
from gonghui_shared.permissions import Action
from training.budget import repository
from training.budget.models import BudgetCategory, BudgetEntry
from training.budget.schemas import (
    BudgetCategoryLine,
    BudgetEntryCreate,
    BudgetEntryRead,
    BudgetSummary,
    BudgetTotals,
    to_fen,
    yuan,
)
from training.sessions.models import SessionStatus
from training.sessions.service import get_session_in_scope


class BudgetClosed(Conflict):
    code = "session_cancelled"
    message = "The session was cancelled; its budget is closed"
    message_zh = "培训班已取消，不能再登记经费"


def to_read(entry: BudgetEntry) -> BudgetEntryRead:
    """The entry with its amount in yuan."""
    return BudgetEntryRead.model_validate(
        {
            "id": entry.id,
            "session_id": entry.session_id,
            "kind": entry.kind,
            "category": entry.category,
            "amount": yuan(entry.amount_fen),
            "entry_date": entry.entry_date,
            "note": entry.note,
            "recorded_by": entry.recorded_by,
            "recorded_at": entry.recorded_at,
        }
    )


async def add_entry(
    session: AsyncSession, principal: Principal, session_id: str, data: BudgetEntryCreate
) -> BudgetEntry:
    """Record a planned or spent amount against a session that was not cancelled."""
    ts = await get_session_in_scope(session, principal, session_id, Action.budget_write)
    if ts.status == SessionStatus.cancelled:
        raise BudgetClosed()
    entry = BudgetEntry(
        session_id=ts.id,
        host_org_path=ts.host_org_path,
        kind=data.kind.value,
        category=data.category.value,
        amount_fen=to_fen(data.amount),
        entry_date=data.entry_date or today_in_china(),
        note=data.note,
        recorded_by=principal.subject,
    )
    session.add(entry)
    await session.flush()
    return entry


async def summary(session: AsyncSession, principal: Principal, session_id: str) -> BudgetSummary:
    """Per-category planned and spent, totals in exact yuan, and every entry."""
    ts = await get_session_in_scope(session, principal, session_id, Action.sessions_read)
    sums = await repository.sums(session, ts.id)
    totals = BudgetTotals.of(sums, ts.planned_budget_fen)
    return BudgetSummary(
        **totals.model_dump(),
        session_id=ts.id,
        categories=[
            BudgetCategoryLine(
                category=category,
                planned=yuan(sums.get(("planned", category.value), 0)),
                spent=yuan(sums.get(("spent", category.value), 0)),
            )
            for category in BudgetCategory
        ],
        entries=[to_read(e) for e in await repository.entries(session, ts.id)],
    )
