"""Recording transitions: who moved what from which state to which, when and why."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.auth import Principal
from gonghui_shared.logging import request_id_var
from membership.audit.models import Transition


async def record_transition(
    session: AsyncSession,
    principal: Principal,
    *,
    entity: str,
    entity_id: str,
    from_state: str | None,
    to_state: str,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> Transition:
    transition = Transition(
        entity=entity,
        entity_id=entity_id,
        from_state=from_state,
        to_state=to_state,
        actor=principal.subject,
        actor_role=principal.role.value,
        reason=reason,
        request_id=request_id_var.get(),
        details=details,
    )
    session.add(transition)
    return transition


async def history(session: AsyncSession, entity: str, entity_id: str) -> list[Transition]:
    rows = await session.scalars(
        select(Transition)
        .where(Transition.entity == entity, Transition.entity_id == entity_id)
        .order_by(Transition.at, Transition.id)
    )
    return list(rows)
