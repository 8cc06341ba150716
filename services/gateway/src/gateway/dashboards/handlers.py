"""What the dashboards consume: every service's events, applied to the read models.

Each handler runs inside the shared idempotent consumer's transaction (effect + inbox row,
then ack), so a redelivered event changes nothing. Handlers are order-tolerant:

* orgs use the shared replica rules (`gonghui_shared.replicas.org_handlers`);
* members, sessions and certificates keep their state and derive their counters from it
  (`*_counts`): a handler computes the entity's counters before and after the event and adds
  the difference. Whatever order the events of one entity arrive in, the final state is the
  same, and so are the counters;
* stations keep the newest place and the newest status apart, by `occurred_at`;
* plain facts (attendance, visits, subsidies) only add.

Metrics kept in `dash_counters` (dimension in brackets), each change added to its month, its
year and the all-time total (`repository.add_counts`):

=====================  ===================================================================
members                [status|category] +1 where and when the member joins, moves, ends
new_members            [] +1 at the approving org in the approval month (新发展会员)
person_times           [worker_category] one attendance record (人次), month of the day
sessions_scheduled     [course_category] session still scheduled, month it starts
sessions_completed     [course_category] month it ends (of completion, if not scheduled)
sessions_cancelled     [course_category] month it starts (of cancellation, ditto)
budget_spent_fen       [course_category] spent_fen of the completed session, month it ends
certificates_issued    [] month issued
certificates_revoked   [] of those, revoked; month issued
visits                 [station_type] month of the visit's day (服务人次)
services_used          [service] each service used in a visit
subsidies_paid_fen     [] the month the subsidy is for (`period`)
stations               [station_type|status] +1 where hosted; all time only (a stock)
=====================  ===================================================================
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.dashboards import coverage, repository
from gateway.dashboards.locks import advisory_locks
from gateway.dashboards.models import (
    DashCertificate,
    DashMember,
    DashMemberMove,
    DashOrg,
    DashSession,
    DashStation,
)
from gonghui_shared.bus.consumer import Handler, Subscription
from gonghui_shared.clock import CHINA
from gonghui_shared.contracts import Event, EventEnvelope
from gonghui_shared.contracts import membership as m
from gonghui_shared.contracts import stations as s
from gonghui_shared.contracts import training as t
from gonghui_shared.replicas import org_handlers

Key = tuple[str, str, str, str]  # org_id, metric, month, dimension
Counts = dict[Key, int]

SOURCES = ("membership", "training", "stations")
DURABLE = {source: f"gateway__{source}_dashboards" for source in SOURCES}

ACTIVE = "active"
CADRE_TRAINING = "cadre_training"  # training's course category for union cadres


def month_of(at: datetime) -> str:
    """The month (YYYY-MM) of an instant, in China time."""
    return at.astimezone(CHINA).strftime("%Y-%m")


class _ThisMonth:
    """`month_of(now)`, worked out again only once the month in China has turned: every
    overview asks for it (it is part of the answer cache's key)."""

    def __init__(self) -> None:
        self._month = ""
        # When `_month` starts and ends, in seconds since the epoch (the wall clock may also
        # be set back).
        self._since = self._until = 0.0

    def __call__(self) -> str:
        now = time.time()
        if not self._since <= now < self._until:
            here = datetime.fromtimestamp(now, CHINA)
            first = date(here.year, here.month, 1)
            following = date(here.year + here.month // 12, here.month % 12 + 1, 1)
            self._month = month_of_day(first)
            self._since, self._until = (
                datetime.combine(day, datetime.min.time(), CHINA).timestamp()
                for day in (first, following)
            )
        return self._month


this_month = _ThisMonth()


def month_of_day(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _add(counts: Counts, org_id: str, metric: str, month: str, dimension: str, n: int) -> None:
    if n:
        key = (org_id, metric, month, dimension)
        counts[key] = counts.get(key, 0) + n


def difference(before: Counts, after: Counts) -> Counts:
    """after - before, without the keys that do not change."""
    keys = before.keys() | after.keys()
    return {k: d for k in keys if (d := after.get(k, 0) - before.get(k, 0))}


# -- members ------------------------------------------------------------------------------


def member_counts(member: DashMember | None, moves: list[DashMemberMove]) -> Counts:
    """The counters one member accounts for, from its approval, transfers and ending.

    Stock (`members`) is kept as monthly changes: +1 where the member starts, -1/+1 when it
    moves, active -1 / ended +1 when it ends; a stock at the end of a month is the sum of the
    changes up to it. Before the approval is known, a member starts where its first known
    event puts it (so a transfer or ending that overtook the approval still counts it).
    """
    counts: Counts = {}
    if member is None:
        return counts
    ordered = sorted(moves, key=lambda mv: (mv.occurred_at, mv.transfer_id))
    if member.approved_org_id is not None and member.approved_month is not None:
        org, start = member.approved_org_id, member.approved_month
        _add(counts, org, "new_members", start, "", 1)
    elif ordered:
        org, start = ordered[0].from_org_id, ordered[0].month
    elif member.ended_org_id is not None and member.ended_month is not None:
        org, start = member.ended_org_id, member.ended_month
    else:
        return counts
    category, status = member.category, ACTIVE
    _add(counts, org, "members", start, f"{status}|{category}", 1)
    steps: list[tuple[datetime, int, Any]] = [(mv.occurred_at, 0, mv) for mv in ordered]
    if member.ended_status is not None and member.ended_at is not None:
        steps.append((member.ended_at, 1, None))
    for _, _, move in sorted(steps, key=lambda step: (step[0], step[1])):
        if move is None:
            assert member.ended_status is not None and member.ended_month is not None
            _add(counts, org, "members", member.ended_month, f"{status}|{category}", -1)
            status = member.ended_status
            _add(counts, org, "members", member.ended_month, f"{status}|{category}", 1)
        elif move.to_org_id != org:
            _add(counts, org, "members", move.month, f"{status}|{category}", -1)
            org = move.to_org_id
            _add(counts, org, "members", move.month, f"{status}|{category}", 1)
    return counts


async def _change_member(
    session: AsyncSession,
    member_no: str,
    create: Callable[[], DashMember],
    change: Callable[[DashMember], None],
    move: DashMemberMove | None = None,
) -> None:
    member = await repository.member_for_update(session, member_no)
    moves = await repository.member_moves(session, member_no)
    if move is not None and any(mv.transfer_id == move.transfer_id for mv in moves):
        return  # the same transfer announced again
    before = member_counts(member, moves)
    if member is None:
        member = create()
        repository.add_entity(session, member_no, member)
    change(member)
    if move is not None:
        session.add(move)
        moves.append(move)
    await repository.add_counts(session, difference(before, member_counts(member, moves)))


async def member_approved(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
    assert isinstance(event, m.MemberApproved)

    def change(member: DashMember) -> None:
        member.member_id, member.category = event.member_id, event.category
        member.approved_org_id, member.approved_month = event.org_id, month_of(event.approved_at)

    await _change_member(
        session,
        event.member_no,
        lambda: DashMember(member_no=event.member_no, member_id=event.member_id),
        change,
    )


async def member_transferred(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
    assert isinstance(event, m.MemberTransferred)

    def change(member: DashMember) -> None:
        if member.approved_month is None:  # the approval's category wins once it is known
            member.category = event.category

    move = DashMemberMove(
        transfer_id=event.transfer_id,
        member_no=event.member_no,
        occurred_at=envelope.occurred_at,
        month=month_of(envelope.occurred_at),
        from_org_id=event.from_org_id,
        to_org_id=event.to_org_id,
    )
    await _change_member(
        session,
        event.member_no,
        lambda: DashMember(
            member_no=event.member_no, member_id=event.member_id, category=event.category
        ),
        change,
        move,
    )


async def membership_ended(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
    assert isinstance(event, m.MembershipEnded)
    status = event.type.rsplit(".", 1)[1]  # withdrawn, lapsed, expelled

    def change(member: DashMember) -> None:
        if member.approved_month is None:
            member.category = event.category
        if member.ended_at is not None and member.ended_at > envelope.occurred_at:
            return  # a newer ending is already applied
        member.ended_status, member.ended_org_id = status, event.org_id
        member.ended_at, member.ended_month = envelope.occurred_at, month_of(envelope.occurred_at)

    await _change_member(
        session,
        event.member_no,
        lambda: DashMember(
            member_no=event.member_no, member_id=event.member_id, category=event.category
        ),
        change,
    )


async def cadre_appointed(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
    assert isinstance(event, m.CadreAppointed)
    await repository.add_cadre(session, event.cadre_id, event.member_no, event.org_id, event.role)


async def units_registered(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
    assert isinstance(event, m.UnitsRegistered)
    await repository.upsert_units(session, event.units, envelope.occurred_at)


# -- training -----------------------------------------------------------------------------


def session_counts(row: DashSession | None) -> Counts:
    """The counters of one session: it is scheduled, completed or cancelled, never two."""
    counts: Counts = {}
    if row is None:
        return counts
    category = row.course_category or ""
    if row.status == "completed":
        month = row.end_month or row.status_month
        if month is not None:
            _add(counts, row.host_org_id, "sessions_completed", month, category, 1)
            _add(counts, row.host_org_id, "budget_spent_fen", month, category, row.spent_fen)
    elif row.status == "cancelled":
        month = row.start_month or row.status_month
        if month is not None:
            _add(counts, row.host_org_id, "sessions_cancelled", month, category, 1)
    elif row.start_month is not None:
        _add(counts, row.host_org_id, "sessions_scheduled", row.start_month, category, 1)
    return counts


async def _change_session(
    session: AsyncSession, session_id: str, host_org_id: str, change: Callable[[DashSession], None]
) -> None:
    row = await repository.session_for_update(session, session_id)
    before = session_counts(row)
    if row is None:
        row = DashSession(
            session_id=session_id, host_org_id=host_org_id, status="scheduled", spent_fen=0
        )
        repository.add_entity(session, session_id, row)
    change(row)
    await repository.add_counts(session, difference(before, session_counts(row)))


async def session_scheduled(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
    assert isinstance(event, t.SessionScheduled)

    def change(row: DashSession) -> None:
        row.host_org_id, row.course_category = event.host_org_id, event.course_category
        row.start_month, row.end_month = month_of(event.starts_at), month_of(event.ends_at)

    await _change_session(session, event.session_id, event.host_org_id, change)


def _terminal(status: str, envelope: EventEnvelope, row: DashSession) -> bool:
    """Set a terminal status unless a newer one is there already; True if it was set."""
    if row.status_at is not None and row.status_at > envelope.occurred_at:
        return False
    row.status, row.status_at = status, envelope.occurred_at
    row.status_month = month_of(envelope.occurred_at)
    return True


async def session_completed(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
    assert isinstance(event, t.SessionCompleted)

    def change(row: DashSession) -> None:
        row.course_category = event.course_category
        if _terminal("completed", envelope, row):
            row.spent_fen = event.spent_fen

    await _change_session(session, event.session_id, event.host_org_id, change)


async def session_cancelled(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
    assert isinstance(event, t.SessionCancelled)

    def change(row: DashSession) -> None:
        _terminal("cancelled", envelope, row)

    await _change_session(session, event.session_id, event.host_org_id, change)


async def attended(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
    assert isinstance(event, t.Attended)
    month = month_of_day(event.day)
    counts: Counts = {}
    _add(counts, event.host_org_id, "person_times", month, event.worker_category, 1)
    await repository.add_counts(session, counts)
    await repository.see_person(session, event.host_org_id, month, event.person_key)
    if event.course_category == CADRE_TRAINING and event.member_no:
        await repository.add_trained(session, event.member_no, event.day)


def certificate_counts(row: DashCertificate | None) -> Counts:
    counts: Counts = {}
    if row is not None and row.issued and row.month is not None:
        _add(counts, row.host_org_id, "certificates_issued", row.month, "", 1)
        _add(counts, row.host_org_id, "certificates_revoked", row.month, "", int(row.revoked))
    return counts


async def _change_certificate(
    session: AsyncSession,
    certificate_id: str,
    host_org_id: str,
    change: Callable[[DashCertificate], None],
) -> None:
    row = await repository.certificate_for_update(session, certificate_id)
    before = certificate_counts(row)
    if row is None:
        row = DashCertificate(
            certificate_id=certificate_id, host_org_id=host_org_id, issued=False, revoked=False
        )
        repository.add_entity(session, certificate_id, row)
    change(row)
    await repository.add_counts(session, difference(before, certificate_counts(row)))


async def certificate_issued(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
    assert isinstance(event, t.CertificateIssued)

    def change(row: DashCertificate) -> None:
        row.host_org_id, row.month, row.issued = (
            event.host_org_id,
            month_of_day(event.issued_on),
            True,
        )

    await _change_certificate(session, event.certificate_id, event.host_org_id, change)


async def certificate_revoked(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
    assert isinstance(event, t.CertificateRevoked)

    def change(row: DashCertificate) -> None:
        row.revoked = True

    await _change_certificate(session, event.certificate_id, event.host_org_id, change)


# -- stations -----------------------------------------------------------------------------


# What a row created by an event that does not know the place (or the status) records as
# its time: any event that does know it is newer.
_UNKNOWN = datetime(1970, 1, 1, tzinfo=UTC)


def station_counts(row: DashStation | None) -> Counts:
    """A station counts once where it is hosted, by its type and status, for all time."""
    counts: Counts = {}
    if row is not None:
        dimension = f"{row.station_type}|{row.status}"
        _add(counts, row.host_org_id, repository.STATIONS, repository.ALL_TIME, dimension, 1)
    return counts


async def _station(
    session: AsyncSession,
    station_id: str,
    host_org_id: str,
    envelope: EventEnvelope,
    *,
    place: tuple[float, float] | None = None,
    status: str | None = None,
    station_type: str = "",
    name: str = "",
) -> DashStation:
    """The station's row, created from what this event knows if it is the first one; the
    place and the status are then applied only if this event is the newest to set them.
    The villages around where it was active before and where it is now are recomputed."""
    row = await repository.station_for_update(session, station_id)
    before = station_counts(row)
    if row is None:
        row = DashStation(
            station_id=station_id,
            host_org_id=host_org_id,
            station_type=station_type,
            name=name,
            lon=0.0,
            lat=0.0,
            cell=coverage.cell_of(0.0, 0.0),
            status=ACTIVE,
            place_at=_UNKNOWN,
            status_at=_UNKNOWN,
        )
        repository.add_entity(session, station_id, row)
        was_active_at = None
    else:
        was_active_at = (row.lon, row.lat) if row.status == ACTIVE else None
    if station_type and (name or not row.station_type):  # the opening's type wins
        row.station_type = station_type
    if name:
        row.name = name
    if place is not None and envelope.occurred_at >= row.place_at:
        (row.lon, row.lat), row.place_at = place, envelope.occurred_at
        row.cell = coverage.cell_of(*place)
        row.host_org_id = host_org_id
    if status is not None and envelope.occurred_at >= row.status_at:
        row.status, row.status_at = status, envelope.occurred_at
    await repository.add_counts(session, difference(before, station_counts(row)))
    active_at = (row.lon, row.lat) if row.status == ACTIVE else None
    if active_at != was_active_at:
        await coverage.station_changed(session, was_active_at, active_at)
    return row


async def station_opened(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
    assert isinstance(event, s.StationOpened)
    await _station(
        session,
        event.station_id,
        event.host_org_id,
        envelope,
        place=(event.lon, event.lat),
        status=ACTIVE,
        station_type=event.station_type,
        name=event.name,
    )


async def station_updated(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
    assert isinstance(event, s.StationUpdated)
    await _station(
        session, event.station_id, event.host_org_id, envelope, place=(event.lon, event.lat)
    )


_STATION_STATUS = {
    s.StationSuspended.type: "suspended",
    s.StationClosed.type: "closed",
    s.StationReopened.type: ACTIVE,
}


async def station_status_changed(
    session: AsyncSession, event: Event, envelope: EventEnvelope
) -> None:
    assert isinstance(event, s.StationStatusChanged)
    await _station(
        session,
        event.station_id,
        event.host_org_id,
        envelope,
        status=_STATION_STATUS[event.type],
        station_type=event.station_type,
    )


async def visit_recorded(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
    assert isinstance(event, s.VisitRecorded)
    month = month_of_day(event.day)
    counts: Counts = {}
    _add(counts, event.host_org_id, "visits", month, event.station_type, 1)
    for service in event.services:
        _add(counts, event.host_org_id, "services_used", month, service[:60], 1)
    await repository.add_counts(session, counts)


async def subsidy_paid(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
    assert isinstance(event, s.SubsidyPaid)
    counts: Counts = {}
    _add(counts, event.host_org_id, "subsidies_paid_fen", event.period, "", event.amount_fen)
    await repository.add_counts(session, counts)


# -- orgs ---------------------------------------------------------------------------------


def _with_cover(handler: Handler) -> Handler:
    """The shared replica handler; then, when the org is new (or its path changed), its
    counters join its subtrees; and its row of the 15-minute circle."""

    async def apply(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
        assert isinstance(event, m.OrgCreated | m.OrgUpdated)
        await repository.lock_orgs(session, [event.org_id])
        known = await session.get(DashOrg, event.org_id, with_for_update=True)
        old_path = known.path if known is not None else None
        was = coverage.village_place(known)
        await handler(session, event, envelope)
        await session.flush()
        org = await session.get(DashOrg, event.org_id)
        await repository.org_arrived(
            session, event.org_id, old_path, org.path if org is not None else None
        )
        await coverage.org_changed(session, event.org_id, was)

    return apply


def _org_handlers() -> dict[type[Event], Handler]:
    return {cls: _with_cover(handler) for cls, handler in org_handlers(DashOrg).items()}


# -- wiring -------------------------------------------------------------------------------


async def _noted(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
    """An event no figure depends on: applied only to say the source is fresh."""


def _fresh(source: str, handler: Handler) -> Handler:
    """The handler, then the source's freshness row, in the same transaction."""

    async def apply(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
        await handler(session, event, envelope)
        await repository.touch_source(session, source, envelope.occurred_at)

    return apply


_HANDLERS: dict[str, Mapping[type[Event], Handler]] = {
    "membership": {
        **_org_handlers(),
        m.MemberApproved: member_approved,
        m.MemberTransferred: member_transferred,
        m.MemberWithdrawn: membership_ended,
        m.MemberLapsed: membership_ended,
        m.MemberExpelled: membership_ended,
        m.CadreAppointed: cadre_appointed,
        m.UnitsRegistered: units_registered,
    },
    "training": {
        t.SessionScheduled: session_scheduled,
        t.SessionCompleted: session_completed,
        t.SessionCancelled: session_cancelled,
        t.Attended: attended,
        t.CertificateIssued: certificate_issued,
        t.CertificateRevoked: certificate_revoked,
    },
    "stations": {
        s.StationOpened: station_opened,
        s.StationUpdated: station_updated,
        s.StationSuspended: station_status_changed,
        s.StationClosed: station_status_changed,
        s.StationReopened: station_status_changed,
        s.VisitRecorded: visit_recorded,
        s.SubsidyPaid: subsidy_paid,
    },
}
_EVENTS: dict[str, tuple[type[Event], ...]] = {
    "membership": m.EVENTS,
    "training": t.EVENTS,
    "stations": s.EVENTS,
}


def handlers_for(source: str) -> dict[type[Event], Handler]:
    """Every event type of `source`: those the figures use, the rest only noted as fresh."""
    used = _HANDLERS[source]
    return {cls: _fresh(source, used.get(cls, _noted)) for cls in _EVENTS[source]}


def subscriptions() -> list[Subscription]:
    """One durable consumer per producing service's stream, applying fetched batches whole
    (`BATCHES` keeps the three from deadlocking on the gateway's database)."""
    return [
        Subscription(
            durable=DURABLE[source],
            source=source,
            handlers=handlers_for(source),
            apply_batches=True,
            batch_hooks=BATCHES,
        )
        for source in SOURCES
    ]


# -- batches ------------------------------------------------------------------------------

_MEMBER_EVENTS = (m.MemberApproved, m.MemberTransferred, m.MembershipEnded)
_SESSION_EVENTS = (t.SessionScheduled, t.SessionCompleted, t.SessionCancelled)
_CERTIFICATE_EVENTS = (t.CertificateIssued, t.CertificateRevoked)
_STATION_EVENTS = (s.StationOpened, s.StationUpdated, s.StationStatusChanged)
_ORG_EVENTS = (m.OrgCreated, m.OrgUpdated)


def _orgs_named(items: Iterable[Any]) -> set[str]:
    """The orgs an event or an entity row names (`org_id`, `host_org_id`, `to_org_id`…):
    every org its counts can go to."""
    named: set[str] = set()
    for item in items:
        fields = item if isinstance(item, Event) else vars(item).items()
        named.update(v for k, v in fields if k.endswith("org_id") and isinstance(v, str) and v)
    return named


def _place(item: Any) -> tuple[float, float] | None:
    lon, lat = getattr(item, "lon", None), getattr(item, "lat", None)
    return None if lon is None or lat is None else (lon, lat)


class DashboardBatches:
    """The dashboards' `BatchHooks`: before a batch's handlers, lock in one global order
    everything they will lock that another consumer's batch may lock too (see
    `repository`'s "batches"); after them, write the folded counters."""

    async def before(
        self, session: AsyncSession, events: Sequence[tuple[EventEnvelope, Event]]
    ) -> None:
        batch = repository.begin_batch(session)
        if not events:
            return
        kinds: dict[Any, set[str]] = {}
        for _, event in events:
            if isinstance(event, _MEMBER_EVENTS):
                kinds.setdefault(DashMember, set()).add(event.member_no)
            elif isinstance(event, _SESSION_EVENTS):
                kinds.setdefault(DashSession, set()).add(event.session_id)
            elif isinstance(event, _CERTIFICATE_EVENTS):
                kinds.setdefault(DashCertificate, set()).add(event.certificate_id)
            elif isinstance(event, _STATION_EVENTS):
                kinds.setdefault(DashStation, set()).add(event.station_id)
        # 1. This consumer's own entity rows (no other consumer locks them), by key.
        rows: list[Any] = []
        for model, keys in sorted(kinds.items(), key=lambda kind: kind[0].__tablename__):
            rows += await repository.lock_entities(session, model, keys)
        if DashMember in kinds:
            rows += await repository.read_moves(session, kinds[DashMember])
        # 2. Every advisory lock, in one statement: the orgs announced (exclusive), those
        # counted for while unknown (shared: counting does not wait for counting), and the
        # coverage regions around the villages and stations that may move.
        announced = {event.org_id for _, event in events if isinstance(event, _ORG_EVENTS)}
        counted = _orgs_named([event for _, event in events]) | _orgs_named(rows)
        known = await repository.org_places(session, announced | counted)
        places = [_place(event) for _, event in events if isinstance(event, _ORG_EVENTS)]
        places += [_place(known[org_id]) for org_id in announced if org_id in known]
        cells = {coverage.cell_of(*place) for place in places if place is not None}
        stations: list[Any] = [e for _, e in events if isinstance(e, _STATION_EVENTS)]
        stations += [row for row in rows if isinstance(row, DashStation)]
        for place in filter(None, map(_place, stations)):
            cells.update(coverage.cells_around(*place))
        unknown = counted - known.keys() - announced
        await advisory_locks(
            session,
            repository.org_lock_keys(announced) + coverage.region_locks(cells),
            shared=repository.org_lock_keys(unknown),
        )
        batch.held = announced | unknown

    async def after(self, session: AsyncSession) -> None:
        await repository.finish_batch(session)


BATCHES = DashboardBatches()
