"""Test support for training: membership's events on NATS, and the API driver."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fastapi import FastAPI
from sqlalchemy import insert, select
from stdnum.cn import ric

from gonghui_shared.clock import CHINA, today_in_china
from gonghui_shared.db import Database
from gonghui_shared.ids import new_id
from gonghui_shared.runtime import ServiceRuntime
from gonghui_shared.testing.driver import ApiDriver
from gonghui_shared.testing.feed import MembershipFeed
from training.attendance.models import Attendance
from training.base import inbox, outbox
from training.budget.models import BudgetEntry
from training.certificates.models import Certificate
from training.competitions.models import Competition, CompetitionEntry, CompetitionEvent
from training.courses.models import Course
from training.enrolments.models import Enrolment
from training.events.handlers import MEMBERSHIP
from training.replicas.models import OrgReplica
from training.sessions.models import TrainingSession


def membership_feed(runtime: ServiceRuntime) -> MembershipFeed:
    return MembershipFeed(runtime, inbox, MEMBERSHIP.durable)


class Api(ApiDriver):
    """The training API as different principals."""

    # ------------------------------------------------------------ courses and sessions

    async def course(
        self, org: dict[str, Any], *, as_: dict[str, str] | None = None, **fields: Any
    ) -> dict[str, Any]:
        """A course in `org`'s catalogue (a welding course unless `fields` say otherwise)."""
        body = {
            "owner_org_id": org["id"],
            "title": "电焊工职业技能培训",
            "category": "welding_trades",
            "skills": ["焊条电弧焊"],
            "target_groups": ["migrant_workers"],
            "leads_to_certificate": True,
            "hours": 56,
            **fields,
        }
        course: dict[str, Any] = await self.ok(
            "POST", "/v1/courses", as_=as_, expect=201, json=body
        )
        return course

    async def schedule(
        self,
        course: dict[str, Any],
        org: dict[str, Any],
        *,
        as_: dict[str, str] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A scheduled session of `course` at `org`: three days from 10 March 2026, China time."""
        body = {
            "course_id": course["id"],
            "host_org_id": org["id"],
            "starts_at": "2026-03-10T09:00:00+08:00",
            "ends_at": "2026-03-12T17:00:00+08:00",
            "place": "凤山镇职业技能实训基地",
            "delivery_mode": "on_site",
            "trainer": "张师傅",
            "capacity": 40,
            "planned_budget": "8600.00",
            **fields,
        }
        ts: dict[str, Any] = await self.ok("POST", "/v1/sessions", as_=as_, expect=201, json=body)
        return ts


# ---------------------------------------------------------------- enrolment and attendance

_person_serial = itertools.count(1)


def valid_id_number(serial: int | None = None, *, birth: str = "19900101") -> str:
    """A checksum-valid 18-digit ID number of 凤庆县 (530921), distinct per serial."""
    n = next(_person_serial) if serial is None else serial
    first17 = f"530921{birth}{n % 1000:03d}"
    # calc_check_digit ignores the last character: it expects the check digit's slot.
    return first17 + ric.calc_check_digit(first17 + "0")


def non_member(**overrides: Any) -> dict[str, Any]:
    """An enrolment body for a non-member of the rural labour force."""
    n = next(_person_serial)
    body: dict[str, Any] = {
        "name": f"农民工{n}",
        "id_number": valid_id_number(n),
        "phone": f"1390871{n % 10000:04d}",
        "invite_to_join": False,
    }
    body.update(overrides)
    return body


async def open_session(
    api: ApiDriver,
    org: dict[str, Any],
    *,
    capacity: int = 30,
    days: int = 3,
    first_day: date | None = None,
    start: bool = False,
    category: str = "welding_trades",
) -> dict[str, Any]:
    """A session open for enrolment (in progress with `start`), hosted by `org`, over the API.

    It runs `days` China-calendar days from `first_day` (default today, so a check-in
    without a day lands inside it). Created as the platform admin.
    """
    first = first_day or today_in_china()
    course = await api.ok(
        "POST",
        "/v1/courses",
        expect=201,
        json={
            "owner_org_id": org["id"],
            "title": "电焊工职业技能培训",
            "category": category,
            "hours": 8 * days,
        },
    )
    ts = await api.ok(
        "POST",
        "/v1/sessions",
        expect=201,
        json={
            "course_id": course["id"],
            "host_org_id": org["id"],
            "starts_at": datetime.combine(first, time(9), CHINA).isoformat(),
            "ends_at": datetime.combine(
                first + timedelta(days=days - 1), time(17), CHINA
            ).isoformat(),
            "place": "凤山镇职业技能实训基地",
            "delivery_mode": "on_site",
            "capacity": capacity,
        },
    )
    ts = await api.ok("POST", f"/v1/sessions/{ts['id']}/open")
    if start:
        ts = await api.ok("POST", f"/v1/sessions/{ts['id']}/start")
    result: dict[str, Any] = ts
    return result


# ---------------------------------------------------------------- report data, known in advance
# Reports are tested on rows inserted directly (not through the write paths), in bulk: a
# generated county whose figures the generator knows, computed by plain Python over the
# same plan (an oracle independent of the report SQL).

REPORT_YEAR = 2026
REPORT_PERIOD = (date(REPORT_YEAR, 1, 1), date(REPORT_YEAR, 12, 31))
# Four in ten people are migrant workers (农民工); one in ten a non-member (农村劳动力).
_WORKER_CYCLE = (
    ["migrant_worker"] * 4 + ["new_employment"] * 2 + ["employee"] * 2 + ["other", "rural_labour"]
)
_COURSE_CYCLE = [
    "planting_breeding",
    "welding_trades",
    "ecommerce",
    "childcare_domestic",
    "planting_breeding",
    "cadre_training",
    "welding_trades",
    "law_rights",
    "safety",
    "other",
]
_CERTIFYING = {"planting_breeding", "welding_trades", "ecommerce", "childcare_domestic"}


@dataclass
class OrgTree:
    """A county with townships and villages, known to training's org replica."""

    county: dict[str, Any]
    townships: list[dict[str, Any]]
    villages: list[dict[str, Any]]  # each with "township": its township's index

    @property
    def all(self) -> list[dict[str, Any]]:
        return [self.county, *self.townships, *self.villages]


def _org(parent: dict[str, Any] | None, org_type: str, name: str, region: str) -> dict[str, Any]:
    org_id = new_id()
    return {
        "id": org_id,
        "parent_id": parent["id"] if parent else None,
        "path": f"{parent['path'] if parent else '/'}{org_id}/",
        "org_type": org_type,
        "name": name,
        "region_code": region,
    }


async def insert_rows(db: Database, *batches: tuple[Any, list[dict[str, Any]]]) -> None:
    """Bulk-insert (model, rows) batches in one transaction, in chunks."""
    async with db.transaction() as session:
        for model, rows in batches:
            for at in range(0, len(rows), 5000):
                await session.execute(insert(model), rows[at : at + 5000])


async def insert_org_tree(
    db: Database,
    *,
    townships: int = 3,
    villages: int = 2,
    county_code: str = "530921",
    name: str = "凤庆县总工会",
) -> OrgTree:
    """Orgs straight into the replica: `townships` townships of `villages` villages each."""
    county = _org(None, "county_federation", name, f"{county_code}000000")
    tree = OrgTree(county, [], [])
    for t in range(townships):
        town = _org(county, "township_union", f"第{t + 1}镇工会", f"{county_code}{101 + t:03d}000")
        tree.townships.append(town)
        for v in range(villages):
            village = _org(
                town,
                "village_union",
                f"第{t + 1}镇第{v + 1}村工会",
                f"{town['region_code'][:9]}{201 + v:03d}",
            )
            tree.villages.append({**village, "township": t})
    now = datetime.now(UTC)
    rows = [
        {k: o[k] for k in ("id", "parent_id", "path", "org_type", "name", "region_code")}
        | {"status": "active", "last_event_at": now}
        for o in tree.all
    ]
    await insert_rows(db, (OrgReplica, rows))
    return tree


@dataclass
class Expected:
    """The generated rows as plain tuples, and what any report over them must say."""

    # (host path, course category, first day, last day, status)
    sessions: list[tuple[str, str, date, date, str]] = field(default_factory=list)
    # (host path, day, person key, course category, worker category)
    attendance: list[tuple[str, date, str, str, str]] = field(default_factory=list)
    # (host path, issued on, status, person key, course category, worker category)
    certificates: list[tuple[str, date, str, str, str, str]] = field(default_factory=list)
    # (host path, entry date, kind, fen)
    budget: list[tuple[str, date, str, int]] = field(default_factory=list)
    # (host path, starts on, person key)
    competition_entries: list[tuple[str, date, str]] = field(default_factory=list)

    def figures(
        self, path: str, start: date = REPORT_PERIOD[0], end: date = REPORT_PERIOD[1]
    ) -> dict[str, Any]:
        """The report of `path`'s subtree over start..end, as `report_figures` shapes it."""

        def inside(p: str, day: date) -> bool:
            return p.startswith(path) and start <= day <= end

        held = [s for s in self.sessions if s[4] == "completed" and inside(s[0], s[3])]
        scheduled = [s for s in self.sessions if s[4] != "cancelled" and inside(s[0], s[2])]
        att = [a for a in self.attendance if inside(a[0], a[1])]
        certs = [c for c in self.certificates if inside(c[0], c[1])]
        valid = [c for c in certs if c[2] == "valid"]
        budget = [b for b in self.budget if inside(b[0], b[1])]
        spent = sum(b[3] for b in budget if b[2] == "spent")
        certified = len({c[3] for c in valid})

        def per(units: int) -> str | None:
            if not units:
                return None
            yuan = Decimal(spent) / 100 / units
            return str(yuan.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))

        def split(index: int, cert_index: int) -> dict[str, dict[str, int]]:
            keys = {str(a[index]) for a in att} | {str(c[cert_index]) for c in valid}
            return {
                k: {
                    "person_times": sum(1 for a in att if a[index] == k),
                    "unique_persons": len({a[2] for a in att if a[index] == k}),
                    "certificates": sum(1 for c in valid if c[cert_index] == k),
                }
                for k in keys
            }

        by_course = split(3, 4)
        for s in held:
            by_course.setdefault(s[1], {"person_times": 0, "unique_persons": 0, "certificates": 0})
        for k, row in by_course.items():
            row["sessions_held"] = sum(1 for s in held if s[1] == k)
        return {
            "sessions_held": len(held),
            "sessions_scheduled": len(scheduled),
            "person_times": len(att),
            "unique_persons": len({a[2] for a in att}),
            "certificates": len(valid),
            "certificates_revoked": len(certs) - len(valid),
            "certified_persons": certified,
            "by_course_category": by_course,
            "by_worker_category": split(4, 5),
            "cost": {
                "planned": f"{Decimal(sum(b[3] for b in budget if b[2] == 'planned')) / 100:.2f}",
                "spent": f"{Decimal(spent) / 100:.2f}",
                "per_person_time": per(len(att)),
                "per_certified_person": per(certified),
            },
            "competition_participants": len(
                {e[2] for e in self.competition_entries if inside(e[0], e[1])}
            ),
        }


def report_figures(body: dict[str, Any]) -> dict[str, Any]:
    """A summary response in `Expected.figures`' shape: categories keyed, zero rows dropped."""
    figures = {k: v for k, v in body.items() if k not in ("org", "period", "generated_at")}
    for split in ("by_course_category", "by_worker_category"):
        figures[split] = {
            row["category"]: {k: v for k, v in row.items() if k not in ("category", "label_zh")}
            for row in body[split]
            if any(v for k, v in row.items() if k not in ("category", "label_zh"))
        }
    return figures


@dataclass
class _Rows:
    """The rows being generated, per table, and the oracle's tuples beside them."""

    expected: Expected
    county_code: str
    courses: dict[str, str] = field(default_factory=dict)  # category -> course id
    sessions: list[dict[str, Any]] = field(default_factory=list)
    enrolments: list[dict[str, Any]] = field(default_factory=list)
    attendance: list[dict[str, Any]] = field(default_factory=list)
    certificates: list[dict[str, Any]] = field(default_factory=list)
    budget: list[dict[str, Any]] = field(default_factory=list)
    competitions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def person(self, j: int) -> dict[str, Any]:
        worker = _WORKER_CYCLE[j % len(_WORKER_CYCLE)]
        member_no = None if worker == "rural_labour" else f"530921{REPORT_YEAR}{j:06d}"
        key = f"m:{member_no}" if member_no else f"p:{j:032x}"
        return {"key": key, "member_no": member_no, "worker": worker, "name": f"学员{j}"}

    def session(
        self,
        host: dict[str, Any],
        category: str,
        first: date,
        days: int,
        status: str,
        attendees: list[tuple[int, int]],  # (person, days attended from the first)
        spent_fen: int = 0,
        planned_fen: int = 0,
    ) -> None:
        """One session with its enrolments, attendance, certificates and budget entries."""
        last = first + timedelta(days=days - 1)
        session_id = new_id()
        path = host["path"]
        starts = datetime.combine(first, time(9), CHINA)
        self.sessions.append(
            {
                "id": session_id,
                "course_id": self.courses[category],
                "course_category": category,
                "host_org_id": host["id"],
                "host_org_path": path,
                "starts_at": starts,
                "ends_at": datetime.combine(last, time(17), CHINA),
                "first_day": first,
                "last_day": last,
                "delivery_mode": "on_site",
                "capacity": max(len(attendees), 1),
                "planned_budget_fen": planned_fen,
                "status": status,
                "completed_at": starts + timedelta(days=days) if status == "completed" else None,
                "created_by": "seed",
            }
        )
        self.expected.sessions.append((path, category, first, last, status))
        for j, attended in attendees:
            p = self.person(j)
            done = status == "completed" and attended == days
            enrolment_id = new_id()
            self.enrolments.append(
                {
                    "id": enrolment_id,
                    "session_id": session_id,
                    "person_key": p["key"],
                    "member_no": p["member_no"],
                    "name": p["name"],
                    "worker_category": p["worker"],
                    "invite_to_join": False,
                    "status": ("completed" if done else "not_completed")
                    if status == "completed"
                    else "enrolled",
                    "enrolled_by": "seed",
                }
            )
            for d in range(attended):
                day = first + timedelta(days=d)
                self.attendance.append(
                    {
                        "session_id": session_id,
                        "enrolment_id": enrolment_id,
                        "day": day,
                        "method": "staff",
                        "host_org_path": path,
                        "course_category": category,
                        "person_key": p["key"],
                        "worker_category": p["worker"],
                        "recorded_by": "seed",
                    }
                )
                self.expected.attendance.append((path, day, p["key"], category, p["worker"]))
            if done and category in _CERTIFYING:
                serial = len(self.certificates) + 1
                revoked = serial % 25 == 0  # one in 25 revoked later (e.g. found ineligible)
                self.certificates.append(
                    {
                        "number": f"{self.county_code}{last.year}{serial:08d}",
                        "enrolment_id": enrolment_id,
                        "session_id": session_id,
                        "course_id": self.courses[category],
                        "course_category": category,
                        "host_org_path": path,
                        "person_key": p["key"],
                        "member_no": p["member_no"],
                        "worker_category": p["worker"],
                        "holder_name": p["name"],
                        "issued_on": last,
                        "status": "revoked" if revoked else "valid",
                        "revoked_at": datetime.now(UTC) if revoked else None,
                        "revoked_reason": "培训记录不实" if revoked else None,
                    }
                )
                self.expected.certificates.append(
                    (path, last, "revoked" if revoked else "valid", p["key"], category, p["worker"])
                )
        for kind, fen, day in (("planned", planned_fen, first), ("spent", spent_fen, last)):
            if fen:
                # Split in uneven parts, as real bills are: trainer, then meals, the rest materials.
                parts = [fen * 5 // 10, fen * 3 // 10]
                parts.append(fen - sum(parts))
                for category_, amount in zip(("trainer", "meals", "materials"), parts, strict=True):
                    self.budget.append(
                        {
                            "session_id": session_id,
                            "host_org_path": path,
                            "kind": kind,
                            "category": category_,
                            "amount_fen": amount,
                            "entry_date": day,
                            "recorded_by": "seed",
                        }
                    )
                self.expected.budget.append((path, day, kind, fen))

    def competition(self, host: dict[str, Any], starts: date, events: list[range]) -> None:
        competition_id = new_id()
        self.competitions.append(
            {
                "id": competition_id,
                "title": f"{starts.year}年职工职业技能大赛",
                "host_org_id": host["id"],
                "host_org_path": host["path"],
                "starts_on": starts,
                "ends_on": starts + timedelta(days=2),
                "status": "finished",
                "created_by": "seed",
            }
        )
        for n, people in enumerate(events):
            event_id = new_id()
            self.events.append(
                {"id": event_id, "competition_id": competition_id, "trade": f"工种{n + 1}"}
            )
            for j in people:
                p = self.person(j)
                self.entries.append(
                    {
                        "event_id": event_id,
                        "person_key": p["key"],
                        "member_no": p["member_no"],
                        "name": p["name"],
                        "worker_category": p["worker"],
                    }
                )
                self.expected.competition_entries.append((host["path"], starts, p["key"]))


async def seed_training_data(
    db: Database,
    tree: OrgTree,
    *,
    sessions: int = 31,
    person_times: int = 4805,
    people: int = 1240,
    noise: bool = True,
) -> Expected:
    """A county's training year (2026) whose figures are known in advance.

    `sessions` completed sessions hosted across the tree (county, townships,
    villages, in turn) hold exactly `person_times` attendance records in 2026
    among exactly `people` distinct people (each session's roster is a window
    on the people, so windows overlap and many attend several sessions). The
    first session straddles New Year: its 2025 days do not count. Sessions run
    1 to 3 days; where the days do not divide a session's share of person-times,
    the last person on the roster misses the last day(s). With `noise`, rows
    that must NOT count are added: sessions in 2025 and in another county (with
    people seen nowhere else), a cancelled session, two sessions not yet held,
    competitions outside the period or the county.
    """
    rows = _Rows(Expected(), tree.county["region_code"][:6])
    county = tree.county
    for category in _COURSE_CYCLE:
        rows.courses.setdefault(category, new_id())
    courses = [
        {
            "id": course_id,
            "owner_org_id": county["id"],
            "owner_org_path": county["path"],
            "title": f"{category}培训",
            "category": category,
            "skills": [],
            "target_groups": ["all"],
            "leads_to_certificate": category in _CERTIFYING,
            "hours": 8.0,
            "min_attendance_rate": 0.8,
            "created_by": "seed",
        }
        for category, course_id in rows.courses.items()
    ]
    hosts = tree.all
    step = max(people // sessions, 1)
    seen: set[int] = set()
    for i in range(sessions):
        quota = person_times // sessions + (1 if i < person_times % sessions else 0)
        days = 1 + i % 3
        if i == 0:
            # Straddles New Year: two days in 2025 (not counted), two in 2026.
            first, days, counted = date(REPORT_YEAR - 1, 12, 30), 4, 2
        else:
            first, counted = date(REPORT_YEAR, 1, 5) + timedelta(days=i * 340 // sessions), days
        roster = -(-quota // counted)  # ceil
        attendees = []
        for k in range(roster):
            j = (i * step + k) % people
            seen.add(j)
            # Everyone attends from the first day; the last of the roster leaves early.
            attendees.append((j, (days - counted) + min(counted, quota - k * counted)))
        rows.session(
            hosts[i % len(hosts)],
            _COURSE_CYCLE[i % len(_COURSE_CYCLE)],
            first,
            days,
            "completed",
            attendees,
            spent_fen=quota * 5619 + 7 * i,
            planned_fen=quota * 6000,
        )
    # Each roster is a window on the people, overlapping the next: together they cover all.
    assert len(seen) == people, f"{people} people need more person-times per session"
    if noise:
        outside = _org(None, "county_federation", "云县总工会", "530922000000")
        extra = people  # people never seen in 2026 in this county
        for n, first in enumerate((date(REPORT_YEAR - 1, 6, 1), date(REPORT_YEAR - 1, 11, 20))):
            rows.session(
                tree.townships[0] if tree.townships else county,
                _COURSE_CYCLE[n + 1],
                first,
                2,
                "completed",
                [(j, 2) for j in [*range(0, 20), *range(extra, extra + 10)]],
                spent_fen=300_000,
                planned_fen=320_000,
            )
        rows.session(
            outside,
            "welding_trades",
            date(REPORT_YEAR, 4, 1),
            3,
            "completed",
            [(j, 3) for j in [*range(0, 15), *range(extra + 10, extra + 20)]],
            spent_fen=450_000,
            planned_fen=500_000,
        )
        # Cancelled before it started: its planned money still counts, nothing else.
        rows.session(county, "safety", date(REPORT_YEAR, 5, 10), 1, "cancelled", [], 0, 80_000)
        for status, first in (
            ("open", date(REPORT_YEAR, 12, 20)),
            ("scheduled", date(REPORT_YEAR, 12, 27)),
        ):
            rows.session(hosts[-1], "ecommerce", first, 2, status, [], 0, 150_000)
        rows.competition(
            tree.townships[0] if tree.townships else county,
            date(REPORT_YEAR, 6, 1),
            [range(0, 40), range(20, 60)],
        )
        rows.competition(county, date(REPORT_YEAR - 1, 9, 1), [range(100, 130)])
        rows.competition(outside, date(REPORT_YEAR, 9, 1), [range(200, 230)])
    await insert_rows(
        db,
        (Course, courses),
        (TrainingSession, rows.sessions),
        (Enrolment, rows.enrolments),
        (Attendance, rows.attendance),
        (Certificate, rows.certificates),
        (BudgetEntry, rows.budget),
        (Competition, rows.competitions),
        (CompetitionEvent, rows.events),
        (CompetitionEntry, rows.entries),
    )
    return rows.expected


# ---------------------------------------------------------------- sessions run to completion

CLASS_FIRST_DAY = date(2026, 3, 2)


@dataclass
class Classroom:
    """Builds sessions through the courses, sessions, enrolment and attendance endpoints."""

    api: Api
    app: FastAPI

    async def events(self, event_type: str) -> list[dict[str, Any]]:
        """The envelopes of one type in the outbox, oldest first."""
        async with self.app.state.runtime.db.sessions() as session:
            rows = await session.execute(
                select(outbox.c.payload)
                .where(outbox.c.event_type == event_type)
                .order_by(outbox.c.position)
            )
            return [json.loads(payload) for (payload,) in rows]

    async def session(
        self,
        host: dict[str, Any],
        *,
        days: int = 5,
        capacity: int = 40,
        certificate: bool = True,
        min_attendance_rate: float | None = None,
        title: str = "电焊工职业技能培训",
        category: str = "welding_trades",
    ) -> dict[str, Any]:
        """An open session of a new course of `host`, `days` days from 2 March 2026."""
        fields: dict[str, Any] = {
            "leads_to_certificate": certificate,
            "title": title,
            "category": category,
        }
        if min_attendance_rate is not None:
            fields["min_attendance_rate"] = min_attendance_rate
        course = await self.api.course(host, **fields)
        last = CLASS_FIRST_DAY + timedelta(days=days - 1)
        ts = await self.api.schedule(
            course,
            host,
            starts_at=f"{CLASS_FIRST_DAY.isoformat()}T09:00:00+08:00",
            ends_at=f"{last.isoformat()}T17:00:00+08:00",
            capacity=capacity,
        )
        opened: dict[str, Any] = await self.api.ok("POST", f"/v1/sessions/{ts['id']}/open")
        return opened

    async def enrol(self, ts: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        enrolment: dict[str, Any] = await self.api.ok(
            "POST", f"/v1/sessions/{ts['id']}/enrolments", expect=201, json=body
        )
        return enrolment

    async def start(self, ts: dict[str, Any]) -> None:
        await self.api.ok("POST", f"/v1/sessions/{ts['id']}/start")

    async def attend(self, ts: dict[str, Any], enrolment: dict[str, Any], days: int) -> None:
        """Staff check the person in on the first `days` session days."""
        for d in range(days):
            await self.api.ok(
                "POST",
                f"/v1/sessions/{ts['id']}/attendance",
                expect=201,
                json={
                    "enrolment_id": enrolment["id"],
                    "day": (CLASS_FIRST_DAY + timedelta(days=d)).isoformat(),
                },
            )

    async def spend(self, ts: dict[str, Any], amount: str, kind: str = "spent") -> None:
        await self.api.ok(
            "POST",
            f"/v1/sessions/{ts['id']}/budget",
            expect=201,
            json={"kind": kind, "category": "trainer", "amount": amount},
        )

    async def complete(
        self, ts: dict[str, Any], as_: dict[str, str] | None = None
    ) -> dict[str, Any]:
        done: dict[str, Any] = await self.api.ok(
            "POST", f"/v1/sessions/{ts['id']}/complete", as_=as_
        )
        return done

    async def certified(
        self, host: dict[str, Any], people: list[dict[str, Any]], **session: Any
    ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
        """A session where everyone in `people` (enrolment bodies) attends every day."""
        ts = await self.session(host, days=2, **session)
        enrolments = [await self.enrol(ts, body) for body in people]
        await self.start(ts)
        for enrolment in enrolments:
            await self.attend(ts, enrolment, 2)
        return ts, enrolments, await self.complete(ts)
