"""`/v1/dashboard`: figures per org subtree, answered from the gateway's own read models."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request, Response
from starlette.types import Scope

from gateway.accounts.caller import CallerDep, caller_of
from gateway.config import GatewaySettings
from gateway.dashboards import service
from gateway.dashboards.schemas import (
    DashboardChildren,
    DashboardMap,
    DashboardOverview,
    DashboardTimeseries,
    Metric,
)
from gonghui_shared.auth import Principal
from gonghui_shared.deps import SessionDep
from gonghui_shared.errors import ERROR_RESPONSES
from gonghui_shared.hot_routes import HotRoute

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
        runtime = state.runtime
        state.dashboard_answers = service.Answers(runtime.db, runtime.reads, _circle(request))
    answers: service.Answers = state.dashboard_answers
    return answers


def _json(body: bytes) -> Response:
    return Response(content=body, media_type="application/json")


# What FastAPI accepts for `org_id`, `from` and `to`, or less: ASCII digits only, and no
# `$` that would let a trailing newline through.
_PLAIN_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
_ORG_ID_MAX = 36

Asked = tuple[str, str | None, str | None]


def plain_query(query_string: bytes) -> Asked | None:
    """(org_id, from, to) when FastAPI would surely accept them as they are; else None,
    and FastAPI judges the query (and answers 422 in the house shape where it must).
    Read as Starlette reads a query string: the last of a repeated name counts."""
    params = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
    org_id, first, last = params.get("org_id"), params.get("from"), params.get("to")
    if not org_id or len(org_id) > _ORG_ID_MAX:
        return None
    for month in (first, last):
        if month is not None and _PLAIN_MONTH.fullmatch(month) is None:
            return None
    return org_id, first, last


async def _answer(request: Request, kind: str, principal: Principal, asked: Asked) -> Response:
    org_id, first, last = asked
    return _json(
        await service.cached_answer(_answers(request), kind, principal, org_id, first, last)
    )


class CachedAnswerRoute(HotRoute):
    """An overview or children route: documented like any other, but a request whose query
    is plainly valid is answered ahead of FastAPI's router, parameters, dependencies and
    response machinery, which cost more than a cached answer itself (`HotRoute`). It
    resolves the caller as `CallerDep` does (`caller_of`); anything else goes through
    FastAPI, so its errors are FastAPI's own."""

    def plain_inputs(self, scope: Scope, path_params: dict[str, Any]) -> Asked | None:
        return plain_query(scope["query_string"])

    async def serve(self, request: Request, inputs: Asked) -> Response:
        caller = await caller_of(request)
        kind = self.path.rsplit("/", 1)[-1]  # the answer's kind: "overview" or "children"
        return await _answer(request, kind, caller.principal, inputs)


async def get_overview(
    request: Request, org_id: OrgId, caller: CallerDep, from_: From = None, to: To = None
) -> Response:
    """Every figure of an org's subtree (members, cadres, training, stations, coverage)."""
    return await _answer(request, "overview", caller.principal, (org_id, from_, to))


async def get_children(
    request: Request, org_id: OrgId, caller: CallerDep, from_: From = None, to: To = None
) -> Response:
    """The same figures for each direct child org's subtree, for drill-down."""
    return await _answer(request, "children", caller.principal, (org_id, from_, to))


for _path, _endpoint, _model in (
    ("/overview", get_overview, DashboardOverview),
    ("/children", get_children, DashboardChildren),
):
    router.add_api_route(
        _path,
        _endpoint,
        methods=["GET"],
        response_model=_model,
        route_class_override=CachedAnswerRoute,
    )


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
