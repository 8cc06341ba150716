"""`GET /v1/audit`: the service's audit log, for platform and county admins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Table

from gonghui_shared.audit import service
from gonghui_shared.audit.schemas import AuditEntryRead
from gonghui_shared.auth import Principal
from gonghui_shared.clock import Instant
from gonghui_shared.deps import PageDep, SessionDep, current_principal
from gonghui_shared.errors import ERROR_RESPONSES
from gonghui_shared.pagination import PageOut, page_of


def audit_router(
    table: Table, principal_dependency: Callable[..., Any] = current_principal
) -> APIRouter:
    """The query endpoint over this service's audit table; `principal_dependency` resolves
    the caller (the gateway's also checks revocation and accepts API keys)."""
    router = APIRouter(prefix="/v1", tags=["audit"], responses=ERROR_RESPONSES)

    @router.get("/audit")
    async def list_audit_entries(
        *,
        # A default, not `Annotated`: postponed annotations cannot name a local variable.
        principal: Principal = Depends(principal_dependency),
        session: SessionDep,
        page: PageDep,
        actor: Annotated[
            str | None, Query(max_length=100, description="the subject who made the request")
        ] = None,
        route: Annotated[
            str | None,
            Query(max_length=200, description="a route template, e.g. /v1/members/{member_no}"),
        ] = None,
        since: Annotated[
            Instant | None,
            Query(alias="from", description="at or after this time (with a UTC offset)"),
        ] = None,
        until: Annotated[
            Instant | None,
            Query(alias="to", description="before this time (with a UTC offset)"),
        ] = None,
        personal_data: Annotated[
            bool | None, Query(description="only requests that did (or did not) show it")
        ] = None,
    ) -> PageOut[AuditEntryRead]:
        """Audited requests in your scope, oldest first: every write, every unmasked read."""
        rows = await service.list_entries(
            session,
            table,
            principal,
            actor=actor,
            route=route,
            since=since,
            until=until,
            personal_data=personal_data,
            cursor=page.cursor,
            limit=page.limit,
        )
        items, next_cursor = page_of(rows, page.limit)
        return PageOut(
            items=[AuditEntryRead.model_validate(r) for r in items], next_cursor=next_cursor
        )

    return router
