"""`/v1/membership/…`, `/v1/training/…`, `/v1/stations/…`: the services behind the gateway.

Per service: its public routes (no login), its API documents (`openapi.json` with the
gateway's paths, and a `docs` page reading it), and one route per method for everything
else, which needs a caller. See `routing.service` for the path rule.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.responses import Response

from gateway.accounts.caller import SECURITY, caller_of
from gateway.idempotency.service import idempotent
from gateway.routing import service
from gateway.routing.service import METHODS, PUBLIC_ROUTES, forward, path_parameters
from gateway.routing.upstreams import SERVICES, UpstreamsDep
from gonghui_shared.errors import ErrorResponse
from gonghui_shared.hot_routes import HotRoute

UPSTREAM_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "No valid token (the service was not called)"},
    502: {"model": ErrorResponse, "description": "The service broke off the call"},
    503: {"model": ErrorResponse, "description": "The service is down: `details.service` names it"},
    504: {"model": ErrorResponse, "description": "The service did not answer in time"},
}

router = APIRouter(tags=["routing"], responses=UPSTREAM_ERRORS)


class RelayRoute(HotRoute):
    """A route that relays to a service: documented like any other, served without
    FastAPI's parameter, dependency and response machinery, which on the path of every
    routed call cost more than relaying it, and for a GET ahead of its router too
    (`HotRoute`). Its endpoint takes the request, resolves the caller itself
    (`caller_of`) and returns the service's answer as it is."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return endpoint

    async def serve(self, request: Request, inputs: Any) -> Response:
        response: Response = await self.endpoint(request)
        return response


def _add_service(name: str) -> None:
    prefix = f"/v1/{name}"

    async def openapi_document(upstreams: UpstreamsDep) -> Response:
        """The service's OpenAPI document with the gateway's paths."""
        response = await upstreams[name].call("GET", "/openapi.json", token=None)
        if response.status_code != 200:
            return service.relay(response)
        return JSONResponse(service.rewrite_openapi(name, response.json()))

    router.add_api_route(
        f"{prefix}/openapi.json",
        openapi_document,
        methods=["GET"],
        name=f"{name}_openapi",
        summary=f"{name}: OpenAPI document",
        description=f"{name}'s OpenAPI document, its paths as the gateway serves them (no login).",
    )

    async def docs() -> HTMLResponse:
        """Swagger UI on the service's document as the gateway serves it."""
        return get_swagger_ui_html(
            openapi_url=f"{prefix}/openapi.json", title=f"Gonghui {name} (through the gateway)"
        )

    router.add_api_route(
        f"{prefix}/docs", docs, methods=["GET"], name=f"{name}_docs", include_in_schema=False
    )

    for method, path in PUBLIC_ROUTES[name]:

        async def public(request: Request) -> Response:
            """A public route of the service, called anonymously."""
            raw_path = service.service_path(request, name)
            upstream = request.app.state.upstreams[name]
            return await forward(request, upstream, raw_path, token=None)

        router.add_api_route(
            f"{prefix}{path}",
            public,
            methods=[method],
            name=f"{name}_public_{method.lower()}_{path}",
            summary=f"{name}: {method} /v1{path} (public)",
            description=f"{name}'s public `{method} /v1{path}`: no login needed.",
            openapi_extra={"parameters": path_parameters(path)},
            route_class_override=RelayRoute,
        )


def _add_routed(name: str, method: str) -> None:
    prefix = f"/v1/{name}"

    async def routed(request: Request) -> Response:
        """Any other route of the service, called with the caller's identity."""
        caller = await caller_of(request)
        upstream = request.app.state.upstreams[name]
        raw_path = service.service_path(request, name)
        if request.method != "POST":
            return await forward(request, upstream, raw_path, caller.upstream_token)
        return await idempotent(
            request,
            caller.principal.subject,
            lambda: forward(request, upstream, raw_path, caller.upstream_token),
        )

    router.add_api_route(
        f"{prefix}/{{path:path}}",
        routed,
        methods=[method],
        name=f"{name}_{method.lower()}",
        summary=f"{name}: {method} /v1/{{path}}",
        description=(
            f"`{method} /v1/{name}/<rest>` is {name}'s own `{method} /v1/<rest>`, called "
            f"with your identity; see [its API document]({prefix}/docs)."
        ),
        openapi_extra={"parameters": path_parameters("{path}"), "security": SECURITY},
        route_class_override=RelayRoute,
    )


# Routes are matched one by one in this order, so the busiest come first: per service, its
# documents and public routes (its catch-alls would swallow them), then its GET catch-all
# (most calls are reads; membership's and stations' the most); the other methods after.
for _name in sorted(SERVICES, key=("membership", "stations", "training").index):
    _add_service(_name)
    _add_routed(_name, "GET")
for _method in METHODS:
    for _name in SERVICES:
        if _method != "GET":
            _add_routed(_name, _method)
