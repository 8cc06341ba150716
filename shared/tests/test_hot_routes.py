"""Hot routes: the plain requests answered ahead of FastAPI's router, the rest left to it."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Query, Request, Response

from gonghui_shared.errors import ERROR_RESPONSES, NotFound, install_error_handlers
from gonghui_shared.hot_routes import HotRoute, serve_hot_routes
from gonghui_shared.testing import count_dependency_solving


class _Gone(NotFound):
    code = "thing_not_found"
    message = "No such thing"
    message_zh = "没有这个东西"


class ThingRoute(HotRoute):
    """Serves `GET /v1/things/{name}` when `?size` is absent or plain digits."""

    served: list[tuple[str, int]] = []

    def plain_inputs(self, scope: Any, path_params: dict[str, Any]) -> Any | None:
        size = dict(httpx.QueryParams(scope["query_string"].decode())).get("size", "1")
        return (path_params["name"], int(size)) if size.isdigit() else None

    async def serve(self, request: Request, inputs: tuple[str, int]) -> Response:
        name, size = inputs
        if name == "gone":
            raise _Gone()
        self.served.append(inputs)
        return Response(f'{{"name": "{name}", "size": {size}, "by": "hot"}}')


async def get_thing(name: str, size: Annotated[int, Query(ge=0)] = 1) -> dict[str, Any]:
    """One thing."""
    if name == "gone":
        raise _Gone()
    return {"name": name, "size": size, "by": "fastapi"}


def _app(*routers: APIRouter) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    for router in routers:
        app.include_router(router)
    serve_hot_routes(app)
    return app


def _things() -> APIRouter:
    router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)
    router.add_api_route("/things", lambda: [], methods=["GET"])
    router.add_api_route("/things/count", lambda: 0, methods=["POST"])
    router.add_api_route(
        "/things/{name}", get_thing, methods=["GET"], route_class_override=ThingRoute
    )
    return router


@pytest.fixture
async def client() -> Any:
    ThingRoute.served = []
    transport = httpx.ASGITransport(app=_app(_things()))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_a_plain_request_is_served_ahead_of_the_router(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    solved = count_dependency_solving(monkeypatch)
    answer = await client.get("/v1/things/lamp", params={"size": "3"})
    assert answer.json() == {"name": "lamp", "size": 3, "by": "hot"}
    assert ThingRoute.served == [("lamp", 3)] and solved == []
    # A request `plain_inputs` does not take is FastAPI's, as is any other method.
    fastapi_s = await client.get("/v1/things/lamp", params={"size": "x"})
    assert fastapi_s.status_code == 422 and ThingRoute.served == [("lamp", 3)]
    assert solved == ["/v1/things/lamp"]
    assert (await client.post("/v1/things/lamp")).status_code == 405
    assert ThingRoute.served == [("lamp", 3)]


async def test_errors_of_serve_reach_the_app_s_handlers_in_the_house_shape(
    client: httpx.AsyncClient,
) -> None:
    for params in ({}, {"size": "-1"}):  # the hot route's, then FastAPI's (not plain digits)
        refused = await client.get("/v1/things/gone", params=params)
        error = refused.json()["error"]
        expected = (404, "thing_not_found") if not params else (422, "validation_error")
        assert (refused.status_code, error["code"]) == expected, refused.text


async def test_the_route_is_documented_once_as_fastapi_documents_it(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/v1/things/{name}"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["name", "size"]
    assert operation["summary"] == "Get Thing" and "404" in operation["responses"]


async def test_a_route_before_it_keeps_the_requests_it_takes() -> None:
    """The router gives a request to the first route that matches: a GET route before the
    hot one keeps its path, a POST-only one takes none of its GETs, one after takes none."""
    earlier = APIRouter(prefix="/v1")
    earlier.add_api_route("/things/special", lambda: {"by": "earlier"}, methods=["GET"])
    earlier.add_api_route("/things/posted", lambda: {"by": "posted"}, methods=["POST"])
    later = APIRouter(prefix="/v1")
    later.add_api_route("/things/later", lambda: {"by": "later"}, methods=["GET"])
    app = _app(earlier, _things(), later)
    assert isinstance(getattr(app.router.routes[0], "route", None), ThingRoute)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for name, by in (("special", "earlier"), ("posted", "hot"), ("later", "hot")):
            answer = await client.get(f"/v1/things/{name}")
            assert answer.json()["by"] == by, (name, answer.text)
