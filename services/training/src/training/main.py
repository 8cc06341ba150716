"""The training service: courses, sessions, enrolment, attendance, certificates, competitions."""

from __future__ import annotations

from fastapi import FastAPI

from gonghui_shared.app import create_service_app
from gonghui_shared.runtime import ServiceRuntime
from training.attendance.endpoints import router as attendance_router
from training.attendance.service import QrSigner
from training.base import audit_log, inbox, outbox
from training.budget.endpoints import router as budget_router
from training.certificates.endpoints import router as certificates_router
from training.competitions.endpoints import router as competitions_router
from training.config import TrainingSettings
from training.courses.endpoints import router as courses_router
from training.enrolments.endpoints import router as enrolments_router
from training.events.handlers import MEMBERSHIP
from training.reports.endpoints import router as reports_router
from training.sessions.endpoints import router as sessions_router

DESCRIPTION = """
Skills training for union members and the rural labour force: courses, sessions at any
union of the membership tree, enrolment with a waitlist, attendance by staff or QR
check-in, completion and certificates (人人持证), budgets, skill competitions
(劳动和技能竞赛), and reports that keep person-times (人次) and unique persons apart.

Orgs and members are known from membership's events (a local replica); every request
needs a bearer token whose role and org scope decide what it may see.
Errors share one shape: `{"error": {"code", "message", "message_zh", "details", "request_id"}}`.
"""

TAGS = [
    {"name": "courses", "description": "The course catalogue"},
    {"name": "sessions", "description": "Sessions of a course and their lifecycle"},
    {"name": "enrolments", "description": "Enrolment, waitlist and cancellation"},
    {"name": "attendance", "description": "Check-in per person per day; QR tokens"},
    {"name": "certificates", "description": "Certificates, public verification, revocation"},
    {"name": "budget", "description": "Planned and spent money per session"},
    {"name": "competitions", "description": "Skill competitions: events, entries, ranking"},
    {"name": "reports", "description": "Figures for an org subtree and a period"},
    {"name": "operations", "description": "Health, readiness and metrics"},
]


async def _on_startup(app: FastAPI, runtime: ServiceRuntime) -> None:
    assert isinstance(runtime.settings, TrainingSettings)
    app.state.qr_signer = QrSigner.from_settings(runtime.settings)


def create_app(settings: TrainingSettings | None = None) -> FastAPI:
    settings = settings or TrainingSettings()
    return create_service_app(
        settings,
        title="Gonghui training",
        description=DESCRIPTION,
        version="0.1.0",
        routers=[
            courses_router,
            sessions_router,
            enrolments_router,
            attendance_router,
            certificates_router,
            budget_router,
            competitions_router,
            reports_router,
        ],
        outbox=outbox,
        inbox=inbox,
        audit=audit_log,
        subscriptions=[MEMBERSHIP],
        on_startup=_on_startup,
        openapi_tags=TAGS,
    )
