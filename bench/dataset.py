"""The generated province, loaded through each service's own write code, in-process.

At `--scale 1` a province (云南省总工会 above 100 county federations, each with 13
township and 189 village unions) has 1,000,000 members, 100,000 attendance records
(person-times) and 100,000 stations; a smaller scale shrinks the counties first and keeps
~10,000 members per county, so a county's and a village's figures mean the same at any
scale from 0.01 up. Nothing goes in over HTTP, which would take hours, and nothing goes
straight into tables either: the harness calls the services' own functions on their
databases (orgs.create, units.import_units, rosters.import_roster then
admissions.approve_roster, stations.create, courses.create, sessions.schedule,
enrolments.enrol, attendance.check_in), so every row is validated, audited and written
with its outbox event exactly as a request would; the running services' relays publish
those events and their consumers build the replicas and the gateway's read model.
"""

from __future__ import annotations

import asyncio
import functools
import io
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from stdnum import numdb

from bench.stack import Say, Stack
from gonghui_shared.auth import Principal
from gonghui_shared.clock import today_in_china
from gonghui_shared.db import Database
from gonghui_shared.permissions import Role
from gonghui_shared.runtime import load_pii_cipher, startup_frozen
from membership.admissions import service as admissions
from membership.config import MembershipSettings
from membership.orgs import repository as orgs_repository
from membership.orgs import service as orgs
from membership.orgs.models import OrgType
from membership.orgs.schemas import OrgCreate
from membership.rosters import service as rosters
from membership.rosters.template import write_roster_csv, write_roster_xlsx
from membership.testing import valid_id_number
from membership.units import service as units
from membership.units.statistical_codes import (
    PROVINCE,
    TOWNSHIP,
    VILLAGE,
    UnitRow,
    generate_county,
    write_units_csv,
)
from stations.config import StationsSettings
from stations.stations import service as stations
from stations.stations.amenities import CODES as AMENITY_CODES
from stations.stations.models import StationType
from stations.stations.schemas import StationCreate
from training.attendance import service as attendance
from training.attendance.schemas import AttendanceCreate
from training.attendance.service import QrSigner
from training.config import TrainingSettings
from training.courses import service as courses
from training.courses.schemas import CourseCreate
from training.enrolments import service as enrolments
from training.enrolments.schemas import EnrolmentCreate
from training.sessions import service as sessions
from training.sessions.models import DeliveryMode
from training.sessions.schemas import SessionCreate

PROVINCE_CODE = "530000000000"
PROVINCE_NAME = "云南省"
FULL_MEMBERS = 1_000_000
FULL_COUNTIES = 100
FULL_PERSON_TIMES = 100_000
FULL_STATIONS = 100_000
FULL_ROSTER_ROWS = 100_000
MEMBERS_PER_VILLAGE = 50  # 京竹林村 has 93, 东城社区 50: the seed report's villages
MOST_VILLAGES = 189  # 凤庆县's villages and communities
MOST_TOWNSHIPS = 13
VILLAGES_PER_TOWNSHIP = 15
ENROLLED_PER_SESSION = 25
DAYS_PER_SESSION = 2  # 25 people × 2 days = 50 person-times a session
# The province's box (WGS-84), where the county centres are spread on a 10 × 10 grid.
WEST, SOUTH, LON_STEP, LAT_STEP = 98.6, 22.2, 0.66, 0.6
APPROVAL_DOC = "云工复〔2026〕1号"
ACTOR = Principal(subject="bench", role=Role.platform_admin)
ALWAYS_OPEN, DAYTIME = "24/7", "Mo-Su 08:00-20:00"

T = TypeVar("T")


@dataclass(frozen=True)
class Sizes:
    """How much of everything a scale means."""

    scale: float
    members: int
    counties: int
    townships_per_county: int
    villages_per_county: int
    person_times: int
    stations: int
    roster_rows: int

    @classmethod
    def at(cls, scale: float, roster_rows: int | None = None, stations: int | None = None) -> Sizes:
        members = max(round(FULL_MEMBERS * scale), 20)
        counties = min(max(round(FULL_COUNTIES * scale), 1), FULL_COUNTIES)
        villages = min(max(math.ceil(members / counties) // MEMBERS_PER_VILLAGE, 2), MOST_VILLAGES)
        townships = min(max(round(villages / VILLAGES_PER_TOWNSHIP), 1), MOST_TOWNSHIPS)
        return cls(
            scale=scale,
            members=members,
            counties=counties,
            townships_per_county=townships,
            villages_per_county=villages,
            person_times=max(round(FULL_PERSON_TIMES * scale), DAYS_PER_SESSION),
            stations=stations or max(round(FULL_STATIONS * scale), 20),
            roster_rows=roster_rows or max(round(FULL_ROSTER_ROWS * scale), 100),
        )

    def describe(self) -> str:
        return (
            f"{self.members:,} members in {self.counties} "
            f"{'county' if self.counties == 1 else 'counties'} "
            f"({self.townships_per_county} township(s), {self.villages_per_county} villages each), "
            f"{self.person_times:,} person-times of training, {self.stations:,} stations"
        )


@dataclass
class OrgRef:
    id: str
    path: str
    name: str
    region_code: str
    lon: float | None
    lat: float | None


@dataclass
class County:
    org: OrgRef
    townships: list[OrgRef] = field(default_factory=list)
    villages: list[OrgRef] = field(default_factory=list)
    member_nos: list[str] = field(default_factory=list)


@dataclass
class Province:
    org: OrgRef
    counties: list[County] = field(default_factory=list)

    @property
    def villages(self) -> list[OrgRef]:
        return [v for county in self.counties for v in county.villages]


@dataclass
class Phase:
    """One step of the loading, for the report: what, how, how many, how long."""

    what: str
    path: str
    rows: int
    seconds: float


@dataclass
class Loading:
    phases: list[Phase] = field(default_factory=list)

    def add(self, what: str, path: str, rows: int, seconds: float) -> None:
        self.phases.append(Phase(what, path, rows, round(seconds, 1)))

    @property
    def seconds(self) -> float:
        return round(sum(p.seconds for p in self.phases), 1)


class Meter:
    """Counts done work and says so every `every` seconds: the long phases' progress."""

    def __init__(self, say: Say, what: str, total: int, every: float = 10.0) -> None:
        self.say, self.what, self.total, self.every = say, what, total, every
        self.done = 0
        self.started = self.last = time.perf_counter()

    def add(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            rate = self.done / (now - self.started)
            left = (self.total - self.done) / rate if rate else float("inf")
            self.say(
                f"  {self.what}: {self.done:,} / {self.total:,} "
                f"({rate:,.0f}/s, ~{left:,.0f} s left)"
            )

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


async def bounded(workers: int, jobs: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the jobs, at most `workers` at a time, results in order."""
    gate = asyncio.Semaphore(workers)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(one(job) for job in jobs)))


# ------------------------------------------------------------------------------ people


SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "明华强军芳丽平杰敏静磊洋勇艳娟涛超霞刚桂英秀兰玉梅建国志红云海"


def person(n: int, county_code: str) -> dict[str, str]:
    """Person number `n` as a roster row: unique ID number and phone, plausible the rest."""
    rnd = random.Random(n)
    birth = date(1970, 1, 1) + timedelta(days=n // 1000)
    rider = rnd.random() < 0.12
    employee = not rider and rnd.random() < 0.25
    return {
        "name": rnd.choice(SURNAMES) + rnd.choice(GIVEN) + rnd.choice(GIVEN),
        # 1,000 serials a birthday (odd for men), so every n up to 13 million is distinct.
        "id_number": valid_id_number(
            (n % 1000) // 2,
            region=county_code[:6],
            birth=birth.strftime("%Y%m%d"),
            male=bool(n % 2),
        ),
        "phone": f"+86139{n:08d}",
        "household_type": "城镇" if employee else "农村",
        "category": "新就业形态劳动者" if rider else ("职工" if employee else "农民工"),
        "subtype": "外卖骑手" if rider else "",
        "employer": "美团" if rider else "滇红茶业有限公司",
        "form_ref": f"BENCH-{n:08d}",
    }


def roster_csv(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO(newline="")
    write_roster_csv(rows, buffer)
    return buffer.getvalue().encode("utf-8")


def roster_xlsx(rows: list[dict[str, str]]) -> bytes:
    buffer = io.BytesIO()
    write_roster_xlsx(rows, buffer)
    return buffer.getvalue()


# ------------------------------------------------------------------------------ membership


@functools.cache
def yunnan_counties() -> list[str]:
    """Yunnan's 129 county-level codes in use today, from python-stdnum's list (what the ID
    number check knows): a county's people have ID numbers that begin with its code."""
    places = numdb.get("cn/loc")
    codes = []
    for code in (f"53{city:02d}{county:02d}" for city in range(1, 35) for county in range(1, 100)):
        info = places.info(code)
        names = [value for _, props in info for key, value in props.items() if key == "county"]
        latest = names[0].split(",")[-1] if names else ""
        # "[1983-]五华区" or "德钦县" is in use; "[-2011]呈贡县" is not; 市辖区 is no county.
        if latest and not re.search(r"-\d{4}\]", latest) and "市辖区" not in latest:
            codes.append(code)
    return codes


def county_code(index: int) -> str:
    """The 12-digit code of the province's county number `index` (a real one)."""
    return f"{yunnan_counties()[index]}000000"


def county_units(index: int, sizes: Sizes) -> list[UnitRow]:
    centre = (WEST + (index % 10 + 0.5) * LON_STEP, SOUTH + (index // 10 + 0.5) * LAT_STEP)
    return generate_county(
        county_code(index),
        f"第{index + 1}县",
        sizes.townships_per_county,
        sizes.villages_per_county,
        communities=min(4, sizes.villages_per_county),
        centre=centre,
    )


def _ref(org: Any) -> OrgRef:
    return OrgRef(org.id, org.path, org.name, org.region_code, org.lon, org.lat)


class MembershipLoader:
    def __init__(self, stack: Stack, sizes: Sizes, say: Say, workers: int = 2) -> None:
        self.db = _loader_database(stack, "membership", workers)
        settings = MembershipSettings(**_own(stack, "membership"))
        self.pii = load_pii_cipher(settings)
        self.sizes = sizes
        self.say = say
        self.meter = Meter(say, "members approved", sizes.members)

    async def province(self) -> Province:
        lon = WEST + 5 * LON_STEP
        lat = SOUTH + 5 * LAT_STEP
        province_unit = UnitRow(PROVINCE_CODE, PROVINCE_NAME, PROVINCE, None, lon=lon, lat=lat)
        async with self.db.transaction() as session:
            await units.import_units(session, ACTOR, write_units_csv([province_unit]))
            org = await orgs.create(
                session,
                ACTOR,
                OrgCreate(
                    org_type=OrgType.province_federation,
                    name=f"{PROVINCE_NAME}总工会",
                    region_code=PROVINCE_CODE,
                    lon=lon,
                    lat=lat,
                ),
            )
        return Province(_ref(org))

    async def county(self, province: Province, index: int) -> County:
        """The county's units and unions: the federation, its townships and villages."""
        rows = county_units(index, self.sizes)
        async with self.db.transaction() as session:
            await units.import_units(session, ACTOR, write_units_csv(rows))
            top = rows[0]
            county_org = await orgs.create(
                session,
                ACTOR,
                OrgCreate(
                    parent_id=province.org.id,
                    org_type=OrgType.county_federation,
                    name=f"{top.name}总工会",
                    region_code=top.code,
                    lon=top.lon,
                    lat=top.lat,
                ),
            )
            county = County(_ref(county_org))
            by_code: dict[str, Any] = {}
            for unit in rows[1:]:
                township = unit.level == TOWNSHIP
                org = await orgs.create(
                    session,
                    ACTOR,
                    OrgCreate(
                        parent_id=county_org.id if township else by_code[unit.parent_code or ""].id,
                        org_type=OrgType.township_union if township else OrgType.village_union,
                        name=f"{unit.name}工会" if township else f"{unit.name}工会委员会",
                        region_code=unit.code,
                        lon=unit.lon,
                        lat=unit.lat,
                    ),
                )
                by_code[unit.code] = org
                (county.townships if unit.level == TOWNSHIP else county.villages).append(_ref(org))
        assert all(u.level in (TOWNSHIP, VILLAGE) for u in rows[1:])
        return county

    async def admit(self, county: County, village: OrgRef, people: range) -> None:
        """The village's first roster (花名册), imported by its chair's file, then approved.

        One transaction for both: what a chair and the county federation do on two days,
        done back to back, with one commit and one look-up of the village fewer.
        """
        if not people:
            return
        rows = [person(p, county.org.region_code) for p in people]
        async with self.db.transaction() as session:
            org = await orgs_repository.get(session, village.id)
            assert org is not None
            report = await rosters.import_roster(
                session,
                ACTOR,
                org,
                self.pii,
                roster_csv(rows),
                "花名册.csv",
                dry_run=False,
                title="2026年入会花名册",
            )
            assert report.roster_id and report.rows_imported == len(rows), report.errors[:3]
            admitted, skipped = await admissions.approve_roster(
                session, ACTOR, report.roster_id, APPROVAL_DOC
            )
        assert not skipped, skipped[:3]
        self.meter.add(len(admitted))
        county.member_nos.extend(a.member.member_no for a in admitted)

    async def load(self, workers: int) -> Province:
        """The org trees county by county, then every village's roster, `workers` at once.

        The villages are taken round the counties (the first village of each county, then
        the second…), so the loaders at work are in different counties and do not queue
        for one county's member-number counter, which an approval holds till it commits.
        """
        province = await self.province()
        jobs = [partial(self.county, province, i) for i in range(self.sizes.counties)]
        province.counties = await bounded(workers, jobs)
        people = _shares(self.sizes.members, self.sizes.counties)
        starts = [sum(people[:i]) for i in range(len(people))]
        rounds: list[list[Callable[[], Awaitable[None]]]] = []
        for county, start, total in zip(province.counties, starts, people, strict=True):
            share = _shares(total, len(county.villages))
            for n, (village, size) in enumerate(zip(county.villages, share, strict=True)):
                if n == len(rounds):
                    rounds.append([])
                rounds[n].append(partial(self.admit, county, village, range(start, start + size)))
                start += size
        await bounded(workers, [job for jobs_of_round in rounds for job in jobs_of_round])
        for county in province.counties:
            # Numbers are given in approval order; sorted, a run's samples are the same.
            county.member_nos.sort()
        return province

    async def import_xlsx(
        self, village: OrgRef, rows: list[dict[str, str]]
    ) -> tuple[int, float, float]:
        """One roster file, imported as the CLI and the API import it; rows, seconds and
        the CPU seconds of this process (its threads included) meanwhile."""
        data = roster_xlsx(rows)
        # The service's process has what its start-up built frozen out of the collector's
        # walks (gonghui_shared.app); this one freezes its own (the harness, the data set).
        with startup_frozen():
            return await self._import_xlsx(village, data, len(rows))

    async def _import_xlsx(
        self, village: OrgRef, data: bytes, rows: int
    ) -> tuple[int, float, float]:
        started = time.perf_counter()
        cpu_started = time.process_time()
        async with self.db.transaction() as session:
            org = await orgs_repository.get(session, village.id)
            assert org is not None
            report = await rosters.import_roster(
                session,
                ACTOR,
                org,
                self.pii,
                data,
                "花名册.xlsx",
                dry_run=False,
                title="2026年第二批入会花名册",
            )
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        assert report.rows_imported == rows, report.errors[:3]
        return report.rows_imported, seconds, cpu_seconds

    async def close(self) -> None:
        await self.db.dispose()


def _loader_database(stack: Stack, name: str, workers: int) -> Database:
    """A connection for each loader at work, so none waits for another's to come back."""
    return Database(stack.database_urls[name], pool_size=max(workers, 2), max_overflow=2)


def _shares(total: int, parts: int) -> list[int]:
    """`total` split into `parts` near-equal whole shares, the larger first."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _own(stack: Stack, name: str) -> dict[str, Any]:
    """The service's settings as its process has them, for the same code in-process."""
    return {
        "database_url": stack.database_urls[name],
        "data_dir": stack.folder,
        "nats_url": stack.nats_url,
        "subject_root": stack.root,
    }


# ------------------------------------------------------------------------------ stations


class StationsLoader:
    BATCH = 200

    def __init__(self, stack: Stack, sizes: Sizes, say: Say, workers: int = 2) -> None:
        self.db = _loader_database(stack, "stations", workers)
        self.settings = StationsSettings(**_own(stack, "stations"))
        self.sizes = sizes
        self.meter = Meter(say, "stations opened", sizes.stations)

    @staticmethod
    def station(n: int, village: OrgRef) -> StationCreate:
        rnd = random.Random(f"station{n}")
        assert village.lon is not None and village.lat is not None
        amenities = rnd.sample(AMENITY_CODES, rnd.randrange(1, 6))
        if rnd.random() < 0.6:
            amenities.append("drinking_water")
        kind = rnd.choices(
            [
                StationType.village_service_point,
                StationType.outdoor_worker_station,
                StationType.worker_home,
            ],
            [0.5, 0.35, 0.15],
        )[0]
        return StationCreate(
            station_type=kind,
            name=f"{village.name}第{n}号驿站",
            host_org_id=village.id,
            lon=village.lon + rnd.uniform(-0.02, 0.02),
            lat=village.lat + rnd.uniform(-0.02, 0.02),
            amenities=sorted(set(amenities)),
            opening_hours=ALWAYS_OPEN if rnd.random() < 0.5 else DAYTIME,
        )

    async def load(self, province: Province, workers: int) -> None:
        villages = province.villages
        batches = [
            range(start, min(start + self.BATCH, self.sizes.stations))
            for start in range(0, self.sizes.stations, self.BATCH)
        ]

        async def batch(numbers: range) -> None:
            async with self.db.transaction() as session:
                for n in numbers:
                    data = self.station(n, villages[n % len(villages)])
                    await stations.create(session, ACTOR, self.settings, data)
            self.meter.add(len(numbers))

        await bounded(workers, [partial(batch, b) for b in batches])

    async def close(self) -> None:
        await self.db.dispose()


# ------------------------------------------------------------------------------ training


@dataclass
class WriteFixtures:
    """Sessions made for the write measurements, and the requests they allow."""

    enrolments: list[dict[str, Any]]  # POST /v1/sessions/{id}/enrolments bodies, each once
    check_ins: list[dict[str, Any]]  # POST /v1/sessions/{id}/attendance bodies, each once
    host: OrgRef


COURSES = (
    ("welding_trades", "电焊工职业技能培训", 56.0),
    ("planting_breeding", "茶叶种植管理", 16.0),
    ("ecommerce", "电子商务直播带货", 24.0),
)


def china_time(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC) - timedelta(hours=8)


class TrainingLoader:
    def __init__(self, stack: Stack, sizes: Sizes, say: Say, workers: int = 2) -> None:
        self.db = _loader_database(stack, "training", workers)
        settings = TrainingSettings(**_own(stack, "training"))
        self.pii = load_pii_cipher(settings)
        self.signer = QrSigner.from_settings(settings)
        self.sizes = sizes
        self.say = say
        self.meter = Meter(say, "person-times recorded", sizes.person_times)
        self.courses: dict[str, list[str]] = {}

    async def county_courses(self, county: County) -> list[str]:
        async with self.db.transaction() as session:
            made = []
            for category, title, hours in COURSES:
                course = await courses.create(
                    session,
                    ACTOR,
                    CourseCreate.model_validate(
                        {
                            "owner_org_id": county.org.id,
                            "title": title,
                            "category": category,
                            "hours": hours,
                            "leads_to_certificate": category == "welding_trades",
                        }
                    ),
                )
                made.append(course.id)
        return made

    async def session(
        self,
        host: OrgRef,
        course_id: str,
        first_day: date,
        days: int,
        people: Sequence[str],
        *,
        attend: bool,
        capacity: int = 60,
        start: bool = True,
    ) -> tuple[str, list[str]]:
        """Schedule, open, enrol `people`, start, and (`attend`) check each in every day."""
        async with self.db.transaction() as session:
            ts, _ = await sessions.schedule(
                session,
                ACTOR,
                SessionCreate(
                    course_id=course_id,
                    host_org_id=host.id,
                    starts_at=china_time(first_day, 9),
                    ends_at=china_time(first_day + timedelta(days=days - 1), 17),
                    place=f"{host.name}职业技能实训基地",
                    delivery_mode=DeliveryMode.on_site,
                    capacity=capacity,
                ),
            )
            await sessions.open_enrolment(session, ACTOR, ts.id)
            enrolled = []
            for member_no in people:
                enrolment = await enrolments.enrol(
                    session, self.pii, ACTOR, ts.id, EnrolmentCreate(member_no=member_no)
                )
                enrolled.append(enrolment.id)
            if start:
                await sessions.start(session, ACTOR, ts.id)
            if attend:
                for offset in range(days):
                    day = first_day + timedelta(days=offset)
                    for enrolment_id in enrolled:
                        await attendance.check_in(
                            session,
                            ACTOR,
                            self.signer,
                            ts.id,
                            AttendanceCreate(enrolment_id=enrolment_id, day=day),
                        )
                self.meter.add(days * len(enrolled))
        return ts.id, enrolled

    async def load(self, province: Province, workers: int) -> None:
        """Sessions of 25 people over 2 days, hosted by the townships, till the person-times."""
        counties = province.counties
        course_lists = await bounded(workers, [partial(self.county_courses, c) for c in counties])
        sessions_needed = math.ceil(self.sizes.person_times / (ENROLLED_PER_SESSION * 2))
        first_day = today_in_china() - timedelta(days=DAYS_PER_SESSION)
        jobs = []
        left = self.sizes.person_times
        for n in range(sessions_needed):
            county_index = n % len(counties)
            county = counties[county_index]
            rnd = random.Random(f"session{n}")
            people = min(ENROLLED_PER_SESSION, math.ceil(left / DAYS_PER_SESSION))
            left -= people * DAYS_PER_SESSION
            host = county.townships[n // len(counties) % len(county.townships)]
            chosen = rnd.sample(county.member_nos, min(people, len(county.member_nos)))
            course = course_lists[county_index][n % len(COURSES)]
            jobs.append(
                partial(
                    self.session, host, course, first_day, DAYS_PER_SESSION, chosen, attend=True
                )
            )
        await bounded(workers, jobs)
        self.courses = {c.org.id: ids for c, ids in zip(counties, course_lists, strict=True)}

    async def write_fixtures(self, county: County, streams: int, needed: int) -> WriteFixtures:
        """`streams` open sessions to enrol into and `streams` long ones to check in to.

        One session per client, so concurrent writes meet the per-session lock as often as
        a busy day would, not on every request; each request is valid exactly once.
        """
        host = county.townships[0]
        course = self.courses[county.org.id][0]
        today = today_in_china()
        members = county.member_nos
        enrol_into = []
        for _ in range(streams):
            session_id, _ = await self.session(
                host, course, today, 1, [], attend=False, capacity=10_000, start=False
            )
            enrol_into.append(session_id)
        enrolment_bodies = []
        for member_no in members[: max(needed // streams + 1, 1)]:
            for session_id in enrol_into:
                enrolment_bodies.append(
                    {
                        "method": "POST",
                        "path": f"/v1/sessions/{session_id}/enrolments",
                        "json": {"member_no": member_no},
                    }
                )
        # Check-ins: 40 people in each of `streams` sessions of up to 300 days.
        people = 40
        days = min(max(needed // (streams * people) + 1, 1), 300)
        first_day = today - timedelta(days=days - 1)
        check_in_to = []
        for s in range(streams):
            chosen = [members[(s * people + i) % len(members)] for i in range(people)]
            chosen = list(dict.fromkeys(chosen))
            session_id, enrolled = await self.session(
                host, course, first_day, days, chosen, attend=False, capacity=people
            )
            check_in_to.append((session_id, enrolled))
        check_in_bodies = []
        for offset in range(days):
            day = (first_day + timedelta(days=offset)).isoformat()
            for i in range(people):
                for session_id, enrolled in check_in_to:
                    if i < len(enrolled):
                        check_in_bodies.append(
                            {
                                "method": "POST",
                                "path": f"/v1/sessions/{session_id}/attendance",
                                "json": {"enrolment_id": enrolled[i], "day": day},
                            }
                        )
        return WriteFixtures(enrolment_bodies[:needed], check_in_bodies[:needed], host)

    async def close(self) -> None:
        await self.db.dispose()


def roster_people(sizes: Sizes) -> range:
    """People for the roster-import measurement: none of them a member yet."""
    return range(sizes.members, sizes.members + sizes.roster_rows)
