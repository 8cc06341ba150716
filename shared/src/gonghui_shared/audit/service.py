"""Who may read the audit log, and which part of it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Table
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.audit import repository
from gonghui_shared.auth import Principal
from gonghui_shared.errors import OutOfScope
from gonghui_shared.permissions import Action, Role


async def list_entries(
    session: AsyncSession,
    table: Table,
    principal: Principal,
    *,
    actor: str | None,
    route: str | None,
    since: datetime | None,
    until: datetime | None,
    personal_data: bool | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Row[Any]]:
    """The rows `principal` may read: all for the platform, else those done in or to their
    subtree (the row's `org_path` or `actor_org_path` lies in it)."""
    principal.require(Action.audit_read)
    within: str | None = None
    if principal.role is not Role.platform_admin:
        if not principal.org_path:
            raise OutOfScope()  # no scope: nothing of the log is theirs
        within = principal.org_path
    return await repository.list_entries(
        session,
        table,
        within_path=within,
        actor=actor,
        route=route,
        since=since,
        until=until,
        personal_data=personal_data,
        cursor=cursor,
        limit=limit,
    )
