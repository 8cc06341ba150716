"""The real gateway with a known county, and the system Chromium to look at its dashboard page.

The gateway runs as a uvicorn process on a free loopback port, on a migrated SQLite database
and the session's NATS, under a subject root of its own. The county's events are published
on NATS as the services would publish them, and the gateway's own consumers build the read
models the page shows. (The figures on PostgreSQL are the dashboards tests' business; the
browser test is about the page, so one backend keeps it short.)

Without Chromium, Playwright or a CJK font the browser tests skip and say why; under
`CI=true` they fail instead.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select

from gateway.accounts.models import Account
from gateway.accounts.passwords import hash_password
from gateway.base import inbox
from gateway.config import GatewaySettings
from gateway.dashboards.handlers import DURABLE
from gonghui_shared.bus import Bus
from gonghui_shared.contracts import Event, envelope_for
from gonghui_shared.contracts import membership as m
from gonghui_shared.contracts import stations as s
from gonghui_shared.contracts import training as t
from gonghui_shared.db import Database
from gonghui_shared.ids import new_id
from gonghui_shared.testing import migrated_database
from gonghui_shared.testing.nats_server import free_port
from gonghui_shared.testing.processes import ServiceProcess

if TYPE_CHECKING:
    from playwright.async_api import Browser

REPO = Path(__file__).resolve().parents[4]
SCREENSHOTS = REPO / ".screenshots"
ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"
CHROMIUM = Path(os.environ.get("GONGHUI_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# -- the browser ----------------------------------------------------------------------------


def _missing_for_browser() -> list[str]:
    """What this machine lacks to run the browser tests (empty: nothing)."""
    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("Playwright for Python is not installed (make install)")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    fc_list = shutil.which("fc-list")
    fonts = (
        subprocess.run([fc_list, ":lang=zh", "family"], capture_output=True, text=True).stdout
        if fc_list
        else ""
    )
    if not fonts.strip():
        missing.append(
            "no CJK font, Chinese would render as boxes (apt-get install fonts-noto-cjk)"
        )
    return missing


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The system Chromium, or a skip with the reason (a failure under CI=true)."""
    missing = _missing_for_browser()
    if missing:
        reason = "dashboard page browser tests not run: " + "; ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI=true requires them: .ci/run installs what they need)")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright, expect

    # Two cores shared with the rest of the suite: give the page room, but stay bounded.
    expect.set_options(timeout=10_000)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """The git-ignored folder the screenshots go to, for a person to look at."""
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS


# -- the gateway as a process ---------------------------------------------------------------


@dataclass
class LiveGateway:
    base: str
    settings: GatewaySettings
    service: ServiceProcess


@pytest.fixture(scope="module")
async def live_gateway(
    chromium: Path, nats_url: str, subject_root: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveGateway]:
    folder = tmp_path_factory.mktemp("web")
    database = migrated_database("sqlite", ALEMBIC_INI, folder, "gateway_web")
    url = await anext(database)
    settings = GatewaySettings(
        database_url=url,
        nats_url=nats_url,
        subject_root=f"{subject_root}web",
        data_dir=folder,
        environment="test",
    )
    port = free_port()
    env = os.environ | {
        "GATEWAY_DATABASE_URL": url,
        "GATEWAY_PORT": str(port),
        "GATEWAY_OUTBOX_POLL_SECONDS": "0.5",
        "GONGHUI_NATS_URL": nats_url,
        "GONGHUI_SUBJECT_ROOT": settings.subject_root,
        "GONGHUI_DATA_DIR": str(folder),  # the dev signing key the test mints tokens with
        "GONGHUI_ENVIRONMENT": "test",
    }
    log = folder / "gateway.log"
    argv = [sys.executable, "-m", "uvicorn", "gateway.main:create_app", "--factory"]
    with log.open("w") as out:
        process = subprocess.Popen(
            [*argv, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    service = ServiceProcess("gateway", f"http://127.0.0.1:{port}", process, log)
    try:
        await service.wait_ready(30)
        yield LiveGateway(service.base, settings, service)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        await database.aclose()


# -- the county's events on NATS ------------------------------------------------------------


@dataclass
class EventFeed:
    """Publishes the services' events on NATS and waits until the gateway has applied them."""

    bus: Bus
    db: Database
    published: dict[str, set[str]] = field(default_factory=dict)  # durable -> event ids

    async def publish(
        self, event: Event, *, aggregate_id: str, org_path: str | None = None
    ) -> None:
        source = event.source()
        envelope = envelope_for(event, aggregate_id=aggregate_id, org_path=org_path)
        await self.bus.ensure_stream(source)
        await self.bus.js.publish(
            envelope.subject(self.bus.root),
            envelope.model_dump_json().encode(),
            headers={"Nats-Msg-Id": str(envelope.event_id)},
        )
        self.published.setdefault(DURABLE[source], set()).add(str(envelope.event_id))

    async def synced(self, timeout: float = 20.0) -> None:
        """Wait until every event published so far is in the gateway's inbox."""
        deadline = time.monotonic() + timeout
        for durable, wanted in self.published.items():
            while True:
                async with self.db.sessions() as session:
                    done = await session.scalar(
                        select(func.count())
                        .select_from(inbox)
                        .where(inbox.c.consumer == durable, inbox.c.event_id.in_(wanted))
                    )
                if done == len(wanted):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{durable} applied {done} of {len(wanted)} events")
                await asyncio.sleep(0.05)


def month_before(day: date) -> date:
    return (day.replace(day=1) - timedelta(days=1)).replace(day=10)


@dataclass
class County:
    """凤庆县 in small: what was published, and the figures it must show."""

    orgs: dict[str, dict[str, Any]]
    last_month: str  # YYYY-MM of the first training
    this_month: str


async def publish_county(feed: EventFeed) -> County:
    """Publish the known county; the figures are in the docstrings of the tests that read them.

    * units: the county, 3 townships (洛党镇 has no union), 5 villages (one without a union);
    * orgs: the county federation, 2 township unions, 4 village unions with locations;
    * 11 members: 6 migrant workers, 2 new-employment workers, 2 employees, 1 other;
      2 cadres (chairs of the township unions);
    * training: last month a welding course at 凤山镇 (3 persons x 2 days, 3 certificates,
      1,234.50 yuan); this month a cadre course at 勐佑镇 (2 persons x 1 day, 500.00 yuan);
    * stations: 凤山镇爱心驿站 (open), 勐佑镇职工驿站 (open), 京竹林服务点 (suspended);
      4 visits, one subsidy of 100.00 yuan.
    """
    today = datetime.now(UTC).date()
    last = month_before(today)
    now = today.replace(day=1)
    orgs: dict[str, dict[str, Any]] = {}

    async def org(
        key: str, parent: str | None, org_type: str, name: str, code: str, lon: float, lat: float
    ) -> None:
        org_id = new_id()
        path = f"{orgs[parent]['path'] if parent else '/'}{org_id}/"
        orgs[key] = {"id": org_id, "path": path, "name": name}
        await feed.publish(
            m.OrgCreated(
                org_id=org_id,
                parent_id=orgs[parent]["id"] if parent else None,
                path=path,
                org_type=org_type,
                name=name,
                region_code=code,
                lon=lon,
                lat=lat,
            ),
            aggregate_id=org_id,
            org_path=path,
        )

    units = [
        ("530921000000", "凤庆县", "county", None),
        ("530921101000", "凤山镇", "township", "530921000000"),
        ("530921102000", "勐佑镇", "township", "530921000000"),
        ("530921103000", "洛党镇", "township", "530921000000"),
        ("530921101201", "东城社区", "village", "530921101000"),
        ("530921101202", "京竹林村", "village", "530921101000"),
        ("530921101203", "安石村", "village", "530921101000"),
        ("530921102201", "勐佑村", "village", "530921102000"),
        ("530921102202", "新民村", "village", "530921102000"),
    ]
    await feed.publish(
        m.UnitsRegistered(
            import_id=new_id(),
            chunk=1,
            chunks=1,
            units=[
                m.RegisteredUnit(code=code, name=name, level=level, parent_code=parent)
                for code, name, level, parent in units
            ],
        ),
        aggregate_id="530921000000",
    )
    for key, parent, org_type, name, code, lon, lat in (
        ("county", None, "county_federation", "凤庆县总工会", "530921000000", 99.9286, 24.5803),
        ("fengshan", "county", "township_union", "凤山镇工会", "530921101000", 99.925, 24.59),
        ("mengyou", "county", "township_union", "勐佑镇工会", "530921102000", 100.02, 24.46),
        (
            "dongcheng",
            "fengshan",
            "village_union",
            "东城社区工会委员会",
            "530921101201",
            99.93,
            24.585,
        ),
        (
            "jingzhulin",
            "fengshan",
            "village_union",
            "京竹林村工会委员会",
            "530921101202",
            99.9,
            24.605,
        ),
        (
            "mengyoucun",
            "mengyou",
            "village_union",
            "勐佑村工会委员会",
            "530921102201",
            100.02,
            24.45,
        ),
        ("xinmin", "mengyou", "village_union", "新民村工会委员会", "530921102202", 100.029, 24.456),
    ):
        await org(key, parent, org_type, name, code, lon, lat)
    await feed.synced()

    members: dict[str, str] = {}
    serial = 0

    async def member(where: str, category: str, subtype: str | None = None) -> str:
        nonlocal serial
        serial += 1
        member_id, member_no = new_id(), f"530921{today.year}{serial:06d}"
        await feed.publish(
            m.MemberApproved(
                member_id=member_id,
                member_no=member_no,
                application_id=new_id(),
                org_id=orgs[where]["id"],
                name=f"会员{serial}",
                category=category,
                subtype=subtype,
                household_type="rural",
                gender="male" if serial % 2 else "female",
                birth_year=1975 + serial,
                approval_doc_no=f"凤工复〔{today.year}〕{serial}号",
                approved_at=datetime.now(UTC),
            ),
            aggregate_id=member_id,
            org_path=orgs[where]["path"],
        )
        members[member_no] = where
        return member_no

    dongcheng = [await member("dongcheng", "migrant_worker") for _ in range(3)]
    await member("dongcheng", "employee")
    await member("jingzhulin", "new_employment", "rider")
    await member("jingzhulin", "new_employment", "courier")
    await member("jingzhulin", "migrant_worker")
    mengyoucun = [await member("mengyoucun", "migrant_worker") for _ in range(2)]
    await member("mengyoucun", "other")
    await member("xinmin", "employee")
    for township, member_no in (("fengshan", dongcheng[0]), ("mengyou", mengyoucun[0])):
        cadre_id = new_id()
        await feed.publish(
            m.CadreAppointed(
                cadre_id=cadre_id,
                org_id=orgs[township]["id"],
                member_id=new_id(),
                member_no=member_no,
                role="chair",
                appointed_on=last,
            ),
            aggregate_id=cadre_id,
            org_path=orgs[township]["path"],
        )

    async def session(
        host: str,
        course_category: str,
        first_day: date,
        days: int,
        people: list[tuple[str, str | None, str]],  # person_key, member_no, worker_category
        spent_fen: int,
        certificates: bool,
    ) -> None:
        session_id, course_id = new_id(), new_id()
        host_id, path = orgs[host]["id"], orgs[host]["path"]
        starts = datetime(first_day.year, first_day.month, first_day.day, 1, tzinfo=UTC)
        await feed.publish(
            t.SessionScheduled(
                session_id=session_id,
                course_id=course_id,
                course_category=course_category,
                host_org_id=host_id,
                starts_at=starts,
                ends_at=starts + timedelta(days=days - 1, hours=8),
                delivery_mode="on_site",
                capacity=30,
                planned_budget_fen=spent_fen,
            ),
            aggregate_id=session_id,
            org_path=path,
        )
        for offset in range(days):
            for person_key, member_no, category in people:
                await feed.publish(
                    t.Attended(
                        attendance_id=new_id(),
                        session_id=session_id,
                        enrolment_id=new_id(),
                        host_org_id=host_id,
                        course_category=course_category,
                        person_key=person_key,
                        member_no=member_no,
                        worker_category=category,
                        day=first_day + timedelta(days=offset),
                        method="staff",
                    ),
                    aggregate_id=session_id,
                    org_path=path,
                )
        await feed.publish(
            t.SessionCompleted(
                session_id=session_id,
                course_id=course_id,
                course_category=course_category,
                host_org_id=host_id,
                enrolled=len(people),
                completed=len(people),
                person_times=days * len(people),
                unique_persons=len(people),
                spent_fen=spent_fen,
            ),
            aggregate_id=session_id,
            org_path=path,
        )
        if not certificates:
            return
        for n, (person_key, member_no, category) in enumerate(people, start=1):
            certificate_id = new_id()
            await feed.publish(
                t.CertificateIssued(
                    certificate_id=certificate_id,
                    number=f"FQ{first_day:%Y%m}{n:03d}",
                    session_id=session_id,
                    course_id=course_id,
                    course_category=course_category,
                    host_org_id=host_id,
                    person_key=person_key,
                    member_no=member_no,
                    worker_category=category,
                    issued_on=first_day + timedelta(days=days - 1),
                ),
                aggregate_id=certificate_id,
                org_path=path,
            )

    welders = [(f"m:{no}", no, "migrant_worker") for no in dongcheng]
    await session("fengshan", "welding_trades", last, 2, welders, 123450, certificates=True)
    cadres = [(f"m:{mengyoucun[0]}", mengyoucun[0], "migrant_worker")]
    cadres.append(("p:3f9a0c", None, "rural_labour"))
    await session("mengyou", "cadre_training", now, 1, cadres, 50000, certificates=False)

    stations: dict[str, dict[str, Any]] = {}
    for key, host, station_type, name, lon, lat in (
        ("aixin", "fengshan", "outdoor_worker_station", "凤山镇爱心驿站", 99.932, 24.583),
        ("mengyou", "mengyou", "village_service_point", "勐佑镇职工驿站", 100.0245, 24.453),
        ("jingzhulin", "jingzhulin", "village_service_point", "京竹林服务点", 99.901, 24.604),
    ):
        station_id = new_id()
        stations[key] = {"id": station_id, "host": host, "type": station_type}
        await feed.publish(
            s.StationOpened(
                station_id=station_id,
                station_type=station_type,
                name=name,
                host_org_id=orgs[host]["id"],
                region_code=None,
                lon=lon,
                lat=lat,
                amenities=["drinking_water", "phone_charging"],
            ),
            aggregate_id=station_id,
            org_path=orgs[host]["path"],
        )
    closed = stations["jingzhulin"]
    await feed.publish(
        s.StationSuspended(
            station_id=closed["id"],
            host_org_id=orgs[closed["host"]]["id"],
            station_type=closed["type"],
            reason="房屋维修",
        ),
        aggregate_id=closed["id"],
        org_path=orgs[closed["host"]]["path"],
    )
    for key, services in (
        ("aixin", ["drinking_water"]),
        ("aixin", ["drinking_water", "phone_charging"]),
        ("aixin", ["rest"]),
        ("mengyou", ["drinking_water", "toilets"]),
    ):
        station = stations[key]
        visited = datetime.now(UTC)
        await feed.publish(
            s.VisitRecorded(
                visit_id=new_id(),
                station_id=station["id"],
                station_type=station["type"],
                host_org_id=orgs[station["host"]]["id"],
                visited_at=visited,
                day=visited.date(),
                services=services,
            ),
            aggregate_id=station["id"],
            org_path=orgs[station["host"]]["path"],
        )
    subsidised = stations["mengyou"]
    await feed.publish(
        s.SubsidyPaid(
            subsidy_id=new_id(),
            station_id=subsidised["id"],
            host_org_id=orgs["mengyou"]["id"],
            period=f"{now:%Y-%m}",
            amount_fen=10000,
            paid_on=now,
        ),
        aggregate_id=subsidised["id"],
        org_path=orgs["mengyou"]["path"],
    )
    await feed.synced()
    return County(orgs=orgs, last_month=f"{last:%Y-%m}", this_month=f"{now:%Y-%m}")


@pytest.fixture(scope="module")
async def county(live_gateway: LiveGateway) -> AsyncIterator[County]:
    """The known county, applied by the running gateway."""
    settings = live_gateway.settings
    bus = Bus(settings.nats_url, "web-test-feed", root=settings.subject_root)
    bus.start()
    assert await bus.connected(10), "NATS did not answer"
    db = Database(settings.database_url)
    try:
        yield await publish_county(EventFeed(bus, db))
    finally:
        await bus.close()
        await db.dispose()


@dataclass
class Official:
    username: str
    password: str


@pytest.fixture(scope="module")
async def official(live_gateway: LiveGateway, county: County) -> Official:
    """The county admin of 凤庆县总工会, who logs in with a username and password.

    The account row is written as the accounts service writes it: creating it through
    `POST /v1/accounts` would ask the membership service (not running here) for the org.
    """
    settings = live_gateway.settings
    official = Official("fengqing", "Fengqing-2026-dashboard")
    org = county.orgs["county"]
    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            session.add(
                Account(
                    username=official.username,
                    password_hash=hash_password(official.password, n=settings.password_scrypt_n),
                    role="county_admin",
                    org_id=org["id"],
                    org_path=org["path"],
                    active=True,
                    created_by="test",
                )
            )
    finally:
        await db.dispose()
    return official


def _is_info(line: str) -> bool:
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    return isinstance(entry, dict) and entry.get("level") == "info"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing browser test shows the warnings and errors the gateway logged."""
    report = yield
    gateway = getattr(item, "funcargs", {}).get("live_gateway")
    if report.failed and isinstance(gateway, LiveGateway):
        lines = gateway.service.log_text().splitlines()
        worth = [line[:3000] for line in lines if not _is_info(line)]
        report.sections.append(("gateway log: warnings and errors", "\n".join(worth[-20:])))
    return report
