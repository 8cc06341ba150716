"""Recording transitions: who moved what from which state to which, when and why."""

from __future__ import annotations

from typing import Any, NamedTuple, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.auth import Principal
from gonghui_shared.ids import new_id
from gonghui_shared.logging import request_id_var
from gonghui_shared.models import utcnow
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


class Step(NamedTuple):
    """One transition for `record_transitions`."""

    entity: str
    entity_id: str
    from_state: str | None
    to_state: str
    details: dict[str, Any] | None = None
    reason: str | None = None


async def record_transitions(
    session: AsyncSession, principal: Principal, steps: list[Step]
) -> None:
    """Many transitions by one principal, with one executemany insert (batch approvals
    write thousands; as ORM objects each would cost more than its row)."""
    if not steps:
        return
    at = utcnow()
    request_id = request_id_var.get()
    # The table, not the mapped class: an ORM bulk insert sends a statement per row here.
    await session.execute(
        insert(cast(Table, Transition.__table__)),
        [
            {
                "id": new_id(),
                "entity": step.entity,
                "entity_id": step.entity_id,
                "from_state": step.from_state,
                "to_state": step.to_state,
                "actor": principal.subject,
                "actor_role": principal.role.value,
                "reason": step.reason,
                "request_id": request_id,
                "details": step.details,
                "at": at,
            }
            for step in steps
        ],
    )


async def history(session: AsyncSession, entity: str, entity_id: str) -> list[Transition]:
    rows = await session.scalars(
        select(Transition)
        .where(Transition.entity == entity, Transition.entity_id == entity_id)
        .order_by(Transition.at, Transition.id)
    )
    return list(rows)
