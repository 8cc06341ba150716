"""The FastAPI application every service builds the same way.

`create_service_app` wires what all services share: the lifespan (database,
bus, outbox relay, consumers), request ids, JSON logs, the error shape,
`/healthz`, `/readyz` and `/metrics`, a span per request when tracing is on
(`gonghui_shared.tracing`), and (given its `audit_log` table) the request
audit trail with `GET /v1/audit`, and (given consumers) the dead letter endpoints.
A service's `main.py` only adds its routers.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Table
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gonghui_shared import metrics
from gonghui_shared.audit.endpoints import audit_router
from gonghui_shared.audit.middleware import AuditMiddleware
from gonghui_shared.auth import current_principal
from gonghui_shared.bus import Subscription
from gonghui_shared.bus.consumer import ConsumerTables
from gonghui_shared.deadletters.endpoints import dead_letter_router
from gonghui_shared.errors import error_response, install_error_handlers
from gonghui_shared.hot_routes import serve_hot_routes
from gonghui_shared.logging import configure_logging, log_access, request_id_var
from gonghui_shared.runtime import JwksRefresher, ServiceRuntime, build_verifier, startup_frozen
from gonghui_shared.settings import ServiceSettings
from gonghui_shared.tracing import TRACE_HEADERS, Tracing, mark_failed

log = logging.getLogger(__name__)

StartupHook = Callable[[FastAPI, ServiceRuntime], Awaitable[None]]
ShutdownHook = Callable[[FastAPI], Awaitable[None]]


# Probes and scrapes, every few seconds: no access log line and no span.
_OPERATIONS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestContextMiddleware:
    """Request id in, request id out; one access log line, metrics and (tracing on) a
    server span per request."""

    def __init__(self, app: ASGIApp, service: str, tracing: Tracing | None = None) -> None:
        self.app = app
        self.service = service
        self.tracing = tracing or Tracing()
        # The labelled series each (method, route, status) counts into, found once:
        # `labels()` takes a lock and builds its key on every call.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _count(self, method: str, template: str, status: int, elapsed: float) -> None:
        key = (method, template, status)
        series = self._series.get(key)
        if series is None:
            series = (
                metrics.HTTP_REQUESTS.labels(self.service, method, template, str(status)),
                metrics.HTTP_LATENCY.labels(self.service, method, template),
            )
            self._series[key] = series
        series[0].inc()
        series[1].observe(elapsed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if not self.tracing.enabled or scope["path"] in _OPERATIONS_PATHS:
            await self._serve(scope, receive, send, headers, INVALID_SPAN)
            return
        # The caller's trace, if it sent one; else this request starts one.
        parent = {
            name: headers[name.encode()].decode("latin-1")
            for name in TRACE_HEADERS
            if name.encode() in headers
        }
        with self.tracing.span(
            scope["method"],
            kind=SpanKind.SERVER,
            parent=parent,
            attributes={
                "http.request.method": scope["method"],
                "url.scheme": scope.get("scheme", "http"),
            },
        ) as span:
            await self._serve(scope, receive, send, headers, span)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes], span: Span
    ) -> None:
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")[:64]
        # Ids correlate log lines, they guard nothing: a fast PRNG does, no system call.
        request_id = incoming if incoming.isprintable() and incoming else _new_request_id()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500  # what the client gets if an exception escapes before the response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"].append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            route = getattr(scope.get("route"), "path", "unmatched")
            metrics.HTTP_EXCEPTIONS.labels(self.service, route, type(exc).__name__).inc()
            raise
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = scope["method"]
            self._count(method, template, status, elapsed)
            if span.is_recording():
                span.update_name(f"{method} {template}")
                span.set_attribute("http.route", template)
                span.set_attribute("http.response.status_code", status)
                span.set_attribute("gonghui.request_id", request_id)
                if status >= 500:
                    mark_failed(span, description=f"HTTP {status}")
            if template not in _OPERATIONS_PATHS:
                log_access(
                    f"{method} {scope['path']} {status}",
                    {"status": status, "ms": round(elapsed * 1000, 1), "route": template},
                )
            request_id_var.reset(token)


def _new_request_id() -> str:
    """16 hex digits, as the first half of a uuid4's."""
    return f"{random.getrandbits(64):016x}"


class RejectNulCharacters:
    """NUL is never valid text, and PostgreSQL refuses it: turn it away as a 422 up front.

    Checks the path, the query string and JSON bodies (file uploads are binary
    and are left alone).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        if b"%00" in raw_path or "\x00" in scope["path"] or b"%00" in scope["query_string"]:
            await self._reject(send)
            return
        headers = dict(scope.get("headers") or [])
        if not headers.get(b"content-type", b"").startswith(b"application/json"):
            await self.app(scope, receive, send)
            return
        body, more = bytearray(), True
        messages: list[Message] = []
        while more:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if message["type"] != "http.request":
                break
        if b"\\u0000" in body or b"\x00" in body:
            await self._reject(send)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _reject(send: Send) -> None:
        response = error_response(
            422, "invalid_character", "Text may not contain NUL characters", "文本不能包含空字符"
        )
        await send({"type": "http.response.start", "status": 422, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})


def health_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        """The process is up and serving HTTP."""
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness", responses={503: {"description": "not ready"}})
    async def readyz(request: Request) -> JSONResponse:
        """Ready when the database answers and NATS with JetStream is connected."""
        runtime: ServiceRuntime = request.app.state.runtime
        checks: dict[str, str] = {}
        for name, probe in (("database", runtime.db.ping), ("nats", runtime.bus.check)):
            try:
                await asyncio.wait_for(probe(), 2.0)
                checks[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - report, don't raise
                checks[name] = f"failing: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    version: str,
    routers: Sequence[APIRouter],
    outbox: Table,
    inbox: Table,
    subscriptions: Sequence[Subscription] = (),
    on_startup: StartupHook | None = None,
    on_shutdown: ShutdownHook | None = None,
    openapi_tags: list[dict[str, Any]] | None = None,
    audit: Table | None = None,
    audit_principal: Callable[..., Any] | None = None,
) -> FastAPI:
    """The service's app; `audit` (from `gonghui_shared.audit.audit_table`) turns on the
    audit trail: every write and every unmasked personal-data read leaves a row in it.
    `audit_principal` replaces the dependency that resolves who reads it (default: the
    bearer token's principal)."""
    # Made with the app, not in the lifespan: the request middleware needs it too.
    tracing = Tracing.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.service_name, settings.log_level)
        verifier = await build_verifier(settings)
        runtime = ServiceRuntime.create(settings, outbox, verifier, tracing=tracing)
        runtime.jwks = JwksRefresher.for_settings(settings, verifier)
        app.state.runtime = runtime
        if on_startup is not None:
            await on_startup(app, runtime)
        runtime.start(inbox, subscriptions)
        with startup_frozen():
            log.info("started", extra={"port": settings.port, "database": runtime.db.dialect})
            try:
                yield
            finally:
                if on_shutdown is not None:
                    await on_shutdown(app)
                await runtime.stop()

    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        openapi_tags=openapi_tags,
        # Spans come from `RequestContextMiddleware` (`gonghui_shared.tracing`), metrics from
        # `gonghui_shared.metrics`. FastAPI's own would double them once anything set a
        # process-wide provider, and asking whether one is set took 4.5 us per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    if audit is not None:
        # Innermost: sees the route and the principal, and runs inside the request id.
        app.add_middleware(AuditMiddleware, table=audit, trusted_proxies=settings.trusted_proxies)
    app.add_middleware(RejectNulCharacters)
    app.add_middleware(RequestContextMiddleware, service=settings.service_name, tracing=tracing)
    app.include_router(health_router())
    for router in routers:
        app.include_router(router)
    if audit is not None:
        app.include_router(audit_router(audit, audit_principal or current_principal))
    if subscriptions:
        # Admins reach the dead letters as they reach the audit log: the same caller resolution.
        app.include_router(
            dead_letter_router(
                ConsumerTables.beside(inbox).dead_letters, audit_principal or current_principal
            )
        )
    serve_hot_routes(app)
    return app
