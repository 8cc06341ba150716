"""After the load: wait until nothing is in flight, then hold every record against the others.

Three sources of truth are compared, per fault (each fault's writes went to its own org):

* the writes the client saw acknowledged (the ledger);
* each service's own records, read from its database (this suite may; services may not);
* the gateway's dashboard figures, built only from events.

And the bus itself: every event an outbox holds must be in its stream, and applied by each
consumer that handles its type (or dead-lettered, for the poison); events of one aggregate
must be stored and applied in their order.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import nats
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import ValidationError
from sqlalchemy import Table, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from gonghui_shared.bus.connection import stream_name
from gonghui_shared.bus.consumer import Subscription
from gonghui_shared.contracts import EventEnvelope
from tests.faults.harness import SERVICES, FaultPlatform
from tests.faults.load import Load, Write, dashboard_figures

PRODUCERS = ("membership", "training", "stations")


def subscriptions() -> dict[str, list[Subscription]]:
    """Each service's consumers, as the services themselves declare them."""
    from gateway.dashboards.handlers import subscriptions as gateway_subscriptions
    from stations.events.handlers import MEMBERSHIP as STATIONS_MEMBERSHIP
    from training.events.handlers import MEMBERSHIP as TRAINING_MEMBERSHIP

    return {
        "gateway": gateway_subscriptions(),
        "training": [TRAINING_MEMBERSHIP],
        "stations": [STATIONS_MEMBERSHIP],
    }


def bus_tables(service: str) -> tuple[Table, Table]:
    """The service's outbox and inbox tables (for their column types)."""
    if service == "membership":
        from membership.base import inbox, outbox
    elif service == "training":
        from training.base import inbox, outbox
    elif service == "stations":
        from stations.base import inbox, outbox
    else:
        from gateway.base import inbox, outbox
    return outbox, inbox


# ---------------------------------------------------------------------------- reading


@dataclass
class OutboxEvent:
    service: str
    position: int
    event_id: str
    event_type: str
    version: int
    aggregate_id: str
    aggregate_seq: int | None
    created_at: datetime
    sent: bool

    @property
    def order(self) -> tuple[int, int]:
        """Its place among its aggregate's events: the number when it has one, else the
        outbox position (one relay per service publishes in position order)."""
        return (self.aggregate_seq or 0, self.position)


@dataclass
class StoredEvent:
    """A message as the stream holds it."""

    stream_seq: int
    event_id: str | None  # None: not an envelope (the poison)
    aggregate_id: str | None
    aggregate_seq: int | None


@dataclass
class Applied:
    consumer: str
    event_id: str
    processed_at: datetime


@dataclass
class Snapshot:
    """Everything read after the run."""

    outbox: dict[str, OutboxEvent] = field(default_factory=dict)  # by event id
    streams: dict[str, list[StoredEvent]] = field(default_factory=dict)  # by producer
    applied: dict[str, list[Applied]] = field(default_factory=dict)  # by consumer durable
    dead_letters: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by consumer
    dead_letters_source: str = "n/a"  # "api", "database", or n/a
    consumers: dict[str, dict[str, int]] = field(default_factory=dict)  # durable -> info
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # table -> rows
    numbered: bool = False  # the envelopes carry aggregate_seq


class Databases:
    """The services' databases, read directly (never through the outage proxy)."""

    def __init__(self, platform: FaultPlatform) -> None:
        self.engines: dict[str, AsyncEngine] = {
            name: create_async_engine(url, poolclass=NullPool)
            for name, url in platform.database_urls.items()
        }

    async def aclose(self) -> None:
        for engine in self.engines.values():
            await engine.dispose()

    async def rows(self, service: str, sql: str) -> list[dict[str, Any]]:
        async with self.engines[service].connect() as conn:
            result = await conn.execute(text(sql))
            return [dict(row._mapping) for row in result]

    async def columns(self, service: str, table: str) -> set[str]:
        async with self.engines[service].connect() as conn:
            return await _columns(conn, table)

    async def unsent(self, service: str) -> int:
        rows = await self.rows(service, "SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL")
        return int(rows[0]["n"])

    async def outbox(self, service: str) -> list[OutboxEvent]:
        outbox, _ = bus_tables(service)
        async with self.engines[service].connect() as conn:
            numbered = "aggregate_seq" in await _columns(conn, "outbox")
            c = outbox.c
            columns = [
                c.position,
                c.event_id,
                c.event_type,
                c.event_version,
                c.aggregate_id,
                c.created_at,
                c.sent_at,
            ]
            if numbered:
                columns.append(c.aggregate_seq)
            result = await conn.execute(select(*columns).order_by(c.position))
            return [
                OutboxEvent(
                    service=service,
                    position=row.position,
                    event_id=row.event_id,
                    event_type=row.event_type,
                    version=row.event_version,
                    aggregate_id=row.aggregate_id,
                    aggregate_seq=row.aggregate_seq if numbered else None,
                    created_at=row.created_at,
                    sent=row.sent_at is not None,
                )
                for row in result
            ]

    async def inbox(self, service: str) -> list[Applied]:
        _, inbox = bus_tables(service)
        async with self.engines[service].connect() as conn:
            c = inbox.c
            result = await conn.execute(select(c.consumer, c.event_id, c.processed_at))
            return [Applied(r.consumer, r.event_id, r.processed_at) for r in result]

    async def dead_letters(self, service: str) -> list[dict[str, Any]] | None:
        if "consumer" not in await self.columns(service, "dead_letters"):
            return None
        return await self.rows(service, "SELECT * FROM dead_letters")


async def _columns(conn: AsyncConnection, table: str) -> set[str]:
    def read(sync: Any) -> set[str]:
        found = inspect(sync)
        if not found.has_table(table):
            return set()
        return {column["name"] for column in found.get_columns(table)}

    return await conn.run_sync(read)


async def stream_events(js: JetStreamContext, stream: str) -> list[StoredEvent]:
    """Every message of the stream, in stream order."""
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return []
    first, last = info.state.first_seq, info.state.last_seq
    found: list[StoredEvent] = []

    async def one(seq: int) -> StoredEvent | None:
        try:
            msg = await js.get_msg(stream, seq)
        except NotFoundError:
            return None
        data = msg.data or b""
        try:
            envelope = EventEnvelope.model_validate_json(data)
        except ValidationError:
            return StoredEvent(seq, None, None, None)
        seq_number = getattr(envelope, "aggregate_seq", None)
        return StoredEvent(seq, str(envelope.event_id), envelope.aggregate_id, seq_number)

    for start in range(first, last + 1, 200):
        batch = await asyncio.gather(*(one(s) for s in range(start, min(start + 200, last + 1))))
        found.extend(event for event in batch if event is not None)
    return found


async def consumer_state(js: JetStreamContext, root: str) -> dict[str, dict[str, int]]:
    """num_pending, num_ack_pending and num_redelivered of every durable on our streams."""
    state: dict[str, dict[str, int]] = {}
    for producer in PRODUCERS:
        try:
            infos = await js.consumers_info(stream_name(root, producer))
        except NotFoundError:
            continue
        for info in infos:
            name = info.config.durable_name or info.name
            state[name] = {
                "pending": int(info.num_pending or 0),
                "ack_pending": int(info.num_ack_pending or 0),
                "redelivered": int(info.num_redelivered or 0),
            }
    return state


# ---------------------------------------------------------------------------- quiescence


@dataclass
class Quiescence:
    seconds: float
    reached: bool
    unsent: int
    pending: int
    ack_pending: int
    figures_differ: int


async def service_figures(dbs: Databases, load: Load) -> dict[str, dict[str, int]]:
    """Per fault (org): the figures the dashboard should show, from the services' own rows."""
    members = await dbs.rows("membership", "SELECT org_id, status FROM members")
    attendance = await dbs.rows("training", "SELECT session_id, person_key FROM attendance")
    visits = await dbs.rows("stations", "SELECT station_id FROM visits")
    figures = {}
    for name, place in load.world.phases.items():
        org = place.org["id"]
        here = [a for a in attendance if a["session_id"] == place.session_id]
        figures[name] = {
            "new_members": sum(m["org_id"] == org for m in members),
            "active_members": sum(m["org_id"] == org and m["status"] == "active" for m in members),
            "withdrawn_members": sum(
                m["org_id"] == org and m["status"] == "withdrawn" for m in members
            ),
            "person_times": len(here),
            "unique_persons": len({a["person_key"] for a in here}),
            "visits": sum(v["station_id"] == place.station_id for v in visits),
        }
    return figures


async def dashboard_of(load: Load) -> dict[str, dict[str, int] | None]:
    shown: dict[str, dict[str, int] | None] = {}
    for name, place in load.world.phases.items():
        figures = await load.dashboard(place.org["id"])
        shown[name] = dashboard_figures(figures) if figures is not None else None
    return shown


def figures_off(
    expected: Mapping[str, Mapping[str, int]], shown: Mapping[str, Mapping[str, int] | None]
) -> dict[str, int]:
    """Per fault: how far the dashboard is from the services' records, summed over figures
    (None: the dashboard did not answer)."""
    off: dict[str, int] = {}
    for name, want in expected.items():
        got = shown.get(name)
        off[name] = (
            sum(want.values())
            if got is None
            else sum(abs(got[key] - value) for key, value in want.items())
        )
    return off


async def quiesce(
    platform: FaultPlatform,
    dbs: Databases,
    load: Load,
    *,
    timeout: float,
    redeliveries: bool,
) -> Quiescence:
    """Wait until every outbox is sent, every consumer caught up and the dashboards agree
    with the services; with `redeliveries`, also until no delivery awaits its ack (a message
    delivered to a process that was then killed comes back after the ack wait, and is then
    recognised by the inbox)."""
    started = time.monotonic()
    nc = await nats.connect(platform.nats.url, connect_timeout=2)
    try:
        js = nc.jetstream(timeout=5)
        while True:
            unsent = sum([await dbs.unsent(s) for s in SERVICES])
            state = await consumer_state(js, platform.root)
            pending = sum(c["pending"] for c in state.values())
            ack_pending = sum(c["ack_pending"] for c in state.values())
            off = figures_off(await service_figures(dbs, load), await dashboard_of(load))
            differ = sum(off.values())
            done = unsent == 0 and pending == 0 and differ == 0
            if redeliveries:
                done = done and ack_pending == 0
            elapsed = time.monotonic() - started
            if done or elapsed > timeout:
                return Quiescence(round(elapsed, 1), done, unsent, pending, ack_pending, differ)
            await asyncio.sleep(0.5)
    finally:
        await nc.close()


# ---------------------------------------------------------------------------- snapshot


async def dead_letters_via_api(
    load: Load, platform: FaultPlatform, service: str
) -> list[dict[str, Any]] | None:
    """`GET /v1/dead-letters` of a service, as the platform admin; None if it has none."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        response = await load.client.get(
            f"{platform.base(service)}/v1/dead-letters", params=params, headers=load.world.admin
        )
        if response.status_code != 200:
            return None
        body = response.json()
        items.extend(body["items"])
        cursor = body.get("next_cursor")
        if not cursor:
            return items


async def snapshot(platform: FaultPlatform, dbs: Databases, load: Load) -> Snapshot:
    found = Snapshot()
    for service in SERVICES:
        for event in await dbs.outbox(service):
            found.outbox[event.event_id] = event
    found.numbered = any(e.aggregate_seq is not None for e in found.outbox.values())
    consumers = {s.durable: service for service, subs in subscriptions().items() for s in subs}
    for service in {*consumers.values()}:
        for row in await dbs.inbox(service):
            found.applied.setdefault(row.consumer, []).append(row)
        letters = await dead_letters_via_api(load, platform, service)
        source = "api"
        if letters is None:
            letters, source = await dbs.dead_letters(service), "database"
        if letters is None:
            continue
        found.dead_letters_source = source
        for letter in letters:
            found.dead_letters.setdefault(letter["consumer"], []).append(letter)
    nc = await nats.connect(platform.nats.url, connect_timeout=2)
    try:
        js = nc.jetstream(timeout=5)
        for producer in PRODUCERS:
            found.streams[producer] = await stream_events(js, stream_name(platform.root, producer))
        found.consumers = await consumer_state(js, platform.root)
    finally:
        await nc.close()
    found.records = {
        "applications": await dbs.rows(
            "membership", "SELECT id, org_id, form_ref, status FROM applications"
        ),
        "members": await dbs.rows(
            "membership", "SELECT id, member_no, application_id, org_id, status FROM members"
        ),
        "enrolments": await dbs.rows("training", "SELECT id, session_id FROM enrolments"),
        "attendance": await dbs.rows(
            "training", "SELECT id, session_id, enrolment_id, day FROM attendance"
        ),
        "visits": await dbs.rows("stations", "SELECT id, station_id, comment FROM visits"),
    }
    return found


# ---------------------------------------------------------------------------- judging


@dataclass
class Window:
    """A fault's share of the run: from its start until the next fault's."""

    name: str
    begins: datetime
    ends: datetime | None

    def holds(self, at: datetime) -> bool:
        at = _aware(at)
        return self.begins <= at and (self.ends is None or at < self.ends)


def window_of(windows: Sequence[Window], at: datetime) -> str:
    for window in windows:
        if window.holds(at):
            return window.name
    return windows[0].name  # before the first fault: the setup, counted with the first


@dataclass
class Findings:
    """What went wrong, per fault."""

    lost_writes: Counter[str] = field(default_factory=Counter)  # acked, not in the service
    duplicated_writes: Counter[str] = field(default_factory=Counter)  # in the service twice
    applied_unacked: Counter[str] = field(default_factory=Counter)  # fine, for the record
    unsent_events: Counter[str] = field(default_factory=Counter)
    unstored_events: Counter[str] = field(default_factory=Counter)  # sent, not in the stream
    unapplied_events: Counter[str] = field(default_factory=Counter)  # per (event, consumer)
    stored_twice: Counter[str] = field(default_factory=Counter)
    stream_order: Counter[str] = field(default_factory=Counter)
    # Seconds from an event's commit to the gateway's dashboards applying it.
    dashboard_lag: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    applied_order: Counter[str] = field(default_factory=Counter)
    details: list[str] = field(default_factory=list)
    unapplied: list[tuple[str, str, OutboxEvent]] = field(default_factory=list)

    def lost(self, name: str) -> int:
        return (
            self.lost_writes[name]
            + self.unsent_events[name]
            + self.unstored_events[name]
            + self.unapplied_events[name]
        )

    def order_violations(self, name: str) -> int:
        return self.stream_order[name] + self.applied_order[name]


def judge_writes(ledger: Iterable[Write], records: Mapping[str, list[dict[str, Any]]]) -> Findings:
    """Each write against the service that owns it."""
    found = Findings()
    applications = Counter(r["form_ref"] for r in records["applications"])
    application_ids = {r["id"] for r in records["applications"]}
    members = {r["application_id"]: r for r in records["members"]}
    members_by_no = {r["member_no"]: r for r in records["members"]}
    enrolments = {r["id"] for r in records["enrolments"]}
    attendance = {(r["enrolment_id"], str(r["day"])) for r in records["attendance"]}
    visits = Counter(r["comment"] for r in records["visits"])
    for write in ledger:
        copies: int
        if write.kind == "apply":
            copies = applications[write.tag]
            present = bool(copies) and (
                not write.acked or write.ids.get("application_id") in application_ids
            )
        elif write.kind == "approve":
            member = members.get(write.ids.get("application_id", ""))
            copies = int(member is not None)
            present = bool(copies)
        elif write.kind == "withdraw":
            member = members_by_no.get(write.ids.get("member_no", ""))
            copies = int(member is not None and member["status"] == "withdrawn")
            present = bool(copies)
        elif write.kind == "enrol":
            copies = int(write.ids.get("enrolment_id") in enrolments)
            present = bool(copies)
        elif write.kind == "attend":
            copies = int((write.ids.get("enrolment_id"), write.ids.get("day")) in attendance)
            present = bool(copies)
        elif write.kind == "visit":
            copies = visits[write.tag]
            present = bool(copies)
        else:
            raise ValueError(write.kind)
        if write.acked and not present:
            found.lost_writes[write.phase] += 1
            found.details.append(f"{write.phase}: acknowledged {write.kind} not found: {write.ids}")
        if copies > 1:
            found.duplicated_writes[write.phase] += copies - 1
            found.details.append(
                f"{write.phase}: {write.kind} applied {copies} times ({write.tag})"
            )
        if not write.acked and copies:
            found.applied_unacked[write.phase] += 1
    return found


def judge_bus(found: Findings, snap: Snapshot, windows: Sequence[Window]) -> None:
    """Every event stored, in order, and applied by each consumer that handles it."""
    phase_of = {eid: window_of(windows, e.created_at) for eid, e in snap.outbox.items()}
    for durable, rows in snap.applied.items():
        if durable.startswith("gateway__"):
            for row in rows:
                if (event := snap.outbox.get(row.event_id)) is not None:
                    lag = (_aware(row.processed_at) - _aware(event.created_at)).total_seconds()
                    found.dashboard_lag[phase_of[row.event_id]].append(lag)
    for event in snap.outbox.values():
        if not event.sent:
            found.unsent_events[phase_of[event.event_id]] += 1
    stored: set[str] = set()
    for producer, events in snap.streams.items():
        highest: dict[str, tuple[int, int]] = {}
        for stored_event in events:
            eid = stored_event.event_id
            if eid is None or eid not in snap.outbox:
                continue  # the poison, or a message no outbox wrote
            if eid in stored:
                found.stored_twice[phase_of[eid]] += 1
                continue
            stored.add(eid)
            event = snap.outbox[eid]
            top = highest.get(event.aggregate_id)
            if top is not None and event.order < top:
                found.stream_order[phase_of[eid]] += 1
                found.details.append(
                    f"{phase_of[eid]}: {producer} stream holds {event.event_type} "
                    f"#{event.order} of {event.aggregate_id} after #{top}"
                )
            highest[event.aggregate_id] = max(top or event.order, event.order)
    for event in snap.outbox.values():
        if event.sent and event.event_id not in stored:
            found.unstored_events[phase_of[event.event_id]] += 1
            found.details.append(
                f"{phase_of[event.event_id]}: {event.event_type} {event.event_id} "
                "acknowledged by JetStream but not in the stream"
            )
    for durable, letters in snap.dead_letters.items():
        for letter in letters:
            eid = letter.get("event_id")
            phase = phase_of.get(eid or "") or _letter_phase(letter, windows)
            if eid in snap.outbox:
                found.details.append(
                    f"{phase}: {durable} dead-lettered {eid}: {letter.get('error')}"
                )
    dead = {(d, letter.get("event_id")) for d, ls in snap.dead_letters.items() for letter in ls}
    for service, subs in subscriptions().items():
        for sub in subs:
            handled = {(cls.type, cls.version) for cls in sub.handlers}
            applied = {a.event_id: a for a in snap.applied.get(sub.durable, [])}
            for event in snap.outbox.values():
                if event.service != sub.source or (event.event_type, event.version) not in handled:
                    continue
                if event.event_id in applied or (sub.durable, event.event_id) in dead:
                    continue
                found.unapplied_events[phase_of[event.event_id]] += 1
                found.unapplied.append((service, sub.durable, event))
                found.details.append(
                    f"{phase_of[event.event_id]}: {sub.durable} ({service}) never applied "
                    f"{event.event_type} {event.event_id}; its aggregate's events: "
                    + history(snap, event.aggregate_id, stored)
                )
            rows = sorted(
                (a for a in applied.values() if a.event_id in snap.outbox),
                key=lambda a: a.processed_at,
            )
            highest: dict[str, tuple[int, int]] = {}
            for row in rows:
                event = snap.outbox[row.event_id]
                top = highest.get(event.aggregate_id)
                if top is not None and event.order < top:
                    found.applied_order[phase_of[row.event_id]] += 1
                    found.details.append(
                        f"{phase_of[row.event_id]}: {sub.durable} applied {event.event_type} "
                        f"#{event.order} of {event.aggregate_id} after #{top}"
                    )
                highest[event.aggregate_id] = max(top or event.order, event.order)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def history(snap: Snapshot, aggregate_id: str, stored: set[str]) -> str:
    """An aggregate's events as its outbox holds them, with where each got to."""
    events = sorted(
        (e for e in snap.outbox.values() if e.aggregate_id == aggregate_id),
        key=lambda e: e.position,
    )
    appliers: dict[str, list[str]] = {e.event_id: [] for e in events}
    for durable, rows in snap.applied.items():
        for row in rows:
            if row.event_id in appliers:
                appliers[row.event_id].append(durable)
    return "; ".join(
        f"#{e.aggregate_seq} {e.event_type} (position {e.position}, "
        f"{'sent' if e.sent else 'unsent'}, {'in' if e.event_id in stored else 'not in'} "
        f"the stream, applied by {', '.join(sorted(appliers[e.event_id])) or 'none'})"
        for e in events
    )


async def explain_unapplied(dbs: Databases, snap: Snapshot, found: Findings) -> None:
    """For each event a consumer never applied: where that consumer's position for the
    aggregate stands, and when it applied the aggregate's other events."""
    for service, durable, event in found.unapplied[:5]:
        if "last_seq" not in await dbs.columns(service, "consumer_positions"):
            return
        async with dbs.engines[service].connect() as conn:
            position = (
                await conn.execute(
                    text(
                        "SELECT last_seq, updated_at FROM consumer_positions "
                        "WHERE consumer = :consumer AND aggregate_id = :aggregate"
                    ),
                    {"consumer": durable, "aggregate": event.aggregate_id},
                )
            ).all()
        siblings = {
            e.event_id: e.aggregate_seq
            for e in snap.outbox.values()
            if e.aggregate_id == event.aggregate_id
        }
        applied = sorted(
            (row.processed_at, siblings[row.event_id])
            for row in snap.applied.get(durable, [])
            if row.event_id in siblings
        )
        found.details.append(
            f"{durable}: position of {event.aggregate_id}: "
            f"{[tuple(map(str, p)) for p in position] or 'none'}; applied (when, #): "
            f"{[(str(at), seq) for at, seq in applied]}"
        )


def _letter_phase(letter: Mapping[str, Any], windows: Sequence[Window]) -> str:
    at = letter.get("first_failed_at")
    if isinstance(at, str):
        with contextlib.suppress(ValueError):
            at = datetime.fromisoformat(at.replace("Z", "+00:00"))
    return window_of(windows, at) if isinstance(at, datetime) else windows[-1].name


def poison_dead_lettered(snap: Snapshot, consumer: str) -> int:
    """Dead letters of `consumer` no outbox wrote: the poison."""
    return sum(
        1
        for letter in snap.dead_letters.get(consumer, [])
        if letter.get("event_id") not in snap.outbox
    )


def group_by_phase(ledger: Iterable[Write]) -> dict[str, list[Write]]:
    grouped: dict[str, list[Write]] = defaultdict(list)
    for write in ledger:
        grouped[write.phase].append(write)
    return grouped
