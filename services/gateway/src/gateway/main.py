"""The gateway: accounts and tokens, routing to the services, dashboards from events."""

from __future__ import annotations

from fastapi import FastAPI

from gateway.base import inbox, outbox
from gateway.config import GatewaySettings
from gonghui_shared.app import create_service_app
from gonghui_shared.runtime import ServiceRuntime

DESCRIPTION = """
Gonghui's one front door for mobile apps, other government systems and the county
officials' dashboard.

* **Accounts and tokens**: `POST /v1/auth/token` (OAuth2 password flow) issues the JWTs
  every service verifies; `GET /.well-known/jwks.json` publishes the public key.
* **Routing**: `/v1/membership/…`, `/v1/training/…` and `/v1/stations/…` reach the
  services with the caller's identity. Their own API documents:
  [membership](/v1/membership/docs), [training](/v1/training/docs),
  [stations](/v1/stations/docs).
* **Dashboards** from the services' events, answered from the gateway's own read models.

Errors share one shape: `{"error": {"code", "message", "message_zh", "details", "request_id"}}`.
"""

TAGS = [
    {"name": "auth", "description": "Accounts, tokens, API keys and one-time codes"},
    {"name": "routing", "description": "The services behind the gateway"},
    {"name": "me", "description": "Mobile self-service for members"},
    {"name": "dashboards", "description": "Figures per org subtree, from events"},
    {"name": "operations", "description": "Health, readiness and metrics"},
]


async def _on_startup(app: FastAPI, runtime: ServiceRuntime) -> None:
    assert isinstance(runtime.settings, GatewaySettings)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    return create_service_app(
        settings,
        title="Gonghui gateway",
        description=DESCRIPTION,
        version="0.1.0",
        routers=[],
        outbox=outbox,
        inbox=inbox,
        subscriptions=[],
        on_startup=_on_startup,
        openapi_tags=TAGS,
    )
