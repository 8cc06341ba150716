"""The membership service: union organisations, members, the admission procedure."""

from __future__ import annotations

from fastapi import FastAPI

from gonghui_shared.app import create_service_app
from gonghui_shared.runtime import ServiceRuntime
from membership.admissions.endpoints import router as admissions_router
from membership.base import audit_log, inbox, outbox
from membership.cadres.endpoints import router as cadres_router
from membership.cards.endpoints import router as cards_router
from membership.cards.service import load_card_seal
from membership.config import MembershipSettings
from membership.members.endpoints import router as members_router
from membership.orgs.endpoints import router as orgs_router
from membership.rosters.endpoints import router as rosters_router
from membership.units.endpoints import router as units_router

DESCRIPTION = """
Union organisations in a tree (县总工会 → 乡镇/街道工会 → 村/社区工会, with enterprise
and system unions and union federations under any level), the administrative units
they must cover, members, and the admission procedure: signed application → roster →
approval by the county federation → member number and member card.

Every request needs a bearer token (`Authorization: Bearer …`) whose role and org
scope decide what it may see: a village chair sees only its village.
Errors share one shape: `{"error": {"code", "message", "message_zh", "details", "request_id"}}`.
"""

TAGS = [
    {"name": "orgs", "description": "Union organisations and their tree"},
    {"name": "units", "description": "Administrative units and union coverage"},
    {"name": "admissions", "description": "Applications, rosters and approval (入会)"},
    {"name": "members", "description": "Members, transfers and the end of membership"},
    {"name": "cards", "description": "Member cards signed with the county seal"},
    {"name": "rosters", "description": "Roster (花名册) import and export"},
    {"name": "cadres", "description": "Union cadres (工会干部)"},
    {"name": "operations", "description": "Health, readiness and metrics"},
]


async def _on_startup(app: FastAPI, runtime: ServiceRuntime) -> None:
    assert isinstance(runtime.settings, MembershipSettings)
    app.state.card_seal = load_card_seal(runtime.settings)


def create_app(settings: MembershipSettings | None = None) -> FastAPI:
    settings = settings or MembershipSettings()
    return create_service_app(
        settings,
        title="Gonghui membership",
        description=DESCRIPTION,
        version="0.1.0",
        # A request is matched against the routes one by one (FastAPI keeps each router
        # whole and walks it twice: to match, then to handle), so the busiest come first:
        # the member lookup's router. Apart from the rosters rule below, no two routers
        # share paths, so the order changes only the cost.
        routers=[
            members_router,
            orgs_router,
            units_router,
            # Before admissions: its /v1/rosters/{roster_id} would swallow /v1/rosters/import.
            rosters_router,
            admissions_router,
            cards_router,
            cadres_router,
        ],
        outbox=outbox,
        inbox=inbox,
        audit=audit_log,
        on_startup=_on_startup,
        openapi_tags=TAGS,
    )
