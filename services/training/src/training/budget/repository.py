"""Queries on budget entries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from training.budget.models import BudgetEntry


async def sums(session: AsyncSession, session_id: str) -> dict[tuple[str, str], int]:
    """(kind, category) -> total fen for one session, summed in the database as integers."""
    rows = await session.execute(
        select(BudgetEntry.kind, BudgetEntry.category, func.sum(BudgetEntry.amount_fen))
        .where(BudgetEntry.session_id == session_id)
        .group_by(BudgetEntry.kind, BudgetEntry.category)
    )
    return {(kind, category): int(total) for kind, category, total in rows}


async def entries(session: AsyncSession, session_id: str) -> Sequence[BudgetEntry]:
    return (
        await session.scalars(
            select(BudgetEntry)
            .where(BudgetEntry.session_id == session_id)
            .order_by(BudgetEntry.entry_date, BudgetEntry.id)
        )
    ).all()
