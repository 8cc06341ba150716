"""Test support for the dashboards: events published on real NATS, a known county, its figures.

`Scenario` is a small county written as plain inputs (orgs, members, transfers, sessions,
attendance, stations…). `Scenario.events()` turns them into the events the services would
publish; `Scenario.expected()` computes every dashboard figure from the same inputs with
naive loops, independently of the gateway's counters, so a test can compare the two.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from gateway.base import inbox
from gateway.dashboards.handlers import DURABLE
from gonghui_shared.contracts import Event, EventEnvelope, envelope_for
from gonghui_shared.contracts import membership as m
from gonghui_shared.contracts import stations as s
from gonghui_shared.contracts import training as t
from gonghui_shared.ids import new_id
from gonghui_shared.runtime import ServiceRuntime

CHINA = timedelta(hours=8)
RADIUS_M = 15 * 4.5 * 1000 / 60  # 1125 m
EARTH_RADIUS_M = 6371008.8


class EventFeed:
    """Publishes events on NATS as their services would, and waits until the gateway applied
    them (their ids are in its inbox under the source's durable consumer)."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime
        self.published: dict[str, set[str]] = {}

    async def publish(
        self,
        event: Event,
        *,
        aggregate_id: str,
        org_path: str | None = None,
        occurred_at: datetime | None = None,
    ) -> EventEnvelope:
        envelope = envelope_for(
            event, aggregate_id=aggregate_id, org_path=org_path, occurred_at=occurred_at
        )
        await self.send(envelope)
        return envelope

    async def send(self, envelope: EventEnvelope, *, dedupe: bool = True) -> None:
        """Publish with `Nats-Msg-Id` = event id, as the outbox relay does; `dedupe=False`
        publishes it again as a new message: a redelivery after a relay crash."""
        bus = self.runtime.bus
        await bus.ensure_stream(envelope.source)
        headers = {"Nats-Msg-Id": str(envelope.event_id)} if dedupe else None
        await bus.js.publish(
            envelope.subject(bus.root), envelope.model_dump_json().encode(), headers=headers
        )
        self.published.setdefault(envelope.source, set()).add(str(envelope.event_id))

    async def synced(self, timeout: float = 20.0) -> None:
        """Wait until every event published so far is in the gateway's inbox."""
        deadline = time.monotonic() + timeout
        for source, wanted in self.published.items():
            while True:
                async with self.runtime.db.sessions() as session:
                    done = await session.scalar(
                        select(func.count())
                        .select_from(inbox)
                        .where(inbox.c.consumer == DURABLE[source], inbox.c.event_id.in_(wanted))
                    )
                if done == len(wanted):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{source}: applied {done} of {len(wanted)} events")
                await asyncio.sleep(0.02)


# -- the scenario ---------------------------------------------------------------------------


def at(text: str) -> datetime:
    """An instant written in UTC: "2026-03-10T02:00"."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def china_month(instant: datetime) -> str:
    return (instant.astimezone(UTC) + CHINA).strftime("%Y-%m")


def day_month(day: date) -> str:
    return day.strftime("%Y-%m")


def offset(
    point: tuple[float, float], east_m: float = 0.0, north_m: float = 0.0
) -> tuple[float, float]:
    lon, lat = point
    metres_per_deg = math.pi * EARTH_RADIUS_M / 180
    return (
        lon + east_m / (metres_per_deg * math.cos(math.radians(lat))),
        lat + north_m / metres_per_deg,
    )


def haversine(a: tuple[float, float], b: tuple[float, float]) -> float:
    (lon1, lat1), (lon2, lat2) = a, b
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass
class Org:
    key: str
    parent: str | None
    org_type: str
    name: str
    region_code: str
    place: tuple[float, float] | None
    id: str = field(default_factory=new_id)
    path: str = ""
    status: str = "active"
    dissolved_at: datetime | None = None


@dataclass
class Member:
    no: str
    org: str
    category: str
    approved_at: datetime
    id: str = field(default_factory=new_id)


@dataclass
class Transfer:
    member: str
    to: str
    at: datetime
    id: str = field(default_factory=new_id)


@dataclass
class Ending:
    member: str
    status: str  # withdrawn, lapsed, expelled
    at: datetime


@dataclass
class Session:
    key: str
    category: str
    host: str
    scheduled_at: datetime
    starts_at: datetime
    ends_at: datetime
    status: str  # scheduled, completed, cancelled
    ended_at: datetime | None = None  # completion or cancellation
    spent_fen: int = 0
    id: str = field(default_factory=new_id)


@dataclass
class Attendance:
    session: str
    person_key: str
    worker_category: str
    day: date
    id: str = field(default_factory=new_id)

    @property
    def member_no(self) -> str | None:
        return self.person_key[2:] if self.person_key.startswith("m:") else None


@dataclass
class Certificate:
    session: str
    person_key: str
    issued_on: date
    revoked_at: datetime | None = None
    id: str = field(default_factory=new_id)


@dataclass
class Station:
    key: str
    host: str
    station_type: str
    place: tuple[float, float]
    opened_at: datetime
    moved: tuple[datetime, tuple[float, float]] | None = None
    status_changes: list[tuple[datetime, str]] = field(default_factory=list)
    id: str = field(default_factory=new_id)

    @property
    def final_place(self) -> tuple[float, float]:
        return self.moved[1] if self.moved else self.place

    @property
    def status(self) -> str:
        return self.status_changes[-1][1] if self.status_changes else "active"


@dataclass
class Visit:
    station: str
    day: date
    services: list[str]


@dataclass
class Subsidy:
    station: str
    period: str
    amount_fen: int


UNION_OF_LEVEL = {
    "county": "county_federation",
    "township": "township_union",
    "village": "village_union",
}
LEVELS = ("province", "city", "county", "township", "village")


def level_of(code: str) -> str:
    if code[6:] == "000000":
        return "county"
    if code[9:] == "000":
        return "township"
    return "village"


def months(first: str, last: str) -> list[str]:
    out = []
    y, mo = int(first[:4]), int(first[5:])
    while f"{y:04d}-{mo:02d}" <= last:
        out.append(f"{y:04d}-{mo:02d}")
        y, mo = (y + 1, 1) if mo == 12 else (y, mo + 1)
    return out


class Scenario:
    """凤庆县 in miniature: every kind of fact the dashboards count, with fresh ids each time."""

    def __init__(self) -> None:
        V1, V2, V3, V5 = (99.930, 24.585), (99.900, 24.605), (100.020, 24.450), (100.060, 24.420)
        self.orgs = {
            o.key: o
            for o in (
                Org(
                    "C",
                    None,
                    "county_federation",
                    "凤庆县总工会",
                    "530921000000",
                    (99.9286, 24.5803),
                ),
                Org("T1", "C", "township_union", "凤山镇工会", "530921101000", None),
                Org("T2", "C", "township_union", "勐佑镇工会", "530921102000", None),
                Org("V1", "T1", "village_union", "东城社区工会", "530921101201", V1),
                Org("V2", "T1", "village_union", "京竹林村工会", "530921101202", V2),
                Org("E1", "T1", "enterprise_union", "凤庆茶厂工会", "530921101000", None),
                Org("V3", "T2", "village_union", "勐佑村工会", "530921102201", V3),
                Org("V4", "T2", "village_union", "新民村工会", "530921102202", None),
                Org("V5", "T2", "village_union", "河边村工会", "530921102203", V5),
                Org("X", None, "county_federation", "云县总工会", "530922000000", None),
            )
        }
        for org in self.orgs.values():
            parent = self.orgs[org.parent].path if org.parent else "/"
            org.path = f"{parent}{org.id}/"
        self.orgs["V4"].status, self.orgs["V4"].dissolved_at = "dissolved", at("2026-02-01T00:00")

        self.units = [
            ("530921000000", "凤庆县", None),
            ("530921101000", "凤山镇", "530921000000"),
            ("530921102000", "勐佑镇", "530921000000"),
            ("530921103000", "洛党镇", "530921000000"),
            ("530921101201", "东城社区", "530921101000"),
            ("530921101202", "京竹林村", "530921101000"),
            ("530921101203", "安石村", "530921101000"),
            ("530921102201", "勐佑村", "530921102000"),
            ("530921102202", "新民村", "530921102000"),
            ("530921102203", "河边村", "530921102000"),
        ]
        serial = new_id()[-6:]
        no = {k: f"5309212026{serial}{i}"[-16:] for i, k in enumerate("12345678", 1)}
        self.members = {
            k: mem
            for k, mem in (
                ("M1", Member(no["1"], "V1", "migrant_worker", at("2026-01-15T02:00"))),
                ("M2", Member(no["2"], "V1", "migrant_worker", at("2026-02-03T02:00"))),
                ("M3", Member(no["3"], "V1", "new_employment", at("2026-02-20T02:00"))),
                ("M4", Member(no["4"], "V2", "employee", at("2026-03-01T02:00"))),
                ("M5", Member(no["5"], "V2", "migrant_worker", at("2026-03-05T02:00"))),
                # 20:00 UTC on 31 January is 1 February in China: counted in February.
                ("M6", Member(no["6"], "V3", "other", at("2026-01-31T20:00"))),
                ("M7", Member(no["7"], "V3", "migrant_worker", at("2026-04-10T02:00"))),
                ("M8", Member(no["8"], "T1", "employee", at("2026-04-11T02:00"))),
            )
        }
        self.transfers = [
            Transfer("M2", "V3", at("2026-03-10T02:00")),
            Transfer("M4", "T1", at("2026-05-15T02:00")),
        ]
        self.endings = [
            Ending("M5", "withdrawn", at("2026-04-01T03:00")),
            Ending("M7", "expelled", at("2026-05-02T03:00")),
        ]
        self.cadres = [
            ("M1", "V1", "chair"),
            ("M4", "V2", "chair"),
            ("M8", "T1", "vice_chair"),
            ("M1", "T1", "member"),
        ]
        self.sessions = {
            x.key: x
            for x in (
                Session(
                    "S1",
                    "cadre_training",
                    "C",
                    at("2026-02-20T02:00"),
                    at("2026-03-02T01:00"),
                    at("2026-03-03T09:00"),
                    "completed",
                    at("2026-03-03T10:00"),
                    150000,
                ),
                Session(
                    "S2",
                    "welding_trades",
                    "T1",
                    at("2026-03-20T02:00"),
                    at("2026-04-06T01:00"),
                    at("2026-04-08T09:00"),
                    "completed",
                    at("2026-04-08T10:00"),
                    320050,
                ),
                Session(
                    "S3",
                    "ecommerce",
                    "V3",
                    at("2026-04-20T02:00"),
                    at("2026-05-10T01:00"),
                    at("2026-05-10T09:00"),
                    "cancelled",
                    at("2026-05-01T02:00"),
                ),
                # Starts 17:00 UTC on 31 May: 1 June in China.
                Session(
                    "S4",
                    "planting_breeding",
                    "T2",
                    at("2026-05-15T02:00"),
                    at("2026-05-31T17:00"),
                    at("2026-06-02T09:00"),
                    "scheduled",
                ),
            )
        }
        m1, m2, m8 = (f"m:{self.members[k].no}" for k in ("M1", "M2", "M8"))
        self.attendance = [
            Attendance("S1", m1, "migrant_worker", date(2026, 3, 2)),
            Attendance("S1", m1, "migrant_worker", date(2026, 3, 3)),
            Attendance("S1", m8, "employee", date(2026, 3, 2)),
            Attendance("S2", m2, "migrant_worker", date(2026, 4, 6)),
            Attendance("S2", m2, "migrant_worker", date(2026, 4, 7)),
            Attendance("S2", "p:0f3c9a", "rural_labour", date(2026, 4, 6)),
            Attendance("S2", m1, "migrant_worker", date(2026, 4, 6)),
        ]
        self.certificates = [
            Certificate("S1", m1, date(2026, 3, 3)),
            Certificate("S1", m8, date(2026, 3, 3)),
            Certificate("S2", m2, date(2026, 4, 8)),
            Certificate("S2", "p:0f3c9a", date(2026, 4, 8), revoked_at=at("2026-04-20T02:00")),
        ]
        self.stations = {
            x.key: x
            for x in (
                Station(
                    "ST1",
                    "V1",
                    "village_service_point",
                    offset(V1, north_m=300),
                    at("2026-01-05T02:00"),
                    moved=(at("2026-02-10T02:00"), offset(V1, north_m=250)),
                ),
                Station(
                    "ST2",
                    "T2",
                    "outdoor_worker_station",
                    offset(V3, north_m=3000),
                    at("2026-01-06T02:00"),
                    status_changes=[(at("2026-05-20T02:00"), "suspended")],
                ),
                Station(
                    "ST3",
                    "V3",
                    "worker_home",
                    offset(V3, east_m=500),
                    at("2026-01-07T02:00"),
                    status_changes=[(at("2026-04-15T02:00"), "closed")],
                ),
                Station(
                    "ST4", "T1", "liaison_station", offset(V2, east_m=1000), at("2026-02-01T02:00")
                ),
                # Run by another county, yet it puts V3 inside a 15-minute circle.
                Station(
                    "ST5",
                    "X",
                    "outdoor_worker_station",
                    offset(V3, north_m=-800),
                    at("2026-01-08T02:00"),
                ),
            )
        }
        self.visits = [
            Visit("ST1", date(2026, 5, 3), ["drinking_water", "phone_charging"]),
            Visit("ST1", date(2026, 5, 4), ["rest"]),
            Visit("ST1", date(2026, 5, 9), ["drinking_water"]),
            Visit("ST4", date(2026, 6, 1), ["toilet"]),
            Visit("ST5", date(2026, 5, 5), ["drinking_water"]),
            Visit("ST5", date(2026, 5, 6), ["breakfast"]),
        ]
        self.subsidies = [
            Subsidy("ST1", "2026-05", 10000),
            Subsidy("ST1", "2026-06", 10000),
            Subsidy("ST4", "2026-06", 5000),
        ]

    # -- events ------------------------------------------------------------------------

    def events(self) -> list[tuple[datetime, Event, str, str | None]]:
        """(occurred_at, event, aggregate_id, org_path) of every fact, in time order."""
        out: list[tuple[datetime, Event, str, str | None]] = []
        o = self.orgs
        base = at("2025-12-01T00:00")
        for i, org in enumerate(o.values()):
            lon, lat = org.place or (None, None)
            parent = o[org.parent] if org.parent else None
            out.append(
                (
                    base + timedelta(minutes=i),
                    m.OrgCreated(
                        org_id=org.id,
                        parent_id=parent.id if parent else None,
                        path=org.path,
                        org_type=org.org_type,
                        name=org.name,
                        region_code=org.region_code,
                        lon=lon,
                        lat=lat,
                    ),
                    org.id,
                    org.path,
                )
            )
            if org.dissolved_at is not None:
                out.append(
                    (
                        org.dissolved_at,
                        m.OrgUpdated(
                            org_id=org.id,
                            path=org.path,
                            name=org.name,
                            region_code=org.region_code,
                            status=org.status,
                            changed=["status"],
                            lon=lon,
                            lat=lat,
                        ),
                        org.id,
                        org.path,
                    )
                )
        import_id = new_id()
        out.append(
            (
                at("2025-12-02T00:00"),
                m.UnitsRegistered(
                    import_id=import_id,
                    chunk=1,
                    chunks=1,
                    units=[
                        m.RegisteredUnit(code=c, name=n, level=level_of(c), parent_code=p)
                        for c, n, p in self.units
                    ],
                ),
                import_id,
                None,
            )
        )
        for mem in self.members.values():
            org = o[mem.org]
            out.append(
                (
                    mem.approved_at,
                    m.MemberApproved(
                        member_id=mem.id,
                        member_no=mem.no,
                        application_id=new_id(),
                        org_id=org.id,
                        name="会员",
                        category=mem.category,
                        household_type="rural",
                        gender="female",
                        birth_year=1988,
                        approval_doc_no="凤工复〔2026〕1号",
                        approved_at=mem.approved_at,
                    ),
                    mem.id,
                    org.path,
                )
            )
        for tr in self.transfers:
            mem = self.members[tr.member]
            source = self.org_at(tr.member, tr.at - timedelta(seconds=1))
            out.append(
                (
                    tr.at,
                    m.MemberTransferred(
                        member_id=mem.id,
                        member_no=mem.no,
                        transfer_id=tr.id,
                        from_org_id=o[source].id,
                        to_org_id=o[tr.to].id,
                        from_org_path=o[source].path,
                        category=mem.category,
                    ),
                    mem.id,
                    o[tr.to].path,
                )
            )
        ended = {
            "withdrawn": m.MemberWithdrawn,
            "lapsed": m.MemberLapsed,
            "expelled": m.MemberExpelled,
        }
        for end in self.endings:
            mem = self.members[end.member]
            org = o[self.org_at(end.member, end.at)]
            out.append(
                (
                    end.at,
                    ended[end.status](
                        member_id=mem.id,
                        member_no=mem.no,
                        org_id=org.id,
                        category=mem.category,
                        reason="-",
                    ),
                    mem.id,
                    org.path,
                )
            )
        for i, (key, org_key, role) in enumerate(self.cadres):
            mem, org = self.members[key], o[org_key]
            cadre_id = new_id()
            out.append(
                (
                    at("2026-04-12T00:00") + timedelta(minutes=i),
                    m.CadreAppointed(
                        cadre_id=cadre_id,
                        org_id=org.id,
                        member_id=mem.id,
                        member_no=mem.no,
                        role=role,
                        appointed_on=date(2026, 4, 12),
                    ),
                    cadre_id,
                    org.path,
                )
            )
        for x in self.sessions.values():
            host = o[x.host]
            out.append(
                (
                    x.scheduled_at,
                    t.SessionScheduled(
                        session_id=x.id,
                        course_id=new_id(),
                        course_category=x.category,
                        host_org_id=host.id,
                        starts_at=x.starts_at,
                        ends_at=x.ends_at,
                        delivery_mode="on_site",
                        capacity=30,
                        planned_budget_fen=x.spent_fen + 1000,
                    ),
                    x.id,
                    host.path,
                )
            )
            if x.status == "completed":
                assert x.ended_at is not None
                attended = [a for a in self.attendance if a.session == x.key]
                out.append(
                    (
                        x.ended_at,
                        t.SessionCompleted(
                            session_id=x.id,
                            course_id=new_id(),
                            course_category=x.category,
                            host_org_id=host.id,
                            enrolled=5,
                            completed=4,
                            person_times=len(attended),
                            unique_persons=len({a.person_key for a in attended}),
                            spent_fen=x.spent_fen,
                        ),
                        x.id,
                        host.path,
                    )
                )
            elif x.status == "cancelled":
                assert x.ended_at is not None
                out.append(
                    (
                        x.ended_at,
                        t.SessionCancelled(
                            session_id=x.id,
                            host_org_id=host.id,
                            reason="雨季",
                        ),
                        x.id,
                        host.path,
                    )
                )
        for a in self.attendance:
            x = self.sessions[a.session]
            host = o[x.host]
            enrolment_id = new_id()
            out.append(
                (
                    x.scheduled_at + timedelta(hours=1),
                    t.Enrolled(
                        enrolment_id=enrolment_id,
                        session_id=x.id,
                        host_org_id=host.id,
                        person_key=a.person_key,
                        member_no=a.member_no,
                        worker_category=a.worker_category,
                        status="enrolled",
                    ),
                    enrolment_id,
                    host.path,
                )
            )
            out.append(
                (
                    datetime.combine(a.day, datetime.min.time(), UTC) + timedelta(hours=3),
                    t.Attended(
                        attendance_id=a.id,
                        session_id=x.id,
                        enrolment_id=enrolment_id,
                        host_org_id=host.id,
                        course_category=x.category,
                        person_key=a.person_key,
                        member_no=a.member_no,
                        worker_category=a.worker_category,
                        day=a.day,
                        method="staff",
                    ),
                    a.id,
                    host.path,
                )
            )
        for c in self.certificates:
            x = self.sessions[c.session]
            host = o[x.host]
            out.append(
                (
                    datetime.combine(c.issued_on, datetime.min.time(), UTC) + timedelta(hours=10),
                    t.CertificateIssued(
                        certificate_id=c.id,
                        number=f"GH{c.id[-8:]}",
                        session_id=x.id,
                        course_id=new_id(),
                        course_category=x.category,
                        host_org_id=host.id,
                        person_key=c.person_key,
                        member_no=c.person_key[2:] if c.person_key.startswith("m:") else None,
                        worker_category="migrant_worker",
                        issued_on=c.issued_on,
                    ),
                    c.id,
                    host.path,
                )
            )
            if c.revoked_at is not None:
                out.append(
                    (
                        c.revoked_at,
                        t.CertificateRevoked(
                            certificate_id=c.id,
                            number=f"GH{c.id[-8:]}",
                            host_org_id=host.id,
                            reason="冒名",
                        ),
                        c.id,
                        host.path,
                    )
                )
        status_events = {
            "suspended": s.StationSuspended,
            "closed": s.StationClosed,
            "active": s.StationReopened,
        }
        for st in self.stations.values():
            host = o[st.host]
            out.append(
                (
                    st.opened_at,
                    s.StationOpened(
                        station_id=st.id,
                        station_type=st.station_type,
                        name=f"{host.name}{st.key}",
                        host_org_id=host.id,
                        lon=st.place[0],
                        lat=st.place[1],
                        amenities=["drinking_water"],
                    ),
                    st.id,
                    host.path,
                )
            )
            if st.moved is not None:
                moved_at, (lon, lat) = st.moved
                out.append(
                    (
                        moved_at,
                        s.StationUpdated(
                            station_id=st.id,
                            host_org_id=host.id,
                            changed=["lon", "lat"],
                            lon=lon,
                            lat=lat,
                            amenities=["drinking_water"],
                        ),
                        st.id,
                        host.path,
                    )
                )
            for when, status in st.status_changes:
                out.append(
                    (
                        when,
                        status_events[status](
                            station_id=st.id,
                            host_org_id=host.id,
                            station_type=st.station_type,
                        ),
                        st.id,
                        host.path,
                    )
                )
        for v in self.visits:
            st = self.stations[v.station]
            host = o[st.host]
            visit_id = new_id()
            out.append(
                (
                    datetime.combine(v.day, datetime.min.time(), UTC) + timedelta(hours=4),
                    s.VisitRecorded(
                        visit_id=visit_id,
                        station_id=st.id,
                        station_type=st.station_type,
                        host_org_id=host.id,
                        visited_at=datetime.combine(v.day, datetime.min.time(), UTC)
                        + timedelta(hours=4),
                        day=v.day,
                        services=v.services,
                    ),
                    visit_id,
                    host.path,
                )
            )
        for sub in self.subsidies:
            st = self.stations[sub.station]
            host = o[st.host]
            subsidy_id = new_id()
            out.append(
                (
                    at(f"{sub.period}-25T02:00"),
                    s.SubsidyPaid(
                        subsidy_id=subsidy_id,
                        station_id=st.id,
                        host_org_id=host.id,
                        period=sub.period,
                        amount_fen=sub.amount_fen,
                        paid_on=date.fromisoformat(f"{sub.period}-25"),
                    ),
                    subsidy_id,
                    host.path,
                )
            )
        return sorted(out, key=lambda e: e[0])

    async def publish(
        self, feed: EventFeed, *, reverse: bool = False, twice: bool = False
    ) -> list[EventEnvelope]:
        """Publish every event (newest first with `reverse`; each twice with `twice`)."""
        events = self.events()
        envelopes = [
            envelope_for(event, aggregate_id=aggregate, org_path=path, occurred_at=when)
            for when, event, aggregate, path in events
        ]
        for envelope in reversed(envelopes) if reverse else envelopes:
            await feed.send(envelope)
            if twice:
                await feed.send(envelope, dedupe=False)
        await feed.synced()
        return envelopes

    # -- the oracle ----------------------------------------------------------------------

    def subtree(self, key: str) -> set[str]:
        """The keys of the org and every org below it, by following parents."""
        inside = set()
        for org in self.orgs.values():
            k: str | None = org.key
            while k is not None:
                if k == key:
                    inside.add(org.key)
                    break
                k = self.orgs[k].parent
        return inside

    def org_at(self, member: str, when: datetime) -> str:
        org = self.members[member].org
        for tr in sorted(self.transfers, key=lambda x: x.at):
            if tr.member == member and tr.at <= when:
                org = tr.to
        return org

    def expected(
        self, key: str, first: str | None = None, last: str | None = None
    ) -> dict[str, Any]:
        """Every figure of `key`'s subtree, computed naively from the inputs."""
        inside = self.subtree(key)

        def in_period(month: str) -> bool:
            return (first is None or month >= first) and (last is None or month <= last)

        def by_end(month: str) -> bool:
            return last is None or month <= last

        # members: where each one stands at the end of `last`
        by_status = {k: 0 for k in ("active", "withdrawn", "lapsed", "expelled")}
        by_category = {k: 0 for k in ("migrant_worker", "new_employment", "employee", "other")}
        new_per_month: dict[str, int] = {}
        for mk, mem in self.members.items():
            if in_period(china_month(mem.approved_at)) and mem.org in inside:
                month = china_month(mem.approved_at)
                new_per_month[month] = new_per_month.get(month, 0) + 1
            if not by_end(china_month(mem.approved_at)):
                continue
            org = mem.org
            for tr in sorted(self.transfers, key=lambda x: x.at):
                if tr.member == mk and by_end(china_month(tr.at)):
                    org = tr.to
            status = "active"
            for end in self.endings:
                if end.member == mk and by_end(china_month(end.at)):
                    status = end.status
            if org in inside:
                by_status[status] += 1
                if status == "active":
                    by_category[mem.category] += 1
        # the period's months, or the 12 months up to `last` (or now) without `first`
        window_end = last or (datetime.now(UTC) + CHINA).strftime("%Y-%m")
        year, month_no = int(window_end[:4]), int(window_end[5:]) - 11
        if month_no < 1:
            year, month_no = year - 1, month_no + 12
        window_start = first or f"{year:04d}-{month_no:02d}"
        per_month = [(mo, new_per_month.get(mo, 0)) for mo in months(window_start, window_end)]

        # cadres
        trained_nos = {
            a.member_no
            for a in self.attendance
            if self.sessions[a.session].category == "cadre_training" and a.member_no
        }
        cadres = {self.members[mk].no for mk, org, _ in self.cadres if org in inside}
        trained = len(cadres & trained_nos)

        # training
        hosted = {k: x for k, x in self.sessions.items() if x.host in inside}
        scheduled = sum(
            1
            for x in hosted.values()
            if x.status == "scheduled" and in_period(china_month(x.starts_at))
        )
        completed = [
            x
            for x in hosted.values()
            if x.status == "completed" and in_period(china_month(x.ends_at))
        ]
        cancelled = sum(
            1
            for x in hosted.values()
            if x.status == "cancelled" and in_period(china_month(x.starts_at))
        )
        records = [
            a for a in self.attendance if a.session in hosted and in_period(day_month(a.day))
        ]
        certs = [
            c
            for c in self.certificates
            if c.session in hosted and in_period(day_month(c.issued_on))
        ]
        revoked = sum(1 for c in certs if c.revoked_at is not None)
        spent = sum(x.spent_fen for x in completed)

        # stations
        mine = [st for st in self.stations.values() if st.host in inside]
        types = {
            k: 0
            for k in (
                "outdoor_worker_station",
                "worker_home",
                "village_service_point",
                "liaison_station",
                "other",
            )
        }
        statuses = {k: 0 for k in ("active", "suspended", "closed")}
        for st in mine:
            types[st.station_type] += 1
            statuses[st.status] += 1
        villages = [
            o
            for o in self.orgs.values()
            if o.key in inside and o.org_type == "village_union" and o.status == "active"
        ]
        located = [v.place for v in villages if v.place is not None]
        active_places = [st.final_place for st in self.stations.values() if st.status == "active"]
        covered = sum(
            1 for place in located if any(haversine(place, p) <= RADIUS_M for p in active_places)
        )
        visits = [
            v
            for v in self.visits
            if self.stations[v.station].host in inside and in_period(day_month(v.day))
        ]
        services: dict[str, int] = {}
        for v in visits:
            for name in v.services:
                services[name] = services.get(name, 0) + 1
        paid = sum(
            x.amount_fen
            for x in self.subsidies
            if self.stations[x.station].host in inside and in_period(x.period)
        )

        def rate(a: int, b: int) -> float | None:
            return round(a / b, 4) if b else None

        def yuan(fen: int) -> str:
            return f"{fen // 100}.{fen % 100:02d}"

        return {
            "units": self.expected_units(key),
            "members": {
                "active": by_status["active"],
                "by_category": by_category,
                "by_status": by_status,
                "migrant_workers": by_category["migrant_worker"],
                "new_employment": by_category["new_employment"],
                "new_members": sum(new_per_month.values()),
                "new_members_per_month": per_month,
            },
            "cadres": (len(cadres), trained, rate(trained, len(cadres))),
            "training": {
                "sessions_scheduled": scheduled,
                "sessions_completed": len(completed),
                "sessions_cancelled": cancelled,
                "person_times": len(records),
                "unique_persons": len({a.person_key for a in records}),
                "certificates_issued": len(certs),
                "certificates_revoked": revoked,
                "certificates": len(certs) - revoked,
                "budget_spent_fen": spent,
                "budget_spent": yuan(spent),
            },
            "stations": {
                "total": len(mine),
                "active": statuses["active"],
                "by_type": types,
                "by_status": statuses,
                "circle": (
                    len(villages),
                    len(located),
                    covered,
                    rate(covered, len(located)),
                    1125.0,
                ),
                "visits": len(visits),
                "services_used": sum(services.values()),
                "services_by_kind": services,
                "subsidies_paid_fen": paid,
                "subsidies_paid": yuan(paid),
            },
        }

    def expected_units(self, key: str) -> dict[str, Any]:
        """Membership's coverage rule over the units, for the org's region code."""
        code = self.orgs[key].region_code
        level = level_of(code)
        below = [lvl for lvl in LEVELS[LEVELS.index(level) + 1 :] if lvl in UNION_OF_LEVEL]
        prefix = code[: {"county": 6, "township": 9, "village": 12}[level]]

        def covered(unit_code: str) -> bool:
            union = UNION_OF_LEVEL[level_of(unit_code)]
            return any(
                o.region_code == unit_code and o.org_type == union and o.status == "active"
                for o in self.orgs.values()
            )

        def cover(codes: list[str], lvl: str | None) -> tuple[Any, ...]:
            n = sum(covered(c) for c in codes)
            return (lvl, len(codes), n, round(n / len(codes), 4) if codes else None)

        if not below:
            return {"direct": (None, 0, 0, None), "levels": []}
        return {
            "direct": cover([c for c, _, p in self.units if p == code], below[0]),
            "levels": [
                cover(
                    [c for c, _, _ in self.units if c.startswith(prefix) and level_of(c) == lvl],
                    lvl,
                )
                for lvl in below
            ],
        }

    def expected_map(self, key: str) -> dict[str, Any]:
        inside = self.subtree(key)
        active = [st.final_place for st in self.stations.values() if st.status == "active"]
        villages = {}
        for o in self.orgs.values():
            if o.key in inside and o.org_type == "village_union" and o.status == "active":
                near = [haversine(o.place, p) for p in active] if o.place else []
                nearest = min((d for d in near if d <= 5000), default=None)
                villages[o.id] = (nearest is not None and nearest <= RADIUS_M, nearest)
        stations = {
            st.id: (st.station_type, st.status, st.final_place)
            for st in self.stations.values()
            if st.host in inside
        }
        return {"villages": villages, "stations": stations}


def normalise(figures: dict[str, Any]) -> dict[str, Any]:
    """An answer's figures in the oracle's shape: every figure, nothing else."""
    u, mem, c, tr, st = (figures[k] for k in ("units", "members", "cadres", "training", "stations"))

    def level(x: dict[str, Any]) -> tuple[Any, ...]:
        return (x["level"], x["total"], x["covered"], x["rate"])

    def counts(items: list[dict[str, Any]]) -> dict[str, int]:
        return {x["key"]: x["count"] for x in items}

    circle = st["circle"]
    return {
        "units": {"direct": level(u["direct"]), "levels": [level(x) for x in u["levels"]]},
        "members": {
            "active": mem["active"],
            "by_category": counts(mem["by_category"]),
            "by_status": counts(mem["by_status"]),
            "migrant_workers": mem["migrant_workers"],
            "new_employment": mem["new_employment"],
            "new_members": mem["new_members"],
            "new_members_per_month": [
                (x["month"], x["count"]) for x in mem["new_members_per_month"]
            ],
        },
        "cadres": (c["cadres"], c["trained"], c["rate"]),
        "training": {k: v for k, v in tr.items() if k != "sources"},
        "stations": {
            "total": st["total"],
            "active": st["active"],
            "by_type": counts(st["by_type"]),
            "by_status": counts(st["by_status"]),
            "circle": (
                circle["units_total"],
                circle["units_located"],
                circle["covered"],
                circle["rate"],
                circle["radius_m"],
            ),
            "visits": st["visits"],
            "services_used": st["services_used"],
            "services_by_kind": counts(st["services_by_kind"]),
            "subsidies_paid_fen": st["subsidies_paid_fen"],
            "subsidies_paid": st["subsidies_paid"],
        },
    }
