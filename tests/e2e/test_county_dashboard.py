"""End to end across all four services: a county's year, and the gateway's dashboard of it.

A county federation with three townships in its administrative units (two with a union),
village unions with locations, members admitted through applications and approval (one
rejected, one who withdraws), cadres, a skills training over two days with absences, a
cadre training, a cancelled session and one announced for next month, certificates (one
revoked), money spent, stations of every type (some within 15 minutes' walk of a village,
some not, one suspended, one closed), visits and subsidies. Everything goes over HTTP
through the gateway, as accounts signed in there; the services learn from each other and
the gateway builds its dashboards only from events on NATS.

The scenario is data (`fengqing`); the figures the dashboard must show are computed from
that data alone, in plain Python (`expected_figures`), never by asking a service. Then the
same figures after a rebuild from the stream, with membership stopped, and the gateway's
tokens and API keys; and the time from an approval to the dashboard, measured.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import signal
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from gonghui_shared.auth import Principal, TokenIssuer
from gonghui_shared.clock import CHINA
from gonghui_shared.permissions import Role
from gonghui_shared.runtime import load_jwt_private_key
from gonghui_shared.settings import ServiceSettings
from gonghui_shared.testing import auth_header
from gonghui_shared.testing.processes import Platform
from membership.testing import valid_id_number, valid_phone

# ============================================================================ the scenario


@dataclass(frozen=True)
class Unit:
    """A row of the county's statistical division code list (行政区划)."""

    code: str
    name: str


@dataclass(frozen=True)
class Org:
    key: str
    parent: str | None
    org_type: str
    name: str
    region_code: str
    lon: float | None = None  # WGS-84
    lat: float | None = None


@dataclass(frozen=True)
class Person:
    """A worker who applies to join at `org`; approved unless `rejected`."""

    key: str
    org: str
    category: str
    subtype: str | None = None
    rejected: bool = False
    withdraws: bool = False  # leaves after approval (退会)


@dataclass(frozen=True)
class NonMember:
    """Someone of the rural labour force trained without being a member."""

    key: str
    name: str
    serial: int


@dataclass(frozen=True)
class Cadre:
    person: str
    org: str
    role: str


@dataclass(frozen=True)
class Course:
    key: str
    title: str
    category: str
    leads_to_certificate: bool
    min_attendance_rate: float


@dataclass(frozen=True)
class Session:
    key: str
    course: str
    host: str
    days: tuple[date, ...]
    enrolled: tuple[str, ...] = ()  # person or non-member keys
    attended: tuple[tuple[str, ...], ...] = ()  # per day, who checked in
    spent: tuple[tuple[str, Decimal], ...] = ()  # (budget category, yuan)
    planned: tuple[tuple[str, Decimal], ...] = ()  # planned entries: never "spent"
    outcome: str = "completed"  # or "cancelled", or "scheduled" (announced, not held yet)


@dataclass(frozen=True)
class Station:
    key: str
    station_type: str
    name: str
    host: str
    lon: float  # WGS-84
    lat: float
    status: str = "active"  # where it ends up: active, suspended or closed


@dataclass(frozen=True)
class Visit:
    station: str
    services: tuple[str, ...]
    person: str | None = None  # shows their member card; None: anonymous


@dataclass(frozen=True)
class Subsidy:
    station: str
    period: str  # YYYY-MM
    amount: Decimal | None  # None: the station's default (100 yuan for a village point)
    paid: bool


@dataclass(frozen=True)
class Scenario:
    units: tuple[Unit, ...]
    orgs: tuple[Org, ...]
    persons: tuple[Person, ...]
    non_members: tuple[NonMember, ...]
    cadres: tuple[Cadre, ...]
    courses: tuple[Course, ...]
    sessions: tuple[Session, ...]
    revoked: tuple[tuple[str, str], ...]  # (session, person) whose certificate is revoked
    stations: tuple[Station, ...]
    visits: tuple[Visit, ...]
    subsidies: tuple[Subsidy, ...]

    def org(self, key: str) -> Org:
        return next(o for o in self.orgs if o.key == key)


WALK_MINUTES = 15.0
WALK_KMH = 4.5
RADIUS_M = WALK_MINUTES / 60 * WALK_KMH * 1000  # 1,125 m
EARTH_RADIUS_M = 6371008.8
VILLAGE_POINT_SUBSIDY = Decimal("100.00")


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def fengqing(today: date) -> Scenario:
    """凤庆县: 3 townships in the code list, 2 with a union; 7 villages, 5 with a union."""
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=10)
    next_month = (today.replace(day=28) + timedelta(days=10)).replace(day=5)
    skills_days = (last_month, last_month + timedelta(days=1))
    jzl_lon, jzl_lat = 99.9200, 24.5800  # 京竹林村
    dc_lon, dc_lat = 99.9350, 24.5900  # 东城社区
    jj_lon, jj_lat = 99.8500, 24.8300  # 金鸡村
    xn_lon, xn_lat = 99.8700, 24.8450  # 犀牛村
    return Scenario(
        units=(
            Unit("530921000000", "凤庆县"),
            Unit("530921101000", "凤山镇"),
            Unit("530921101201", "京竹林村"),
            Unit("530921101202", "东城社区"),
            Unit("530921101203", "安石村"),
            Unit("530921101204", "红塘村"),
            Unit("530921102000", "鲁史镇"),
            Unit("530921102201", "金鸡村"),
            Unit("530921102202", "犀牛村"),
            Unit("530921103000", "小湾镇"),
            Unit("530921103201", "新华村"),
        ),
        orgs=(
            Org("county", None, "county_federation", "凤庆县总工会", "530921000000"),
            Org("fengshan", "county", "township_union", "凤山镇工会", "530921101000"),
            Org("lushi", "county", "township_union", "鲁史镇工会", "530921102000"),
            Org(
                "jzl",
                "fengshan",
                "village_union",
                "京竹林村工会委员会",
                "530921101201",
                jzl_lon,
                jzl_lat,
            ),
            Org(
                "dc",
                "fengshan",
                "village_union",
                "东城社区工会委员会",
                "530921101202",
                dc_lon,
                dc_lat,
            ),
            Org(
                "as", "fengshan", "village_union", "安石村工会委员会", "530921101203"
            ),  # no location
            Org("jj", "lushi", "village_union", "金鸡村工会委员会", "530921102201", jj_lon, jj_lat),
            Org("xn", "lushi", "village_union", "犀牛村工会委员会", "530921102202", xn_lon, xn_lat),
        ),
        persons=(
            Person("p1", "jzl", "migrant_worker"),
            Person("p2", "jzl", "migrant_worker"),
            Person("p3", "jzl", "new_employment", "rider"),
            Person("p4", "jzl", "employee"),
            Person("p5", "dc", "migrant_worker"),
            Person("p6", "dc", "new_employment", "courier"),
            Person("p7", "dc", "other", rejected=True),
            Person("p8", "as", "migrant_worker", withdraws=True),
            Person("p9", "fengshan", "employee"),
            Person("p10", "jj", "migrant_worker"),
            Person("p11", "jj", "new_employment", "rider"),
            Person("p12", "jj", "migrant_worker", rejected=True),
            Person("p13", "xn", "migrant_worker"),
            Person("p14", "xn", "employee"),
            Person("p15", "lushi", "other"),
        ),
        non_members=(NonMember("n1", "杨春花", 9001),),
        cadres=(
            Cadre("p9", "fengshan", "chair"),
            Cadre("p1", "jzl", "chair"),
            Cadre("p1", "fengshan", "funds_auditor"),  # two posts, one cadre
            Cadre("p13", "xn", "committee_member"),
        ),
        courses=(
            Course("welding", "电焊工（初级）", "welding_trades", True, 0.8),
            Course("cadre", "工会干部业务知识培训", "cadre_training", False, 1.0),
            Course("ecommerce", "电子商务直播带货", "ecommerce", False, 0.8),
            Course("safety", "安全生产与职业健康", "safety", False, 0.8),
        ),
        sessions=(
            Session(
                "welding-fs",
                "welding",
                "fengshan",
                skills_days,
                enrolled=("p1", "p2", "p3", "p5", "p10", "n1"),
                attended=(("p1", "p2", "p3", "p5", "n1"), ("p1", "p2", "p5", "p10", "n1")),
                spent=(("trainer", Decimal("3600.00")), ("venue", Decimal("820.50"))),
                planned=(("materials", Decimal("500.00")),),
            ),
            Session(
                "cadre-county",
                "cadre",
                "county",
                (last_month + timedelta(days=2),),
                enrolled=("p9", "p13", "p2"),
                attended=(("p9", "p2"),),
                spent=(("meals", Decimal("600.00")),),
            ),
            Session("ecommerce-ls", "ecommerce", "lushi", (next_month,), outcome="cancelled"),
            # Announced for next month, open for enrolment, not held yet.
            Session(
                "safety-ls",
                "safety",
                "lushi",
                (next_month + timedelta(days=7), next_month + timedelta(days=8)),
                enrolled=("p10", "p11", "p14"),
                outcome="scheduled",
            ),
        ),
        revoked=(("welding-fs", "p2"),),
        stations=(
            # ~300 m east of 京竹林: covers it.
            Station(
                "s1",
                "outdoor_worker_station",
                "凤山镇爱心驿站",
                "fengshan",
                jzl_lon + 0.003,
                jzl_lat,
            ),
            # ~500 m north of 犀牛: covers it.
            Station(
                "s2", "village_service_point", "犀牛村邮乐购服务点", "xn", xn_lon, xn_lat + 0.0045
            ),
            # ~700 m south of 金鸡, run by the county: covers it all the same.
            Station("s3", "worker_home", "县职工之家", "county", jj_lon, jj_lat - 0.0063),
            # ~400 m and ~200 m from 东城, but closed and suspended: 东城 is not covered.
            Station(
                "s4",
                "village_service_point",
                "东城社区服务点",
                "dc",
                dc_lon,
                dc_lat - 0.0036,
                "closed",
            ),
            Station(
                "s5",
                "liaison_station",
                "鲁史镇联络站",
                "lushi",
                dc_lon + 0.002,
                dc_lat,
                "suspended",
            ),
        ),
        visits=(
            Visit("s1", ("drinking_water", "phone_charging"), "p1"),
            Visit("s1", ("rest",)),
            Visit("s1", ("drinking_water",), "p2"),
            Visit("s2", ("drinking_water", "heating_food", "rest")),
            Visit("s2", ("reading",), "p13"),
            Visit("s3", ("legal_consult",)),
        ),
        subsidies=(
            Subsidy("s2", month_of(last_month), None, paid=True),
            Subsidy("s2", month_of(today), None, paid=False),
            Subsidy("s1", month_of(last_month), Decimal("250.50"), paid=True),
        ),
    )


# ============================================================ expected figures, from the data


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance on the mean-radius sphere."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def fen(yuan: Decimal) -> int:
    return int(yuan * 100)


def yuan(fen: int) -> str:
    return f"{Decimal(fen).scaleb(-2):.2f}"


def unit_level(code: str) -> str:
    if code[6:] == "000000":
        return "county"
    return "township" if code[9:] == "000" else "village"


UNION_OF_LEVEL = {"township": "township_union", "village": "village_union"}
CATEGORIES = ("migrant_worker", "new_employment", "employee", "other")
STATION_TYPES = (
    "outdoor_worker_station",
    "worker_home",
    "village_service_point",
    "liaison_station",
    "other",
)


def expected_figures(sc: Scenario, root: str, approved_month: str) -> dict[str, Any]:
    """The dashboard figures of `root`'s subtree, unbounded period, from the inputs alone."""

    def within(org_key: str) -> bool:
        key: str | None = org_key
        while key is not None:
            if key == root:
                return True
            key = sc.org(key).parent
        return False

    # -- units: coverage of the administrative units of the root's region
    region = sc.org(root).region_code
    level = unit_level(region)
    prefix = {"county": region[:6], "township": region[:9]}.get(level, region)
    below = {"county": ["township", "village"], "township": ["village"]}.get(level, [])

    def covered(unit: Unit) -> bool:
        kind = UNION_OF_LEVEL[unit_level(unit.code)]
        return any(o.region_code == unit.code and o.org_type == kind for o in sc.orgs)

    def level_figures(lvl: str, units: list[Unit]) -> dict[str, Any]:
        done = sum(covered(u) for u in units)
        return {"level": lvl, "total": len(units), "covered": done, "rate": rate(done, len(units))}

    inside = [u for u in sc.units if u.code.startswith(prefix) and u.code != region]
    levels = [level_figures(lvl, [u for u in inside if unit_level(u.code) == lvl]) for lvl in below]
    nothing_below = {"level": None, "total": 0, "covered": 0, "rate": None}
    units = {
        "region_code": region,
        "direct": levels[0] if levels else nothing_below,
        "levels": levels,
    }

    # -- members
    approved = [p for p in sc.persons if not p.rejected and within(p.org)]
    active = [p for p in approved if not p.withdraws]
    by_category = {c: sum(p.category == c for p in active) for c in CATEGORIES}
    members = {
        "active": len(active),
        "by_category": by_category,
        "by_status": dict(Counter("withdrawn" if p.withdraws else "active" for p in approved)),
        "migrant_workers": by_category["migrant_worker"],
        "new_employment": by_category["new_employment"],
        "new_members": len(approved),
        "new_members_per_month": {approved_month: len(approved)} if approved else {},
    }

    # -- cadres and cadre-training coverage
    courses = {c.key: c for c in sc.courses}
    cadre_people = {c.person for c in sc.cadres if within(c.org)}
    cadre_trained = {
        who
        for s in sc.sessions
        if courses[s.course].category == "cadre_training" and s.outcome == "completed"
        for day in s.attended
        for who in day
    }
    trained = len(cadre_people & cadre_trained)
    cadres = {
        "cadres": len(cadre_people),
        "trained": trained,
        "rate": rate(trained, len(cadre_people)),
    }

    # -- training: sessions hosted in the subtree
    hosted = [s for s in sc.sessions if within(s.host)]
    completed = [s for s in hosted if s.outcome == "completed"]
    records = [
        (s.key, i, who) for s in completed for i, day in enumerate(s.attended) for who in day
    ]
    certified = [
        (s.key, who)
        for s in completed
        if courses[s.course].leads_to_certificate
        for who in s.enrolled
        if sum(who in day for day in s.attended) / len(s.days)
        >= courses[s.course].min_attendance_rate
    ]
    revoked = [c for c in certified if c in sc.revoked]
    spent = sum(fen(amount) for s in completed for _, amount in s.spent)
    training = {
        # The three never count a session twice: announced and not (yet) held or called off.
        "sessions_scheduled": sum(s.outcome == "scheduled" for s in hosted),
        "sessions_completed": len(completed),
        "sessions_cancelled": sum(s.outcome == "cancelled" for s in hosted),
        "person_times": len(records),
        "unique_persons": len({who for _, _, who in records}),
        "certificates_issued": len(certified),
        "certificates_revoked": len(revoked),
        "certificates": len(certified) - len(revoked),
        "budget_spent_fen": spent,
        "budget_spent": yuan(spent),
    }

    # -- stations, the 15-minute circle, visits, subsidies
    ours = [s for s in sc.stations if within(s.host)]
    open_anywhere = [s for s in sc.stations if s.status == "active"]
    villages = [o for o in sc.orgs if o.org_type == "village_union" and within(o.key)]
    located = [(v, v.lon, v.lat) for v in villages if v.lon is not None and v.lat is not None]
    circled = [
        v
        for v, lon, lat in located
        if any(distance_m(lon, lat, s.lon, s.lat) <= RADIUS_M for s in open_anywhere)
    ]
    here = {s.key for s in ours}
    visits = [v for v in sc.visits if v.station in here]
    paid = sum(
        fen(s.amount if s.amount is not None else VILLAGE_POINT_SUBSIDY)
        for s in sc.subsidies
        if s.paid and s.station in here
    )
    stations = {
        "total": len(ours),
        "active": sum(s.status == "active" for s in ours),
        "by_type": {t: sum(s.station_type == t for s in ours) for t in STATION_TYPES},
        "by_status": dict(Counter(s.status for s in ours)),
        "circle": {
            "minutes": WALK_MINUTES,
            "walking_speed_kmh": WALK_KMH,
            "radius_m": RADIUS_M,
            "units_total": len(villages),
            "units_located": len(located),
            "covered": len(circled),
            "rate": rate(len(circled), len(located)),
        },
        "visits": len(visits),
        "services_used": sum(len(v.services) for v in visits),
        "services_by_kind": dict(Counter(kind for v in visits for kind in v.services)),
        "subsidies_paid_fen": paid,
        "subsidies_paid": yuan(paid),
    }
    return {
        "units": units,
        "members": members,
        "cadres": cadres,
        "training": training,
        "stations": stations,
    }


def project(figures: dict[str, Any]) -> dict[str, Any]:
    """The gateway's figures in the shape of `expected_figures` (lists of counts as dicts)."""

    def counts(items: list[dict[str, Any]], zeros: bool = False) -> dict[str, int]:
        return {c["key"]: c["count"] for c in items if zeros or c["count"]}

    u, m, c, t, s = (figures[k] for k in ("units", "members", "cadres", "training", "stations"))
    circle = s["circle"]
    return {
        "units": {"region_code": u["region_code"], "direct": u["direct"], "levels": u["levels"]},
        "members": {
            "active": m["active"],
            "by_category": counts(m["by_category"], zeros=True),
            "by_status": counts(m["by_status"]),
            "migrant_workers": m["migrant_workers"],
            "new_employment": m["new_employment"],
            "new_members": m["new_members"],
            "new_members_per_month": {
                x["month"]: x["count"] for x in m["new_members_per_month"] if x["count"]
            },
        },
        "cadres": {"cadres": c["cadres"], "trained": c["trained"], "rate": c["rate"]},
        "training": {
            key: t[key]
            for key in (
                "sessions_scheduled",
                "sessions_completed",
                "sessions_cancelled",
                "person_times",
                "unique_persons",
                "certificates_issued",
                "certificates_revoked",
                "certificates",
                "budget_spent_fen",
                "budget_spent",
            )
        },
        "stations": {
            "total": s["total"],
            "active": s["active"],
            "by_type": counts(s["by_type"], zeros=True),
            "by_status": counts(s["by_status"]),
            "circle": {
                key: circle[key]
                for key in (
                    "minutes",
                    "walking_speed_kmh",
                    "radius_m",
                    "units_total",
                    "units_located",
                    "covered",
                    "rate",
                )
            },
            "visits": s["visits"],
            "services_used": s["services_used"],
            "services_by_kind": counts(s["services_by_kind"]),
            "subsidies_paid_fen": s["subsidies_paid_fen"],
            "subsidies_paid": s["subsidies_paid"],
        },
    }


def expected_month(sc: Scenario, root: str, month: str, played: str) -> dict[str, Any]:
    """The figures of one month (`from` = `to` = `month`) that have a documented month:
    members as at its end, and what happened in it. Approvals, the withdrawal, completions
    (so certificates), revocations and visits all happened in `played`, the month the
    scenario was played; attendance on its days; subsidies for their periods."""
    now = month == played

    def within(org_key: str) -> bool:
        key: str | None = org_key
        while key is not None and key != root:
            key = sc.org(key).parent
        return key == root

    approved = [p for p in sc.persons if not p.rejected and within(p.org)]
    courses = {c.key: c for c in sc.courses}
    completed = [s for s in sc.sessions if within(s.host) and s.outcome == "completed"]
    records = [
        who
        for s in completed
        for day, present in zip(s.days, s.attended, strict=True)
        if month_of(day) == month
        for who in present
    ]
    ended = [s for s in completed if month_of(s.days[-1]) == month]
    certified = [
        (s.key, who)
        for s in completed
        if courses[s.course].leads_to_certificate
        for who in s.enrolled
        if sum(who in day for day in s.attended) / len(s.days)
        >= courses[s.course].min_attendance_rate
    ]
    here = {s.key for s in sc.stations if within(s.host)}
    visits = [v for v in sc.visits if v.station in here] if now else []
    paid = sum(
        fen(x.amount if x.amount is not None else VILLAGE_POINT_SUBSIDY)
        for x in sc.subsidies
        if x.paid and x.station in here and x.period == month
    )
    return {
        "members.active": sum(not p.withdraws for p in approved) if month >= played else 0,
        "members.new_members": len(approved) if now else 0,
        "training.person_times": len(records),
        "training.unique_persons": len(set(records)),
        "training.sessions_completed": len(ended),
        "training.budget_spent_fen": sum(fen(a) for s in ended for _, a in s.spent),
        "training.certificates_issued": len(certified) if now else 0,
        "training.certificates_revoked": len([c for c in certified if c in sc.revoked])
        if now
        else 0,
        "stations.visits": len(visits),
        "stations.services_used": sum(len(v.services) for v in visits),
        "stations.subsidies_paid_fen": paid,
    }


def pick(figures: dict[str, Any], keys: Any) -> dict[str, Any]:
    """`figures` at dotted keys ("members.active")."""
    return {key: figures[key.split(".")[0]][key.split(".")[1]] for key in keys}


def differences(actual: Any, expected: Any, path: str = "") -> list[str]:
    """Where two figure trees differ, leaf by leaf: `path: actual != expected`."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        return [
            line
            for key in sorted(set(actual) | set(expected), key=str)
            for line in differences(actual.get(key), expected.get(key), f"{path}.{key}")
        ]
    return [] if actual == expected else [f"{path}: {actual!r} != {expected!r} (expected)"]


def assert_figures(actual: dict[str, Any], expected: dict[str, Any], what: str = "") -> None:
    found = differences(project(actual), expected)
    assert not found, f"{what} figures differ:\n" + "\n".join(found)


def test_the_scenario_is_unambiguous() -> None:
    """No village lies near the circle's edge, so rounding cannot decide coverage; the
    figures are not trivial (partial coverage, absences, revocation, every status)."""
    sc = fengqing(date(2026, 11, 27))
    for org in sc.orgs:
        if org.lon is None or org.lat is None:
            continue
        for station in sc.stations:
            d = distance_m(org.lon, org.lat, station.lon, station.lat)
            assert abs(d - RADIUS_M) > 0.1 * RADIUS_M, (org.key, station.key, d)
    county = expected_figures(sc, "county", "2026-11")
    assert county["units"]["levels"][1] == {
        "level": "village",
        "total": 7,
        "covered": 5,
        "rate": 0.7143,
    }
    assert county["members"]["active"] == 12 and county["members"]["by_status"]["withdrawn"] == 1
    assert county["cadres"] == {"cadres": 3, "trained": 1, "rate": 0.3333}
    scheduled = ("sessions_scheduled", "sessions_completed", "sessions_cancelled")
    assert [county["training"][k] for k in scheduled] == [1, 2, 1]
    assert county["training"]["person_times"] == 12 and county["training"]["unique_persons"] == 7
    assert county["training"]["certificates"] == 3
    assert county["stations"]["circle"]["covered"] == 3
    assert county["stations"]["circle"]["units_located"] == 4
    # The county is more than the sum of its townships: it hosts a session and a station.
    townships = [expected_figures(sc, t, "2026-11") for t in ("fengshan", "lushi")]
    assert sum(t["stations"]["total"] for t in townships) == county["stations"]["total"] - 1
    assert sum(t["training"]["person_times"] for t in townships) == 10
    # Last month the training; this month the rest.
    assert expected_month(sc, "county", "2026-10", "2026-11") == {
        "members.active": 0,
        "members.new_members": 0,
        "training.person_times": 12,
        "training.unique_persons": 7,
        "training.sessions_completed": 2,
        "training.budget_spent_fen": 502050,
        "training.certificates_issued": 0,
        "training.certificates_revoked": 0,
        "stations.visits": 0,
        "stations.services_used": 0,
        "stations.subsidies_paid_fen": 35050,
    }
    assert expected_month(sc, "lushi", "2026-11", "2026-11") == {
        "members.active": 5,
        "members.new_members": 5,
        "training.person_times": 0,
        "training.unique_persons": 0,
        "training.sessions_completed": 0,
        "training.budget_spent_fen": 0,
        "training.certificates_issued": 0,
        "training.certificates_revoked": 0,
        "stations.visits": 2,
        "stations.services_used": 4,
        "stations.subsidies_paid_fen": 0,
    }


# ======================================================================== driving the API


class Api:
    """Calls the services, through the gateway (`/v1/<service>/…`) or straight to them."""

    def __init__(self, client: httpx.AsyncClient, platform: Platform, via_gateway: bool) -> None:
        self.client = client
        self.platform = platform
        self.via_gateway = via_gateway

    def url(self, service: str, path: str) -> str:
        if self.via_gateway:
            return f"{self.platform.services['gateway'].base}/v1/{service}{path}"
        return f"{self.platform.services[service].base}/v1{path}"

    @property
    def gateway(self) -> str:
        return self.platform.services["gateway"].base

    async def sign_in(self, username: str, password: str) -> dict[str, Any]:
        """The gateway's OAuth2 password grant: an access and a refresh token."""
        response = await self.client.post(
            f"{self.gateway}/v1/auth/token",
            data={"grant_type": "password", "username": username, "password": password},
        )
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    async def person(
        self, creator: dict[str, str], role: Role, org: dict[str, Any] | None, username: str
    ) -> dict[str, str]:
        """A staff account made at the gateway by `creator`, signed in: its bearer header."""
        password = f"{username}-pass-2026"
        response = await self.client.post(
            f"{self.gateway}/v1/accounts",
            headers=creator,
            json={
                "username": username,
                "password": password,
                "role": role.value,
                "org_id": org["id"] if org else None,
            },
        )
        assert response.status_code == 201, response.text
        return auth_header((await self.sign_in(username, password))["access_token"])

    async def admin(self) -> dict[str, str]:
        """The first account (`gonghui-gateway create-admin`), signed in."""
        password = self.platform.services["gateway"].env["GONGHUI_ADMIN_PASSWORD"]
        return auth_header((await self.sign_in("admin", password))["access_token"])

    async def call(
        self, service: str, method: str, path: str, headers: dict[str, str], **kw: Any
    ) -> httpx.Response:
        return await self.client.request(method, self.url(service, path), headers=headers, **kw)

    async def ok(
        self,
        service: str,
        method: str,
        path: str,
        headers: dict[str, str],
        expect: int = 200,
        **kw: Any,
    ) -> Any:
        response = await self.call(service, method, path, headers, **kw)
        assert response.status_code == expect, f"{method} {path}: {response.text}"
        return response.json() if response.content else None

    async def eventually(
        self,
        service: str,
        method: str,
        path: str,
        headers: dict[str, str],
        expect: int = 201,
        timeout: float = 15.0,
        **kw: Any,
    ) -> Any:
        """Retry while a replica catches up (the org or member is not known there yet)."""
        deadline = time.monotonic() + timeout
        while True:
            response = await self.call(service, method, path, headers, **kw)
            if response.status_code == expect:
                return response.json()
            assert response.status_code < 500, f"{method} {path}: {response.text}"
            assert time.monotonic() < deadline, f"{method} {path}: {response.text}"
            await asyncio.sleep(0.1)


@dataclass
class World:
    """What the scenario created: ids by the scenario's keys."""

    scenario: Scenario
    orgs: dict[str, dict[str, Any]] = field(default_factory=dict)
    member_nos: dict[str, str] = field(default_factory=dict)
    cards: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)
    stations: dict[str, str] = field(default_factory=dict)
    approved_month: str = ""
    # Bearer headers of accounts signed in at the gateway: "admin" (platform), "county"
    # (the county admin), and each org's chair by org key.
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def expected(self, root: str) -> dict[str, Any]:
        return expected_figures(self.scenario, root, self.approved_month)


def units_csv(units: tuple[Unit, ...]) -> bytes:
    rows = ["统计用区划代码,城乡分类代码,名称"]
    rows += [f"{u.code},{'220' if unit_level(u.code) == 'village' else ''},{u.name}" for u in units]
    return ("\n".join(rows) + "\n").encode()


async def enact(api: Api, sc: Scenario) -> World:
    """Play the scenario over HTTP; returns what was created."""
    world = World(sc)
    platform_admin = world.headers["admin"] = await api.admin()

    # -- membership: the org tree, the code list, admissions, cadres
    for org in sc.orgs:
        body: dict[str, Any] = {
            "org_type": org.org_type,
            "name": org.name,
            "region_code": org.region_code,
            "lon": org.lon,
            "lat": org.lat,
        }
        if org.parent:
            body["parent_id"] = world.orgs[org.parent]["id"]
        world.orgs[org.key] = await api.ok(
            "membership", "POST", "/orgs", platform_admin, 201, json=body
        )
    county = world.orgs["county"]
    admin = world.headers["county"] = await api.person(
        platform_admin, Role.county_admin, county, f"fq_admin_{secrets.token_hex(3)}"
    )
    for org in sc.orgs:
        if org.parent:
            world.headers[org.key] = await api.person(
                admin, Role.org_chair, world.orgs[org.key], f"fq_{org.key}_{secrets.token_hex(3)}"
            )
    imported = await api.ok(
        "membership",
        "POST",
        "/units/import",
        admin,
        files={"file": ("530921.csv", units_csv(sc.units), "text/csv")},
    )
    assert imported["created"] == len(sc.units)

    rosters: dict[str, str] = {}
    applications: dict[str, str] = {}
    for n, person in enumerate(sc.persons, start=1):
        union = world.orgs[person.org]
        chair = world.headers[person.org]
        if person.org not in rosters:
            roster = await api.ok(
                "membership",
                "POST",
                "/rosters",
                chair,
                201,
                json={"org_id": union["id"], "title": "2026年入会名册"},
            )
            rosters[person.org] = roster["id"]
        application = await api.ok(
            "membership",
            "POST",
            "/applications",
            chair,
            201,
            json={
                "org_id": union["id"],
                "roster_id": rosters[person.org],
                "name": f"会员{person.key}",
                "id_number": valid_id_number(5000 + n),
                "phone": valid_phone(5000 + n),
                "household_type": "rural",
                "category": person.category,
                "subtype": person.subtype,
                "employer": "凤庆县滇红茶厂",
                "form_ref": f"RH-2026-{5000 + n}",
            },
        )
        applications[person.key] = application["id"]
    for person in sc.persons:
        if person.rejected:
            await api.ok(
                "membership",
                "POST",
                f"/applications/{applications[person.key]}/reject",
                admin,
                json={"reason": "申请书未由本人签字"},
            )
            continue
        approved = await api.ok(
            "membership",
            "POST",
            f"/applications/{applications[person.key]}/approve",
            admin,
            json={"approval_doc_no": "凤工复〔2026〕12号"},
        )
        world.member_nos[person.key] = approved["member"]["member_no"]
        world.cards[person.key] = approved["card"]["token"]
    world.approved_month = month_of(datetime.now(CHINA).date())
    for person in sc.persons:
        if person.withdraws:
            await api.ok(
                "membership",
                "POST",
                f"/members/{world.member_nos[person.key]}/withdraw",
                admin,
                json={"reason": "本人申请退会"},
            )
    for cadre in sc.cadres:
        await api.ok(
            "membership",
            "POST",
            f"/orgs/{world.orgs[cadre.org]['id']}/cadres",
            admin,
            201,
            json={
                "member_no": world.member_nos[cadre.person],
                "role": cadre.role,
                "appointed_on": "2026-01-05",
            },
        )

    # -- training: courses, sessions, enrolment, attendance, money, completion
    courses: dict[str, str] = {}
    for course in sc.courses:
        created = await api.eventually(  # training learns the county from membership's events
            "training",
            "POST",
            "/courses",
            admin,
            json={
                "owner_org_id": county["id"],
                "title": course.title,
                "category": course.category,
                "leads_to_certificate": course.leads_to_certificate,
                "min_attendance_rate": course.min_attendance_rate,
                "hours": 16,
            },
        )
        courses[course.key] = created["id"]
    non_members = {n.key: n for n in sc.non_members}
    for s in sc.sessions:
        host = world.orgs[s.host]
        starts = datetime.combine(s.days[0], datetime.min.time(), CHINA) + timedelta(hours=9)
        ends = datetime.combine(s.days[-1], datetime.min.time(), CHINA) + timedelta(hours=17)
        created = await api.eventually(
            "training",
            "POST",
            "/sessions",
            admin,
            json={
                "course_id": courses[s.course],
                "host_org_id": host["id"],
                "starts_at": starts.isoformat(),
                "ends_at": ends.isoformat(),
                "place": f"{host['name']}职工之家",
                "delivery_mode": "on_site",
                "capacity": 20,
                "planned_budget": "6000.00",
            },
        )
        sid = world.sessions[s.key] = created["id"]
        if s.outcome == "cancelled":
            await api.ok(
                "training",
                "POST",
                f"/sessions/{sid}/cancel",
                admin,
                json={"reason": "暴雨预警，停课"},
            )
            continue
        await api.ok("training", "POST", f"/sessions/{sid}/open", admin, json={})
        enrolments: dict[str, str] = {}
        for who in s.enrolled:
            if who in non_members:
                nm = non_members[who]
                body = {
                    "name": nm.name,
                    "id_number": valid_id_number(nm.serial, male=False),
                    "phone": valid_phone(nm.serial),
                }
            else:
                body = {"member_no": world.member_nos[who]}
            enrolment = await api.eventually(  # training learns members from membership's events
                "training", "POST", f"/sessions/{sid}/enrolments", admin, json=body
            )
            assert enrolment["status"] == "enrolled"
            enrolments[who] = enrolment["id"]
        if s.outcome == "scheduled":
            continue
        await api.ok("training", "POST", f"/sessions/{sid}/start", admin, json={})
        for day, present in zip(s.days, s.attended, strict=True):
            for who in present:
                await api.ok(
                    "training",
                    "POST",
                    f"/sessions/{sid}/attendance",
                    admin,
                    201,
                    json={"enrolment_id": enrolments[who], "day": day.isoformat()},
                )
        for kind, entries in (("spent", s.spent), ("planned", s.planned)):
            for category, amount in entries:
                await api.ok(
                    "training",
                    "POST",
                    f"/sessions/{sid}/budget",
                    admin,
                    201,
                    json={
                        "kind": kind,
                        "category": category,
                        "amount": str(amount),
                        "entry_date": s.days[-1].isoformat(),
                    },
                )
        await api.ok("training", "POST", f"/sessions/{sid}/complete", admin, json={})
    for session_key, holder in sc.revoked:
        listed = await api.ok(
            "training",
            "GET",
            "/certificates",
            admin,
            params={
                "session_id": world.sessions[session_key],
                "member_no": world.member_nos[holder],
            },
        )
        [certificate] = listed["items"]
        await api.ok(
            "training",
            "POST",
            f"/certificates/{certificate['number']}/revoke",
            admin,
            json={"reason": "签到记录经核查系代签"},
        )

    # -- stations: opened, visited, suspended or closed, subsidised
    for station in sc.stations:
        created = await api.eventually(  # stations learns the orgs from membership's events
            "stations",
            "POST",
            "/stations",
            admin,
            json={
                "station_type": station.station_type,
                "name": station.name,
                "host_org_id": world.orgs[station.host]["id"],
                "lon": station.lon,
                "lat": station.lat,
                "crs": "wgs84",
                "amenities": ["drinking_water", "phone_charging"],
            },
        )
        world.stations[station.key] = created["id"]
    for visit in sc.visits:
        body = {"services": list(visit.services)}
        if visit.person:
            body["member_card"] = world.cards[visit.person]
        await api.eventually(
            "stations",
            "POST",
            f"/stations/{world.stations[visit.station]}/visits",
            admin,
            json=body,
        )
    for station in sc.stations:
        if station.status == "suspended":
            await api.ok(
                "stations",
                "POST",
                f"/stations/{world.stations[station.key]}/suspend",
                admin,
                json={"reason": "装修，暂停服务"},
            )
        elif station.status == "closed":
            await api.ok(
                "stations",
                "POST",
                f"/stations/{world.stations[station.key]}/close",
                admin,
                json={"reason": "合并到镇服务站"},
            )
    for subsidy in sc.subsidies:
        body = {"period": subsidy.period}
        if subsidy.amount is not None:
            body["amount"] = str(subsidy.amount)
        line = await api.ok(
            "stations",
            "POST",
            f"/stations/{world.stations[subsidy.station]}/subsidies",
            admin,
            201,
            json=body,
        )
        if subsidy.paid:
            await api.ok("stations", "POST", f"/subsidies/{line['id']}/pay", admin, json={})
    return world


# ================================================================================ the tests

GATEWAY_CLI = Path(sys.executable).parent / "gonghui-gateway"


@pytest.fixture(scope="module")
async def world(full_platform: Platform) -> World:
    """The scenario, played once per backend over HTTP."""
    async with httpx.AsyncClient(timeout=15) as client:
        api = Api(client, full_platform, via_gateway=True)
        return await enact(api, fengqing(datetime.now(CHINA).date()))


async def test_the_services_own_reports_agree_with_the_inputs(
    full_platform: Platform, world: World
) -> None:
    """Membership's coverage, training's report and stations' circle and ledger say what the
    expected figures say: the expectations are right about the services' rules."""
    async with httpx.AsyncClient(timeout=15) as client:
        api = Api(client, full_platform, via_gateway=False)
        admin = world.headers["county"]
        today = datetime.now(CHINA).date()
        for key in ("county", "fengshan", "lushi"):
            org_id = world.orgs[key]["id"]
            want = world.expected(key)
            coverage = await api.ok("membership", "GET", f"/orgs/{org_id}/coverage", admin)
            assert {"direct": coverage["direct"], "levels": coverage["levels"]} == {
                "direct": want["units"]["direct"],
                "levels": want["units"]["levels"],
            }, key
            circle = await api.ok("stations", "GET", "/coverage", admin, params={"org_id": org_id})
            assert {k: circle[k] for k in want["stations"]["circle"]} == want["stations"]["circle"]
            report = await api.ok(
                "training",
                "GET",
                "/reports/summary",
                admin,
                params={
                    "org_id": org_id,
                    "from": f"{today.year - 1}-01-01",
                    "to": f"{today.year}-12-31",
                },
            )
            assert report["person_times"] == want["training"]["person_times"], key
            assert report["unique_persons"] == want["training"]["unique_persons"], key
            assert report["certificates"] == want["training"]["certificates"], key
            cadres = await api.ok(
                "training", "GET", "/reports/cadre-training", admin, params={"org_id": org_id}
            )
            assert (cadres["cadres_total"], cadres["cadres_trained"]) == (
                want["cadres"]["cadres"],
                want["cadres"]["trained"],
            ), key
            ledger = await api.ok(
                "stations", "GET", "/subsidies/totals", admin, params={"org_id": org_id}
            )
            assert ledger["total"]["paid"] == want["stations"]["subsidies_paid"], key
            members = await api.ok(
                "membership",
                "GET",
                "/members",
                admin,
                params={"org_id": org_id, "status": "active", "limit": 100},
            )
            assert len(members["items"]) == want["members"]["active"], key


# -------------------------------------------------------------------- the gateway's figures

SETTLE_SECONDS = 20.0  # events of the whole scenario reach the read models well within this


async def dashboard(
    client: httpx.AsyncClient, platform: Platform, what: str, org_id: str, headers: dict[str, str]
) -> httpx.Response:
    return await client.get(
        f"{platform.services['gateway'].base}/v1/dashboard/{what}",
        params={"org_id": org_id},
        headers=headers,
    )


def children_figures(body: dict[str, Any]) -> dict[str, Any]:
    return {child["org"]["id"]: project(child["figures"]) for child in body["children"]}


async def settled(
    fetch: Any, shape: Any, want: Any, timeout: float = SETTLE_SECONDS
) -> tuple[Any, float]:
    """Poll `fetch` until `shape(body) == want` or the deadline; returns the last body and how
    long it took. The caller asserts: a mismatch at the deadline shows the difference."""
    started = time.monotonic()
    while True:
        response = await fetch()
        assert response.status_code == 200, response.text
        body = response.json()
        if shape(body) == want or time.monotonic() - started > timeout:
            return body, time.monotonic() - started
        await asyncio.sleep(0.1)


def assert_fresh(body: dict[str, Any]) -> None:
    """Every source has been heard from, and says when."""
    sources = {f["source"]: f for f in body["freshness"]}
    assert set(sources) == {"membership", "training", "stations"}
    for source in sources.values():
        assert source["events_applied"] > 0, source
        assert source["last_event_at"] is not None and source["applied_at"] is not None, source


async def test_dashboard_overview_and_drill_down_equal_the_inputs(
    full_platform: Platform, world: World
) -> None:
    """Once the events have arrived, the county's overview and each township's figures are
    those computed from the scenario's inputs."""
    async with httpx.AsyncClient(timeout=15) as client:
        county = world.orgs["county"]
        headers = world.headers["county"]
        want = world.expected("county")
        body, _ = await settled(
            lambda: dashboard(client, full_platform, "overview", county["id"], headers),
            lambda b: project(b["figures"]),
            want,
        )
        assert_figures(body["figures"], want, "county overview")
        assert body["org"]["id"] == county["id"] and body["org"]["name"] == "凤庆县总工会"
        assert body["period"] == {"from": None, "to": None}
        assert_fresh(body)

        townships = {world.orgs[k]["id"]: world.expected(k) for k in ("fengshan", "lushi")}
        body, _ = await settled(
            lambda: dashboard(client, full_platform, "children", county["id"], headers),
            children_figures,
            townships,
        )
        assert not (found := differences(children_figures(body), townships)), "\n".join(found)
        assert [c["org"]["name"] for c in body["children"]] == sorted(
            c["org"]["name"] for c in body["children"]
        ), "children by name"
        # One level further down: a township's villages.
        fengshan = world.orgs["fengshan"]
        villages = {
            world.orgs[k]["id"]: world.expected(k)
            for k in (o.key for o in world.scenario.orgs if o.parent == "fengshan")
        }
        body, _ = await settled(
            lambda: dashboard(client, full_platform, "children", fengshan["id"], headers),
            children_figures,
            villages,
        )
        assert not (found := differences(children_figures(body), villages)), "\n".join(found)


async def test_figures_per_month(full_platform: Platform, world: World) -> None:
    """Bounded periods and time series: training was last month, the rest this month."""
    sc = world.scenario
    skills = next(s for s in sc.sessions if s.key == "welding-fs")
    last, now = month_of(skills.days[0]), world.approved_month
    county = world.orgs["county"]
    headers = world.headers["county"]
    gateway = full_platform.services["gateway"].base
    async with httpx.AsyncClient(base_url=gateway, headers=headers, timeout=15) as client:
        # Settled first: the unbounded figures are all in.
        await settled(
            lambda: dashboard(client, full_platform, "overview", county["id"], headers),
            lambda b: project(b["figures"]),
            world.expected("county"),
        )
        for root in ("county", "fengshan", "lushi"):
            for month in (last, now):
                want = expected_month(sc, root, month, now)
                response = await client.get(
                    "/v1/dashboard/overview",
                    params={"org_id": world.orgs[root]["id"], "from": month, "to": month},
                )
                assert response.status_code == 200, response.text
                assert response.json()["period"] == {"from": month, "to": month}
                got = pick(response.json()["figures"], want)
                found = differences(got, want)
                assert not found, f"{root} in {month}:\n" + "\n".join(found)

        for metric, expected in (
            (
                "person_times",
                {last: expected_month(sc, "county", last, now)["training.person_times"]},
            ),
            ("new_members", {now: expected_month(sc, "county", now, now)["members.new_members"]}),
        ):
            response = await client.get(
                "/v1/dashboard/timeseries", params={"org_id": county["id"], "metric": metric}
            )
            assert response.status_code == 200, response.text
            points = response.json()["points"]
            assert {p["month"]: p["value"] for p in points if p["value"]} == expected, metric
            months = [p["month"] for p in points]
            assert months == sorted(months) and months[-1] >= now, months


async def test_the_same_figures_after_a_rebuild_from_the_stream(
    full_platform: Platform, world: World
) -> None:
    """Stop the gateway, replay the JetStream history into empty read models with the CLI,
    start it again: the first answer already has every figure."""
    gateway = full_platform.services["gateway"]
    county = world.orgs["county"]
    want = world.expected("county")
    async with httpx.AsyncClient(timeout=15) as client:
        headers = world.headers["county"]
        body, _ = await settled(
            lambda: dashboard(client, full_platform, "overview", county["id"], headers),
            lambda b: project(b["figures"]),
            want,
        )
        assert_figures(body["figures"], want, "before the rebuild: county")
        before = {f["source"]: f["events_applied"] for f in body["freshness"]}

        t0 = time.perf_counter()
        assert await gateway.stop() in (0, -signal.SIGTERM)
        t1 = time.perf_counter()
        try:
            cli = asyncio.create_subprocess_exec(
                str(GATEWAY_CLI),
                "rebuild-dashboards",
                env=gateway.env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            process = await cli
            try:
                output, _ = await asyncio.wait_for(process.communicate(), 60)
            except TimeoutError:
                process.kill()
                raise
            assert process.returncode == 0, output.decode(errors="replace")
            t2 = time.perf_counter()
        finally:
            await gateway.start()
        print(
            f"\nrebuild: gateway stopped in {t1 - t0:.1f} s, CLI ran {t2 - t1:.1f} s, "
            f"ready again in {time.perf_counter() - t2:.1f} s"
        )

        first = await dashboard(client, full_platform, "overview", county["id"], headers)
        assert first.status_code == 200, first.text
        assert_figures(first.json()["figures"], want, "after the rebuild: county")
        assert_fresh(first.json())
        after = {f["source"]: f["events_applied"] for f in first.json()["freshness"]}
        # The counters were rebuilt from the history, not kept: every event applied once more.
        assert after == before, (before, after)
        children = await dashboard(client, full_platform, "children", county["id"], headers)
        townships = {world.orgs[k]["id"]: world.expected(k) for k in ("fengshan", "lushi")}
        found = differences(children_figures(children.json()), townships)
        assert not found, "after the rebuild, townships:\n" + "\n".join(found)


async def test_with_membership_stopped_the_dashboard_answers_and_routed_calls_get_503(
    full_platform: Platform, world: World
) -> None:
    membership = full_platform.services["membership"]
    county = world.orgs["county"]
    want = world.expected("county")
    async with httpx.AsyncClient(timeout=15) as client:
        api = Api(client, full_platform, via_gateway=True)
        headers = world.headers["county"]
        body, _ = await settled(
            lambda: dashboard(client, full_platform, "overview", county["id"], headers),
            lambda b: project(b["figures"]),
            want,
        )
        assert_figures(body["figures"], want, "before stopping membership: county")

        assert await membership.stop() in (0, -signal.SIGTERM)
        try:
            answer = await dashboard(client, full_platform, "overview", county["id"], headers)
            assert answer.status_code == 200, answer.text
            assert_figures(answer.json()["figures"], want, "membership stopped: county")
            children = await dashboard(client, full_platform, "children", county["id"], headers)
            assert children.status_code == 200, children.text

            started = time.perf_counter()
            routed = await api.call("membership", "GET", f"/orgs/{county['id']}", headers)
            elapsed = time.perf_counter() - started
            assert routed.status_code == 503, routed.text
            error = routed.json()["error"]
            assert set(error) >= {"code", "message", "message_zh", "details", "request_id"}
            assert error["details"]["service"] == "membership"
            assert error["request_id"] and routed.headers["x-request-id"] == error["request_id"]
            # Refused at once, never a hang: well inside the connect timeout (2 s).
            assert elapsed < 2.0, f"503 took {elapsed:.3f} s"
            print(f"\nrouted call with membership down: 503 in {elapsed * 1000:.1f} ms")
            # The others still answer through the gateway.
            other = await api.call("training", "GET", "/courses", headers)
            assert other.status_code == 200, other.text
        finally:
            await membership.start()
        back = await api.call("membership", "GET", f"/orgs/{county['id']}", headers)
        assert back.status_code == 200, back.text


APPROVALS = 50


async def test_time_from_an_approval_to_the_dashboard(full_platform: Platform) -> None:
    """~50 approvals, one at a time, in a county of their own: from each approval's HTTP
    response until the gateway's overview counts the new member (p50/p99 printed)."""
    async with httpx.AsyncClient(timeout=15) as client:
        api = Api(client, full_platform, via_gateway=True)
        admin = await api.admin()
        county = await api.ok(
            "membership",
            "POST",
            "/orgs",
            admin,
            201,
            json={
                "org_type": "county_federation",
                "name": "临翔区总工会",
                "region_code": "530902000000",
            },
        )
        township = await api.ok(
            "membership",
            "POST",
            "/orgs",
            admin,
            201,
            json={
                "parent_id": county["id"],
                "org_type": "township_union",
                "name": "南美乡工会",
                "region_code": "530902200000",
            },
        )
        village = await api.ok(
            "membership",
            "POST",
            "/orgs",
            admin,
            201,
            json={
                "parent_id": township["id"],
                "org_type": "village_union",
                "name": "南美村工会委员会",
                "region_code": "530902200201",
            },
        )
        chair = await api.person(admin, Role.org_chair, village, f"lx_chair_{secrets.token_hex(3)}")
        county_admin = await api.person(
            admin, Role.county_admin, county, f"lx_admin_{secrets.token_hex(3)}"
        )
        roster = await api.ok(
            "membership",
            "POST",
            "/rosters",
            chair,
            201,
            json={"org_id": village["id"], "title": "测量批次"},
        )
        applications = [
            await api.ok(
                "membership",
                "POST",
                "/applications",
                chair,
                201,
                json={
                    "org_id": village["id"],
                    "roster_id": roster["id"],
                    "name": f"测{n}",
                    "id_number": valid_id_number(7000 + n, region="530902"),
                    "phone": valid_phone(7000 + n),
                    "household_type": "rural",
                    "category": "migrant_worker",
                    "form_ref": f"LX-{n}",
                },
            )
            for n in range(APPROVALS)
        ]
        latencies: list[float] = []
        for n, application in enumerate(applications, start=1):
            await api.ok(
                "membership",
                "POST",
                f"/applications/{application['id']}/approve",
                county_admin,
                json={"approval_doc_no": "临工复〔2026〕1号"},
            )
            answered = time.perf_counter()
            while True:
                seen = await dashboard(
                    client, full_platform, "overview", county["id"], county_admin
                )
                assert seen.status_code == 200, seen.text
                if seen.json()["figures"]["members"]["active"] >= n:
                    break
                assert time.perf_counter() - answered < 10.0, f"approval {n} not on the dashboard"
                await asyncio.sleep(0.005)
            latencies.append(time.perf_counter() - answered)
            assert seen.json()["figures"]["members"]["active"] == n
    p50 = statistics.median(latencies)
    p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98]
    print(
        f"\napproval -> dashboard over {len(latencies)} approvals: p50 {p50 * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )
    assert p99 < 5.0


# ------------------------------------------------------------- tokens, revocation, API keys


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"] and error["message_zh"] and error["request_id"], error


async def test_a_token_minted_with_a_past_expiry_is_refused(
    full_platform: Platform, world: World
) -> None:
    """Two tokens for the same county admin, signed with the gateway's key, differing only in
    their expiry: the expired one gets 401 at the dashboard and at a routed call."""
    county = world.orgs["county"]
    issuer = TokenIssuer(load_jwt_private_key(ServiceSettings(data_dir=full_platform.data_dir)))
    principal = Principal(
        subject="fq-expiry", role=Role.county_admin, org_id=county["id"], org_path=county["path"]
    )
    live = auth_header(issuer.issue_token(principal, ttl_seconds=120).token)
    expired = auth_header(issuer.issue_token(principal, ttl_seconds=-60).token)
    async with httpx.AsyncClient(timeout=15) as client:
        api = Api(client, full_platform, via_gateway=True)
        for headers, status in ((live, 200), (expired, 401)):
            overview = await dashboard(client, full_platform, "overview", county["id"], headers)
            routed = await api.call("membership", "GET", f"/orgs/{county['id']}", headers)
            assert (overview.status_code, routed.status_code) == (status, status), routed.text
        assert_refused(overview, 401, "unauthorized")
        assert "expired" in overview.json()["error"]["message"]
        assert_refused(routed, 401, "unauthorized")


async def test_a_revoked_token_is_refused(full_platform: Platform, world: World) -> None:
    """A county admin signs in, works, signs out (`POST /v1/auth/revoke`): the same access
    token is then refused by the gateway, and its refresh token is used up."""
    county = world.orgs["county"]
    async with httpx.AsyncClient(timeout=15) as client:
        api = Api(client, full_platform, via_gateway=True)
        username = f"fq_revoke_{secrets.token_hex(3)}"
        await api.person(world.headers["admin"], Role.county_admin, county, username)
        tokens = await api.sign_in(username, f"{username}-pass-2026")
        headers = auth_header(tokens["access_token"])
        overview = await dashboard(client, full_platform, "overview", county["id"], headers)
        assert overview.status_code == 200, overview.text
        await api.ok("membership", "GET", f"/orgs/{county['id']}", headers)

        revoked = await client.post(
            f"{api.gateway}/v1/auth/revoke",
            headers=headers,
            data={"refresh_token": tokens["refresh_token"]},
        )
        assert revoked.status_code == 204, revoked.text
        assert_refused(
            await dashboard(client, full_platform, "overview", county["id"], headers),
            401,
            "token_revoked",
        )
        assert_refused(
            await api.call("membership", "GET", f"/orgs/{county['id']}", headers),
            401,
            "token_revoked",
        )
        refreshed = await client.post(
            f"{api.gateway}/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        assert refreshed.status_code in (400, 401), refreshed.text
        # Signing out ended that login, not the account.
        again = auth_header((await api.sign_in(username, f"{username}-pass-2026"))["access_token"])
        overview = await dashboard(client, full_platform, "overview", county["id"], again)
        assert overview.status_code == 200, overview.text


async def test_api_key_scopes(full_platform: Platform, world: World) -> None:
    """A county admin makes two keys for other government systems: `members:read_masked`
    reads members, masked, and may not import a roster nor read the dashboard;
    `dashboards:read` reads the dashboard (the scenario's figures) and not members."""
    county = world.orgs["county"]
    admin = world.headers["county"]
    want = world.expected("county")
    async with httpx.AsyncClient(timeout=15) as client:
        api = Api(client, full_platform, via_gateway=True)

        async def key(name: str, scope: str) -> tuple[str, dict[str, str]]:
            response = await client.post(
                f"{api.gateway}/v1/api-keys",
                headers=admin,
                json={"name": name, "scopes": [scope], "org_id": county["id"]},
            )
            assert response.status_code == 201, response.text
            body = response.json()
            assert body["scopes"] == [scope] and body["org_id"] == county["id"]
            return body["id"], {"X-API-Key": body["secret"]}

        _, members_key = await key("县人社局数据共享平台", "members:read_masked")
        dashboard_key_id, dashboard_key = await key("县政府驾驶舱", "dashboards:read")
        active = {"org_id": county["id"], "status": "active", "limit": 100}

        listed = await api.ok("membership", "GET", "/members", members_key, params=active)
        assert len(listed["items"]) == want["members"]["active"]
        for member in listed["items"]:
            assert member["personal_data"] == "masked", member
            assert "*" in member["id_number"] and "*" in member["phone"], member
        # The county admin's own token sees them in full: the key is what masks.
        full = await api.ok("membership", "GET", "/members", admin, params=active)
        assert {m["personal_data"] for m in full["items"]} == {"full"}

        roster = "姓名,公民身份号码,手机号码\n".encode()
        imported = await api.call(
            "membership",
            "POST",
            "/rosters/import",
            members_key,
            params={"org_id": county["id"], "dry_run": "true"},
            files={"file": ("roster.csv", roster, "text/csv")},
        )
        assert_refused(imported, 403, "forbidden")
        assert_refused(
            await dashboard(client, full_platform, "overview", county["id"], members_key),
            403,
            "forbidden",
        )

        overview = await dashboard(client, full_platform, "overview", county["id"], dashboard_key)
        assert overview.status_code == 200, overview.text
        assert_figures(overview.json()["figures"], want, "with the dashboards:read key: county")
        assert_refused(
            await api.call("membership", "GET", "/members", dashboard_key, params=active),
            403,
            "forbidden",
        )

        revoked = await client.post(
            f"{api.gateway}/v1/api-keys/{dashboard_key_id}/revoke", headers=admin
        )
        assert revoked.status_code == 200 and revoked.json()["revoked_at"], revoked.text
        assert_refused(
            await dashboard(client, full_platform, "overview", county["id"], dashboard_key),
            401,
            "invalid_api_key",
        )
