"""`/v1/dashboard`: figures per org subtree, answered from the gateway's own read models."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from gateway.accounts.caller import CallerDep
from gateway.config import GatewaySettings
from gateway.dashboards import service
from gateway.dashboards.schemas import (
    DashboardChildren,
    DashboardMap,
    DashboardOverview,
    DashboardTimeseries,
    Metric,
)
from gonghui_shared.deps import SessionDep
from gonghui_shared.errors import ERROR_RESPONSES

router = APIRouter(prefix="/v1/dashboard", tags=["dashboards"], responses=ERROR_RESPONSES)

MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
OrgId = Annotated[str, Query(max_length=36, description="the org whose whole subtree is shown")]
From = Annotated[
    str | None,
    Query(
        alias="from",
        pattern=MONTH,
        description="first month (YYYY-MM), inclusive; default: from the start",
        examples=["2026-01"],
    ),
]
To = Annotated[
    str | None,
    Query(
        pattern=MONTH,
        description="last month (YYYY-MM), inclusive; stock figures are as at its end; "
        "default: now",
        examples=["2026-12"],
    ),
]


def _circle(request: Request) -> service.Circle:
    settings = request.app.state.runtime.settings
    speed = settings.walking_speed_kmh if isinstance(settings, GatewaySettings) else 4.5
    return service.Circle(minutes=15.0, speed_kmh=speed)


def _answers(request: Request) -> service.Answers:
    """This process's cached answers (one per app: each app may have its own database)."""
    state = request.app.state
    if not hasattr(state, "dashboard_answers"):
        state.dashboard_answers = service.Answers(state.runtime.db)
    answers: service.Answers = state.dashboard_answers
    return answers


def _json(body: bytes) -> Response:
    return Response(content=body, media_type="application/json")


@router.get("/overview", response_model=DashboardOverview)
async def get_overview(
    request: Request,
    org_id: OrgId,
    caller: CallerDep,
    session: SessionDep,
    from_: From = None,
    to: To = None,
) -> Response:
    """Every figure of an org's subtree (members, cadres, training, stations, coverage)."""
    return _json(
        await service.cached_answer(
            session, _answers(request), "overview", caller.principal, org_id, from_, to,
            _circle(request),
        )
    )  # fmt: skip


@router.get("/children", response_model=DashboardChildren)
async def get_children(
    request: Request,
    org_id: OrgId,
    caller: CallerDep,
    session: SessionDep,
    from_: From = None,
    to: To = None,
) -> Response:
    """The same figures for each direct child org's subtree, for drill-down."""
    return _json(
        await service.cached_answer(
            session, _answers(request), "children", caller.principal, org_id, from_, to,
            _circle(request),
        )
    )  # fmt: skip


@router.get("/timeseries")
async def get_timeseries(
    org_id: OrgId,
    metric: Annotated[Metric, Query(description="the figure to draw per month")],
    caller: CallerDep,
    session: SessionDep,
    from_: From = None,
    to: To = None,
) -> DashboardTimeseries:
    """One metric per month over an org's subtree (at most 240 months)."""
    return await service.timeseries(session, caller.principal, org_id, metric, from_, to)


@router.get("/map")
async def get_map(
    request: Request, org_id: OrgId, caller: CallerDep, session: SessionDep
) -> DashboardMap:
    """Stations and village unions of a subtree, for the map of 15-minute circles."""
    return await service.map_points(session, caller.principal, org_id, _circle(request))
