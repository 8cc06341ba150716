"""Request dependencies every service's endpoints use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.auth import Principal, PrincipalDep, current_principal
from gonghui_shared.runtime import ServiceRuntime


# Dependencies are `async def` even when they do not await: FastAPI runs a plain `def`
# (and a class) in its thread pool, a hop that costs more than the work on hot paths.
async def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's transaction: committed when the endpoint returns, rolled back if it raises."""
    runtime: ServiceRuntime = request.app.state.runtime
    async with runtime.db.transaction() as session:
        yield session


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]
# scope="function": commit before the response is sent, so a failed commit is an error response.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


class Page:
    """Cursor pagination parameters: `limit` and the opaque `cursor` of the previous page."""

    def __init__(self, limit: int = 50, cursor: str | None = None) -> None:
        self.limit = limit
        self.cursor = cursor


async def page_params(
    limit: Annotated[int, Query(ge=1, le=500, description="items per page")] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> Page:
    return Page(limit, cursor)


PageDep = Annotated[Page, Depends(page_params)]

__all__ = [
    "PageDep",
    "Principal",
    "PrincipalDep",
    "RuntimeDep",
    "SessionDep",
    "current_principal",
    "get_session",
]
