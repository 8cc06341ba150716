"""`/v1/coverage`: the 15-minute union service circle over an org subtree."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import APIRouter, Query

from gonghui_shared.deps import PrincipalDep, RuntimeDep, SessionDep
from gonghui_shared.errors import ERROR_RESPONSES
from stations.config import StationsSettings
from stations.coverage import service
from stations.coverage.schemas import CoverageRead
from stations.nearby.schemas import DEFAULT_MINUTES, MAX_MINUTES

router = APIRouter(prefix="/v1/coverage", tags=["coverage"], responses=ERROR_RESPONSES)


@router.get("")
async def get_coverage(
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
    org_id: Annotated[str, Query(description="the subtree's root org")],
    minutes: Annotated[
        float, Query(gt=0, le=MAX_MINUTES, description="walking minutes to a station")
    ] = DEFAULT_MINUTES,
) -> CoverageRead:
    """Which village/community unions have an active station within walking minutes, the rate,
    and the uncovered ones with their nearest station."""
    settings = cast(StationsSettings, runtime.settings)
    return await service.coverage(
        session, principal, org_id, minutes=minutes, speed_kmh=settings.walking_speed_kmh
    )
