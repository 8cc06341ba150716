"""Request dependencies every service's endpoints use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.auth import Principal, PrincipalDep, current_principal
from gonghui_shared.runtime import ServiceRuntime


def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's transaction: committed when the endpoint returns, rolled back if it raises."""
    async with get_runtime(request).db.transaction() as session:
        yield session


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]
# scope="function": commit before the response is sent, so a failed commit is an error response.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


class Page:
    """Cursor pagination parameters: `limit` and the opaque `cursor` of the previous page."""

    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=500, description="items per page")] = 50,
        cursor: Annotated[
            str | None, Query(description="`next_cursor` of the previous page")
        ] = None,
    ) -> None:
        self.limit = limit
        self.cursor = cursor


PageDep = Annotated[Page, Depends()]

__all__ = [
    "PageDep",
    "Principal",
    "PrincipalDep",
    "RuntimeDep",
    "SessionDep",
    "current_principal",
    "get_session",
]
