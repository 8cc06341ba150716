"""Hot routes: a service's busiest GET routes, served ahead of FastAPI's router.

For a cached dashboard answer or a member lookup, FastAPI's machinery around the work
cost more than the work: its router matched an included route twice (once to choose the
router, once inside it) and ran each request through two exit stacks and an exception
wrapper, then solved the dependencies. A route of class `HotRoute` is documented and
served by FastAPI like any other, and is also put first in the app's routes
(`serve_hot_routes`), where it takes the requests it can answer plainly: a GET that its
own path pattern matches and whose inputs `plain_inputs` accepts as they are. Those it
answers with `serve`; everything else falls through to the router, so a request FastAPI
would refuse is refused by FastAPI, in the house shape. `serve` raises the house errors
as any endpoint does: the app's exception handlers answer them.

The router gives a request to the first route that matches it; a hot route, put first,
leaves to the router any request a route before it could take (`_may_overlap`), so the
order of the routes decides as before.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

_INPUTS = "gonghui.hot_inputs"


class HotRoute(APIRoute, ABC):
    """A GET route whose plain requests `serve` answers ahead of FastAPI's router; a
    service's route class (`route_class_override`) says how."""

    def plain_inputs(self, scope: Scope, path_params: dict[str, Any]) -> Any | None:
        """What `serve` needs, when FastAPI would surely accept the request as it is;
        None sends the request through FastAPI instead. By default: the path parameters
        (a `str` parameter takes any text of its path segment)."""
        return path_params

    @abstractmethod
    async def serve(self, request: Request, inputs: Any) -> Response:
        """The answer to a plain request, from what `plain_inputs` found in it."""


class _Ahead(BaseRoute):
    """Where a `HotRoute` sits in the app's routes: first, taking only its plain requests,
    and none that a route before it (one of `guards`) would have taken."""

    def __init__(self, route: HotRoute, guards: Sequence[BaseRoute]) -> None:
        self.route = route
        self.guards = tuple(guards)
        self.path_format = route.path_format  # what the router's telemetry reads

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] != "GET":
            return Match.NONE, {}
        match, child_scope = self.route.matches(scope)
        if match is not Match.FULL:
            return Match.NONE, {}
        for guard in self.guards:
            if guard.matches(scope)[0] is Match.FULL:
                return Match.NONE, {}
        inputs = self.route.plain_inputs(scope, child_scope["path_params"])
        if inputs is None:
            return Match.NONE, {}
        child_scope[_INPUTS] = inputs
        return Match.FULL, child_scope

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.route.serve(Request(scope, receive, send), scope[_INPUTS])
        await response(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)  # the route itself answers for its name


def _flat(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    """The app's routes in the order the router tries them, included routers opened."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _flat(included.routes)
        else:
            yield route


def serve_hot_routes(app: FastAPI) -> None:
    """Put every `HotRoute` for GET of the app first in its routes, each guarded by the
    routes before it that could take a request of its path."""
    earlier: list[BaseRoute] = []
    ahead: list[_Ahead] = []
    for route in _flat(app.router.routes):
        if isinstance(route, HotRoute) and "GET" in (route.methods or ()):
            ahead.append(_Ahead(route, [e for e in earlier if _may_overlap(e, route)]))
        earlier.append(route)
    app.router.routes[:0] = ahead


def _may_overlap(before: BaseRoute, hot: HotRoute) -> bool:
    """Whether `before` could take a GET of `hot`'s path: a path both match starts with
    both their fixed beginnings (up to the first parameter), so one of these is the
    other's beginning. Any route without a path format (a mount, say) may."""
    methods = getattr(before, "methods", None)
    if methods is not None and "GET" not in methods:
        return False
    before_format = getattr(before, "path_format", None)
    if before_format is None:
        return True
    before_fixed = before_format.split("{", 1)[0]
    hot_fixed = hot.path_format.split("{", 1)[0]
    return before_fixed.startswith(hot_fixed) or hot_fixed.startswith(before_fixed)
