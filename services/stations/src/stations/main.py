"""The stations service: worker service stations and the 15-minute service circle."""

from __future__ import annotations

from fastapi import FastAPI

from gonghui_shared.app import create_service_app
from gonghui_shared.runtime import ServiceRuntime
from stations.base import audit_log, inbox, outbox
from stations.cards import load_card_verifier
from stations.config import StationsSettings
from stations.coverage.endpoints import router as coverage_router
from stations.events.handlers import MEMBERSHIP
from stations.stations.endpoints import router as stations_router
from stations.subsidies.endpoints import router as subsidies_router
from stations.visits.endpoints import router as visits_router

DESCRIPTION = """
Worker service stations (工会爱心驿站), worker homes (职工之家) and village service points
(村级工会服务点): where they are, what they offer, when they are open, the "15-minute
union service circle" (nearby search and coverage), visits and monthly subsidies.

Coordinates are WGS-84 inside the service; the API accepts and returns GCJ-02 (what
Chinese map apps use) when asked with `crs=gcj02`. Orgs and members are known from
membership's events. Errors share one shape:
`{"error": {"code", "message", "message_zh", "details", "request_id"}}`.
"""

TAGS = [
    {"name": "stations", "description": "Stations: location, amenities, opening hours"},
    {"name": "nearby", "description": "The 15-minute service circle"},
    {"name": "visits", "description": "Visits and services used"},
    {"name": "subsidies", "description": "The monthly subsidy ledger"},
    {"name": "coverage", "description": "Which villages have a station within 15 minutes"},
    {"name": "operations", "description": "Health, readiness and metrics"},
]


async def _on_startup(app: FastAPI, runtime: ServiceRuntime) -> None:
    assert isinstance(runtime.settings, StationsSettings)
    # Membership's public key, loaded once: member cards are verified offline.
    app.state.card_verifier = load_card_verifier(runtime.settings)


def create_app(settings: StationsSettings | None = None) -> FastAPI:
    settings = settings or StationsSettings()
    return create_service_app(
        settings,
        title="Gonghui stations",
        description=DESCRIPTION,
        version="0.1.0",
        # coverage and nearby have fixed paths that /v1/stations/{id} must not shadow
        routers=[coverage_router, stations_router, visits_router, subsidies_router],
        outbox=outbox,
        inbox=inbox,
        audit=audit_log,
        subscriptions=[MEMBERSHIP],
        on_startup=_on_startup,
        openapi_tags=TAGS,
    )
