"""Reports for an org subtree: what was held, who came, what it cost, cadre coverage."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.auth import Principal
from gonghui_shared.clock import today_in_china
from gonghui_shared.errors import Unprocessable
from gonghui_shared.permissions import Action
from training.replicas.models import OrgReplica
from training.replicas.service import org_in_scope
from training.reports import repository
from training.reports.schemas import (
    COURSE_CATEGORY_LABELS_ZH,
    WORKER_CATEGORY_LABELS_ZH,
    CadreTrainingCoverage,
    CostFigures,
    CourseCategoryFigures,
    OrgRef,
    Period,
    ReportSummary,
    UntrainedCadre,
    WorkerCategoryFigures,
)

MAX_PERIOD_YEARS = 5


class InvalidPeriod(Unprocessable):
    code = "invalid_period"
    message = "The period is invalid"
    message_zh = "统计期间无效"


def _years_later(day: date, years: int) -> date:
    if day.year + years > date.max.year:
        return date.max
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)


def resolve_period(start: date | None, end: date | None) -> tuple[date, date]:
    """The period asked for; a missing bound is that of this calendar year in China."""
    year = today_in_china().year
    start = start or date(year, 1, 1)
    end = end or date(year, 12, 31)
    if start > end:
        raise InvalidPeriod(
            f"from ({start}) is after to ({end})",
            f"开始日期（{start}）晚于结束日期（{end}）",
            details={"field": "from"},
        )
    if end > _years_later(start, MAX_PERIOD_YEARS):
        raise InvalidPeriod(
            f"The period may span at most {MAX_PERIOD_YEARS} years",
            f"统计期间最长为{MAX_PERIOD_YEARS}年",
            details={"field": "to"},
        )
    return start, end


def per_unit(fen: int, units: int) -> str | None:
    """fen / units in yuan, rounded half up to the fen; None when there is nothing to divide by."""
    if units == 0:
        return None
    value = (Decimal(fen) / Decimal(units)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return yuan(int(value))


def yuan(fen: int) -> str:
    """27000000 -> "270000.00", exactly."""
    return f"{Decimal(fen).scaleb(-2):.2f}"


def _org_ref(org: OrgReplica) -> OrgRef:
    return OrgRef(id=org.id, name=org.name, path=org.path)


def _ordered(labels: dict[str, str], found: set[str]) -> list[tuple[str, str]]:
    """Every known category in its usual order, then any unexpected one found in the data."""
    extra = sorted(found - labels.keys())
    return [*labels.items(), *((key, key) for key in extra)]


async def summary(
    session: AsyncSession,
    principal: Principal,
    org_id: str,
    start: date | None,
    end: date | None,
) -> ReportSummary:
    """Sessions, person-times, unique persons, certificates and cost of a subtree and period."""
    start, end = resolve_period(start, end)
    org = await org_in_scope(session, principal, org_id, Action.reports_read)
    path = org.path

    await repository.allow_large_aggregates(session)
    sessions = await repository.sessions_by_category(session, path, start, end)
    attendance = await repository.attendance_figures(session, path, start, end)
    certificates = await repository.certificate_figures(session, path, start, end)
    planned_fen, spent_fen = await repository.budget_totals(session, path, start, end)
    participants = await repository.competition_participants(session, path, start, end)

    empty = repository.Counts()
    by_course = attendance.by_course_category
    certs_by_course = certificates.valid_by_course_category
    course_rows = []
    for category, label in _ordered(
        COURSE_CATEGORY_LABELS_ZH, set(sessions) | set(by_course) | set(certs_by_course)
    ):
        counts = by_course.get(category, empty)
        course_rows.append(
            CourseCategoryFigures(
                category=category,
                label_zh=label,
                sessions_held=sessions[category].held if category in sessions else 0,
                person_times=counts.person_times,
                unique_persons=counts.unique_persons,
                certificates=certs_by_course.get(category, 0),
            )
        )
    by_worker = attendance.by_worker_category
    certs_by_worker = certificates.valid_by_worker_category
    worker_rows = [
        WorkerCategoryFigures(
            category=category,
            label_zh=label,
            person_times=by_worker.get(category, empty).person_times,
            unique_persons=by_worker.get(category, empty).unique_persons,
            certificates=certs_by_worker.get(category, 0),
        )
        for category, label in _ordered(
            WORKER_CATEGORY_LABELS_ZH, set(by_worker) | set(certs_by_worker)
        )
    ]
    totals = attendance.total
    return ReportSummary(
        org=_org_ref(org),
        period=Period(from_=start, to=end),
        # Each session has one category, so the per-category counts add up exactly.
        sessions_held=sum(c.held for c in sessions.values()),
        sessions_scheduled=sum(c.scheduled for c in sessions.values()),
        person_times=totals.person_times,
        unique_persons=totals.unique_persons,
        certificates=certificates.valid,
        certificates_revoked=certificates.revoked,
        certified_persons=certificates.certified_persons,
        by_course_category=course_rows,
        by_worker_category=worker_rows,
        cost=CostFigures(
            planned=yuan(planned_fen),
            spent=yuan(spent_fen),
            per_person_time=per_unit(spent_fen, totals.person_times),
            per_certified_person=per_unit(spent_fen, certificates.certified_persons),
        ),
        competition_participants=participants,
        generated_at=datetime.now(UTC),
    )


async def cadre_training(
    session: AsyncSession, principal: Principal, org_id: str, limit: int
) -> CadreTrainingCoverage:
    """How many of the subtree's cadres completed cadre training (any host, any time)."""
    org = await org_in_scope(session, principal, org_id, Action.reports_read)
    total, trained = await repository.cadre_counts(session, org.path)
    untrained = await repository.untrained_cadres(session, org.path, limit)
    return CadreTrainingCoverage(
        org=_org_ref(org),
        cadres_total=total,
        cadres_trained=trained,
        cadres_untrained=total - trained,
        rate=round(trained / total, 4) if total else None,
        untrained=[
            UntrainedCadre(
                member_no=member_no,
                name=name,
                # Paths are ids joined by "/": the last one is the org itself.
                org_id=org_path.rstrip("/").rsplit("/", 1)[-1],
                org_path=org_path,
                org_name=org_name,
            )
            for member_no, name, org_path, org_name in untrained
        ],
        generated_at=datetime.now(UTC),
    )
