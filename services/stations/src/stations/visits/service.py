"""Visits (人次): someone used a station, anonymously or showing a member card.

A card is verified offline against membership's public key (`stations.cards`); whether
the membership has since ended comes from the member replica. Neither needs a call to
membership, so a station records visits while membership is down. The visit's `day`
is the local date at the station, which is what "60 breakfasts one morning" counts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.auth import Principal
from gonghui_shared.contracts.stations import VisitRecorded
from gonghui_shared.errors import Conflict, Unprocessable
from gonghui_shared.permissions import Action
from stations.cards import CardFacts, CardVerifier, MemberCardRevoked
from stations.events.publish import publish
from stations.hours import zone
from stations.stations.models import Station, StationStatus
from stations.stations.service import StationNotFound
from stations.visits import repository
from stations.visits.models import Visit
from stations.visits.schemas import VisitCounts, VisitCreate, VisitDaily, VisitDay, VisitRead
from stations.visits.services import SERVICE_ORDER

BACKDATING = timedelta(days=7)  # a paper log may be typed in up to a week late
CLOCK_SKEW = timedelta(minutes=5)  # a device clock slightly ahead is not "the future"
MAX_DAILY_RANGE = 366
ENDED_STATUSES = frozenset({"withdrawn", "lapsed", "expelled"})


class IdempotencyKeyReused(Unprocessable):
    code = "idempotency_key_reused"
    message = "This Idempotency-Key was used for a visit at another station"
    message_zh = "该幂等键已用于另一站点的服务登记"


class StationNotActive(Conflict):
    code = "station_not_active"
    message = "Visits are recorded only at an active station"
    message_zh = "站点未在运营（已暂停或关闭），不能登记服务人次"


class VisitTimeOutOfRange(Unprocessable):
    code = "visited_at_out_of_range"
    message = "A visit is recorded for now or up to 7 days ago, not the future"
    message_zh = "到访时间不能晚于当前时间，也不能早于7天前"


class InvalidDateRange(Unprocessable):
    code = "invalid_date_range"
    message = "`from` must not be after `to`, and the range is at most 366 days"
    message_zh = "起始日期不能晚于结束日期，且跨度不超过366天"


async def station_or_404(session: AsyncSession, station_id: str) -> Station:
    station = await repository.station(session, station_id)
    if station is None:
        raise StationNotFound()
    return station


async def station_in_scope(
    session: AsyncSession, principal: Principal, station_id: str, *actions: Action
) -> Station:
    """The station, if the principal may take one of `actions` in its host org's subtree.

    The role first (403 forbidden needs no lookup), then 404, then the scope (out_of_scope).
    """
    action = next((a for a in actions if principal.may(a)), actions[0])
    principal.require(action)
    station = await station_or_404(session, station_id)
    principal.require(action, station.host_org_path)
    return station


def local_day(at: datetime, timezone: str) -> date:
    """The date at the station when `at` happened (a 23:30 UTC visit is tomorrow in China)."""
    return at.astimezone(zone(timezone)).date()


async def _member_facts(session: AsyncSession, card: CardFacts) -> str | None:
    """The worker category to count the visit under; refuses a card whose membership ended."""
    member = await repository.member(session, card.member_no)
    if member is None:
        # Not announced yet (the replica lags membership): the signed card is enough.
        return card.category
    if member.status in ENDED_STATUSES:
        raise MemberCardRevoked(details={"field": "member_card", "status": member.status})
    return member.category or card.category


async def _by_client_key(session: AsyncSession, recorded_by: str, key: str) -> Visit | None:
    return await session.scalar(
        select(Visit).where(Visit.recorded_by == recorded_by, Visit.client_key == key)
    )


def _same_station(visit: Visit, station_id: str) -> Visit:
    """A key names one request: the same key for another station is a client's mistake."""
    if visit.station_id != station_id:
        raise IdempotencyKeyReused(details={"field": "Idempotency-Key"})
    return visit


async def record(
    session: AsyncSession,
    principal: Principal,
    verifier: CardVerifier,
    station_id: str,
    data: VisitCreate,
    *,
    now: datetime | None = None,
    client_key: str | None = None,
) -> Visit:
    """Record a visit at an active station in scope; publishes VisitRecorded.

    With a `client_key`, a visit this recorder already recorded under it is returned as it
    is: a request retried after its answer was lost (a service restarted after committing,
    the gateway answered 502) must not count the person twice.
    """
    station = await station_in_scope(session, principal, station_id, Action.visits_write)
    recorded_by = principal.subject[:100]
    if client_key is not None and (found := await _by_client_key(session, recorded_by, client_key)):
        return _same_station(found, station_id)
    if station.status != StationStatus.active:
        raise StationNotActive(details={"status": station.status})
    now = now or datetime.now(UTC)
    visited_at = data.visited_at or now
    # Compared before converting: year 1 at UTC+14 has no UTC equivalent to convert to.
    if visited_at > now + CLOCK_SKEW or visited_at < now - BACKDATING:
        raise VisitTimeOutOfRange(details={"field": "visited_at"})
    visited_at = visited_at.astimezone(UTC)

    member_no = worker_category = None
    if data.member_card is not None:
        card = verifier.verify(data.member_card)
        member_no = card.member_no
        worker_category = await _member_facts(session, card)

    visit = Visit(
        station_id=station.id,
        host_org_path=station.host_org_path,
        station_type=station.station_type,
        visited_at=visited_at,
        day=local_day(visited_at, station.timezone),
        member_no=member_no,
        worker_category=worker_category,
        services=[s.value for s in data.services],
        rating=data.rating,
        comment=data.comment,
        recorded_by=recorded_by,
        client_key=client_key,
    )
    if client_key is None:
        session.add(visit)
        await session.flush()
    else:
        try:
            async with session.begin_nested():  # a savepoint only where a retry may collide
                session.add(visit)
        except IntegrityError:
            # The same key, recorded meanwhile by a concurrent retry: that one stands.
            if not (found := await _by_client_key(session, recorded_by, client_key)):
                raise
            return _same_station(found, station_id)
    await publish(
        session,
        VisitRecorded(
            visit_id=visit.id,
            station_id=station.id,
            station_type=station.station_type,
            host_org_id=station.host_org_id,
            visited_at=visit.visited_at,
            day=visit.day,
            member_no=member_no,
            worker_category=worker_category,
            services=visit.services,
            rating=visit.rating,
        ),
        aggregate_id=visit.id,
        org_path=station.host_org_path,
    )
    return visit


def to_read(visit: Visit) -> VisitRead:
    return VisitRead.model_validate(visit)


def _average(rating_sum: int, ratings: int) -> float | None:
    if not ratings:
        return None
    mean = (Decimal(rating_sum) / ratings).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return float(mean)


def _ordered(services: dict[str, int]) -> dict[str, int]:
    return dict(
        sorted(services.items(), key=lambda kv: SERVICE_ORDER.get(kv[0], len(SERVICE_ORDER)))
    )


def date_range(first: date | None, last: date | None, today: date) -> tuple[date, date]:
    """The requested days: default the 30 days up to today (at the station)."""
    try:
        last = last or (first + timedelta(days=29) if first else today)
        first = first or last - timedelta(days=29)
    except OverflowError:  # within 29 days of year 1 or 9999
        raise InvalidDateRange(details={"field": "from" if first else "to"}) from None
    if first > last or (last - first).days >= MAX_DAILY_RANGE:
        raise InvalidDateRange(details={"field": "from", "from": str(first), "to": str(last)})
    return first, last


async def daily(
    session: AsyncSession,
    principal: Principal,
    station_id: str,
    first: date | None,
    last: date | None,
) -> VisitDaily:
    """Visits per day at a station: members, anonymous, per service, average rating."""
    station = await station_in_scope(
        session, principal, station_id, Action.visits_write, Action.reports_read
    )
    first, last = date_range(first, last, local_day(datetime.now(UTC), station.timezone))
    counts = {
        row.day: row for row in await repository.daily_counts(session, station.id, first, last)
    }
    services: dict[date, dict[str, int]] = {}
    for row in await repository.daily_services(session, station.id, first, last):
        services.setdefault(row.day, {})[row.service] = row.visits

    days: list[VisitDay] = []
    totals = {"visits": 0, "member_visits": 0, "ratings": 0, "rating_sum": 0}
    total_services: dict[str, int] = {}
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        row = counts.get(day)
        visits, members, ratings, rating_sum = (
            (row.visits, row.member_visits, row.ratings, int(row.rating_sum))
            if row
            else (0, 0, 0, 0)
        )
        used = services.get(day, {})
        days.append(
            VisitDay(
                day=day,
                visits=visits,
                member_visits=members,
                anonymous_visits=visits - members,
                services=_ordered(used),
                ratings=ratings,
                average_rating=_average(rating_sum, ratings),
            )
        )
        for key, value in zip(totals, (visits, members, ratings, rating_sum), strict=True):
            totals[key] += value
        for service, n in used.items():
            total_services[service] = total_services.get(service, 0) + n

    total = VisitCounts(
        visits=totals["visits"],
        member_visits=totals["member_visits"],
        anonymous_visits=totals["visits"] - totals["member_visits"],
        services=_ordered(total_services),
        ratings=totals["ratings"],
        average_rating=_average(totals["rating_sum"], totals["ratings"]),
    )
    return VisitDaily(station_id=station.id, from_=first, to=last, days=days, total=total)
