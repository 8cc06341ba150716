"""`GET /v1/dead-letters` and `POST /v1/dead-letters/{id}/replay`, for the admins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Table

from gonghui_shared.audit import mark_personal_data_read
from gonghui_shared.auth import Principal
from gonghui_shared.deadletters import service
from gonghui_shared.deadletters.schemas import DeadLetterRead, ReplayRead
from gonghui_shared.deps import PageDep, RuntimeDep, SessionDep, current_principal
from gonghui_shared.errors import ERROR_RESPONSES
from gonghui_shared.pagination import PageOut, page_of


def dead_letter_router(
    table: Table, principal_dependency: Callable[..., Any] = current_principal
) -> APIRouter:
    """The endpoints over this service's `dead_letters` table; `principal_dependency`
    resolves the caller, as for the audit log."""
    router = APIRouter(prefix="/v1", tags=["operations"], responses=ERROR_RESPONSES)

    @router.get("/dead-letters")
    async def list_dead_letters(
        *,
        # A default, not `Annotated`: postponed annotations cannot name a local variable.
        principal: Principal = Depends(principal_dependency),
        session: SessionDep,
        page: PageDep,
        consumer: Annotated[
            str | None,
            Query(max_length=120, description="a durable consumer, e.g. training__membership"),
        ] = None,
        replayed: Annotated[
            bool | None, Query(description="only those replayed already (or not yet)")
        ] = None,
    ) -> PageOut[DeadLetterRead]:
        """Events this service's consumers gave up on, in your scope, oldest first."""
        rows = await service.list_dead_letters(
            session,
            table,
            principal,
            consumer=consumer,
            replayed=replayed,
            cursor=page.cursor,
            limit=page.limit,
        )
        items, next_cursor = page_of(rows, page.limit)
        if items:
            mark_personal_data_read()  # payloads are events as published, names included
        return PageOut(
            items=[DeadLetterRead.model_validate(r) for r in items], next_cursor=next_cursor
        )

    @router.post("/dead-letters/{dead_letter_id}/replay")
    async def replay_dead_letter(
        dead_letter_id: str,
        *,
        principal: Principal = Depends(principal_dependency),
        runtime: RuntimeDep,
        force: Annotated[
            bool,
            Query(description="apply even if an earlier event of its aggregate never arrived"),
        ] = False,
    ) -> ReplayRead:
        """Apply the event again through its handler and inbox; replaying twice applies once."""
        outcome, row = await service.replay(runtime, table, principal, dead_letter_id, force=force)
        mark_personal_data_read()
        return ReplayRead(outcome=outcome, dead_letter=DeadLetterRead.model_validate(row))

    return router
