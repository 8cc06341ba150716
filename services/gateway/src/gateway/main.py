"""The gateway: accounts and tokens, routing to the services, dashboards from events."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from gateway import limits, sizes
from gateway.accounts.caller import caller_principal
from gateway.accounts.deps import AccountsState
from gateway.accounts.endpoints import router as accounts_router
from gateway.base import audit_log, inbox, outbox
from gateway.config import GatewaySettings
from gateway.dashboards.endpoints import router as dashboards_router
from gateway.dashboards.handlers import subscriptions as dashboard_subscriptions
from gateway.me.endpoints import router as me_router
from gateway.routing.endpoints import router as routing_router
from gateway.routing.upstreams import Upstreams
from gateway.web.endpoints import router as web_router
from gonghui_shared.app import create_service_app
from gonghui_shared.runtime import ServiceRuntime

DESCRIPTION = """
Gonghui's one front door for mobile apps, other government systems and the county
officials' dashboard.

* **Accounts and tokens**: `POST /v1/auth/token` (OAuth2 password flow) issues the JWTs
  every service verifies; `GET /.well-known/jwks.json` publishes the public key.
* **Routing**: `/v1/membership/…`, `/v1/training/…` and `/v1/stations/…` reach the
  services with the caller's identity, by one rule: the gateway's `/v1/<service>/<rest>`
  is the service's own `/v1/<rest>` (so stations' `/v1/stations/nearby` is
  `/v1/stations/stations/nearby`). A service that is down answers 503
  `service_unavailable` naming it, one too slow 504 `upstream_timeout`. Their own API
  documents, with the gateway's paths: [membership](/v1/membership/docs)
  ([openapi.json](/v1/membership/openapi.json)), [training](/v1/training/docs)
  ([openapi.json](/v1/training/openapi.json)), [stations](/v1/stations/docs)
  ([openapi.json](/v1/stations/openapi.json)).
* **Me** (`/v1/me/…`): a member's own membership, card (token and QR image), trainings
  and certificates, nearby stations, and applying to join.
* **Dashboards** from the services' events, answered from the gateway's own read models;
  the officials' dashboard page is at [/dashboard/](/dashboard/).
* **Audit** (`GET /v1/audit`, `audit.read` within your scope): the gateway's own writes
  (accounts, API keys, sign-ins and sign-outs, failed ones included); what it forwards to
  a service is in that service's `/v1/<service>/audit`.

Errors share one shape: `{"error": {"code", "message", "message_zh", "details", "request_id"}}`.
"""

TAGS = [
    {"name": "auth", "description": "Accounts, tokens, API keys and one-time codes"},
    {"name": "routing", "description": "The services behind the gateway"},
    {"name": "me", "description": "Mobile self-service for members"},
    {"name": "dashboards", "description": "Figures per org subtree, from events"},
    {"name": "audit", "description": "Who did what at the gateway, when, from where"},
    {"name": "operations", "description": "Health, readiness and metrics"},
]


async def _on_startup(app: FastAPI, runtime: ServiceRuntime) -> None:
    assert isinstance(runtime.settings, GatewaySettings)
    app.state.accounts = AccountsState.create(runtime)
    app.state.upstreams = Upstreams.from_settings(runtime.settings, runtime.tracing)


async def _on_shutdown(app: FastAPI) -> None:
    await app.state.upstreams.aclose()


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    app = create_service_app(
        settings,
        title="Gonghui gateway",
        description=DESCRIPTION,
        version="0.1.0",
        # A request is matched against the routes in order, so the busiest come first: the
        # dashboards (a few routes under one prefix, cheap to pass by), then the routed
        # calls. No two routers share paths, so the order changes only the cost.
        routers=[dashboards_router, routing_router, accounts_router, me_router, web_router],
        outbox=outbox,
        inbox=inbox,
        subscriptions=[*dashboard_subscriptions()],
        audit=audit_log,
        audit_principal=caller_principal,
        on_startup=_on_startup,
        on_shutdown=_on_shutdown,
        openapi_tags=TAGS,
    )
    limits.install(app, settings)
    sizes.install(app, settings)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "X-API-Key",
                "X-Request-ID",
            ],
            expose_headers=["Retry-After", "X-Request-ID", "Idempotent-Replayed"],
            max_age=600,
        )
    return app
