"""The monthly subsidy ledger (补助台账): one line per station and month, unpaid then paid.

A village service point (村级工会服务点) hosted in a postal shop or rural bank outlet gets
100 yuan a month from the county and city unions; its line defaults to the station's
`monthly_subsidy_fen`. County staff record lines (or accrue a month for a whole subtree)
and mark them paid; paying publishes SubsidyPaid.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.auth import Principal
from gonghui_shared.clock import today_in_china
from gonghui_shared.contracts.stations import SubsidyPaid
from gonghui_shared.errors import Conflict, NotFound, OutOfScope, Unprocessable
from gonghui_shared.ids import new_id
from gonghui_shared.permissions import Action, Role
from stations.base import utcnow
from stations.events.publish import publish
from stations.replicas.service import org_in_scope
from stations.stations.service import StationNotFound
from stations.subsidies import repository
from stations.subsidies.models import Subsidy
from stations.subsidies.schemas import (
    PeriodSums,
    SubsidyAccrue,
    SubsidyAccrued,
    SubsidyCreate,
    SubsidyPay,
    SubsidyRead,
    SubsidyStatus,
    SubsidySums,
    SubsidyTotals,
    to_fen,
    yuan,
)


class SubsidyNotFound(NotFound):
    code = "subsidy_not_found"
    message = "Subsidy ledger line not found"
    message_zh = "补助记录不存在"


class SubsidyAlreadyRecorded(Conflict):
    code = "subsidy_already_recorded"
    message = "This station already has a subsidy line for that month"
    message_zh = "该站点当月补助已登记"


class SubsidyAlreadyPaid(Conflict):
    code = "subsidy_already_paid"
    message = "This subsidy has already been paid"
    message_zh = "该笔补助已发放"


class PeriodInFuture(Unprocessable):
    code = "period_in_future"
    message = "A subsidy is recorded for this month or an earlier one"
    message_zh = "只能登记本月及以前月份的补助"


class SubsidyAmountRequired(Unprocessable):
    code = "subsidy_amount_required"
    message = "The station has no monthly subsidy; give the amount"
    message_zh = "该站点未设定月度补助标准，请填写金额"


class PaidOnInFuture(Unprocessable):
    code = "paid_on_in_future"
    message = "The payment date cannot be in the future"
    message_zh = "发放日期不能晚于今天"


class InvalidPeriodRange(Unprocessable):
    code = "invalid_period_range"
    message = "`from` must not be after `to`"
    message_zh = "起始月份不能晚于结束月份"


def _require_past_or_current(period: str) -> None:
    if period > today_in_china().strftime("%Y-%m"):
        raise PeriodInFuture(details={"field": "period"})


def to_read(line: Subsidy, station_name: str, station_type: str) -> SubsidyRead:
    return SubsidyRead(
        id=line.id,
        station_id=line.station_id,
        station_name=station_name,
        station_type=station_type,
        host_org_path=line.host_org_path,
        period=line.period,
        amount=yuan(line.amount_fen),
        status=SubsidyStatus(line.status),
        paid_on=line.paid_on,
        paid_by=line.paid_by,
        note=line.note,
        created_at=line.created_at,
    )


async def record(
    session: AsyncSession, principal: Principal, station_id: str, data: SubsidyCreate
) -> SubsidyRead:
    """An unpaid line for one station and month; the amount defaults to the station's.

    Any status: a station suspended or closed since may still be owed a past month.
    """
    principal.require(Action.subsidies_write)
    station = await repository.station(session, station_id)
    if station is None:
        raise StationNotFound()
    principal.require(Action.subsidies_write, station.host_org_path)
    _require_past_or_current(data.period)
    amount_fen = to_fen(data.amount) if data.amount is not None else station.monthly_subsidy_fen
    if amount_fen <= 0:
        raise SubsidyAmountRequired(details={"field": "amount"})
    if await repository.for_period(session, station.id, data.period) is not None:
        raise SubsidyAlreadyRecorded(details={"field": "period", "period": data.period})
    line = Subsidy(
        station_id=station.id,
        host_org_path=station.host_org_path,
        period=data.period,
        amount_fen=amount_fen,
        status=SubsidyStatus.unpaid,
        note=data.note or None,
    )
    session.add(line)
    try:
        await session.flush()
    except IntegrityError as exc:
        # Another request recorded the same month between our check and our insert.
        raise SubsidyAlreadyRecorded(details={"field": "period", "period": data.period}) from exc
    return to_read(line, station.name, station.station_type)


async def pay(
    session: AsyncSession, principal: Principal, subsidy_id: str, data: SubsidyPay
) -> SubsidyRead:
    """Mark a line paid (once); publishes SubsidyPaid."""
    principal.require(Action.subsidies_write)
    line = await repository.get(session, subsidy_id, for_update=True)
    if line is None:
        raise SubsidyNotFound()
    principal.require(Action.subsidies_write, line.host_org_path)
    if line.status == SubsidyStatus.paid:
        raise SubsidyAlreadyPaid(details={"paid_on": str(line.paid_on)})
    paid_on = data.paid_on or today_in_china()
    if paid_on > today_in_china():
        raise PaidOnInFuture(details={"field": "paid_on"})
    station = await repository.station(session, line.station_id)
    assert station is not None  # subsidies.station_id is a foreign key
    line.status, line.paid_on, line.paid_by = SubsidyStatus.paid, paid_on, principal.subject[:100]
    await session.flush()
    await publish(
        session,
        SubsidyPaid(
            subsidy_id=line.id,
            station_id=station.id,
            host_org_id=station.host_org_id,
            period=line.period,
            amount_fen=line.amount_fen,
            paid_on=paid_on,
        ),
        aggregate_id=line.id,
        org_path=line.host_org_path,
    )
    return to_read(line, station.name, station.station_type)


async def accrue(
    session: AsyncSession, principal: Principal, data: SubsidyAccrue
) -> SubsidyAccrued:
    """The month's unpaid lines for every active subsidised station in the subtree lacking one."""
    org = await org_in_scope(session, principal, data.org_id, Action.subsidies_write)
    _require_past_or_current(data.period)
    candidates = await repository.accrual_candidates(session, org.path, data.period)
    now = utcnow()
    rows = [
        {
            "id": new_id(),
            "station_id": station_id,
            "host_org_path": host_org_path,
            "period": data.period,
            "amount_fen": amount_fen,
            "status": SubsidyStatus.unpaid.value,
            "created_at": now,
            "updated_at": now,
        }
        for station_id, host_org_path, amount_fen in candidates
    ]
    await repository.insert_lines(session, rows)
    # A concurrent accrual may have won some stations: count what is really ours.
    created, amount_fen = await repository.count_ids(session, [r["id"] for r in rows])
    return SubsidyAccrued(
        org_id=org.id, period=data.period, created=created, amount=yuan(amount_fen)
    )


async def scope_path(session: AsyncSession, principal: Principal, org_id: str | None) -> str | None:
    """The subtree to read: the org asked for, else the caller's own (None: everything)."""
    principal.require(Action.reports_read)
    if org_id:
        return (await org_in_scope(session, principal, org_id, Action.reports_read)).path
    if principal.role is Role.platform_admin:
        return None
    if not principal.org_path:
        raise OutOfScope()
    return principal.org_path


def _sums(row: Any) -> SubsidySums:
    # PostgreSQL's SUM of a bigint is numeric (a Decimal here): back to exact integers.
    recorded, paid = int(row.recorded), int(row.paid)
    return SubsidySums(
        recorded=yuan(recorded),
        paid=yuan(paid),
        unpaid=yuan(recorded - paid),
        stations=int(row.stations),
        lines=int(row.lines),
    )


async def totals(
    session: AsyncSession,
    principal: Principal,
    org_id: str | None,
    first: str | None,
    last: str | None,
) -> SubsidyTotals:
    """Recorded, paid and unpaid yuan per month and overall, over an org subtree."""
    within = await scope_path(session, principal, org_id)
    if first and last and first > last:
        raise InvalidPeriodRange(details={"field": "from", "from": first, "to": last})
    periods = await repository.totals_per_period(session, within, first, last)
    overall = await repository.totals_overall(session, within, first, last)
    return SubsidyTotals(
        org_id=org_id,
        from_=first,
        to=last,
        periods=[PeriodSums(period=row.period, **_sums(row).model_dump()) for row in periods],
        total=_sums(overall),
    )
