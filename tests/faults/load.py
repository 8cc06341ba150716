"""The load: admissions, enrolments with attendance, and station visits, through the gateway.

Every write carries an `Idempotency-Key` and is retried with that same key while the
platform cannot answer (a transport error, a 5xx, 429, or 409 `idempotency_in_progress`),
until it gets an answer or its deadline passes. The ledger keeps every write and what the
client saw: `acked` (a 2xx, replayed or not), `refused` (another 4xx) or `gave_up`.

Each fault has its own village union, with its own training session and station, so the
dashboard figures of that org are the figures of that fault's writes alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from gonghui_shared.clock import CHINA
from gonghui_shared.testing import auth_header
from membership.rosters.template import write_roster_csv
from membership.testing import valid_id_number
from tests.faults.harness import ADMIN_PASSWORD, FaultPlatform

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
SESSION_DAYS = 21
# How many writes of a flow are in flight at once, at most (flows wait for a slot).
CONCURRENCY = 8
WITHDRAW_SHARE = 0.2  # of admitted members, who then leave: two events on one member
# Serials of imported workers start here, apart from the load's own.
IMPORT_SERIALS = 5_000_000


class SetupFailed(RuntimeError):
    """The world the load needs could not be built (the platform is not healthy)."""


@dataclass
class Write:
    """One write the client sent, and what came of it."""

    kind: str  # apply, approve, withdraw, enrol, attend, visit
    phase: str
    key: str  # its Idempotency-Key, the same on every retry
    started: float
    probe: bool = False
    tag: str | None = None  # what the service stores of the write, to find it (or it twice)
    finished: float | None = None
    outcome: str = "pending"  # acked, refused, gave_up
    status: int | None = None
    attempts: int = 0
    replayed: bool = False
    error: str | None = None
    ids: dict[str, str] = field(default_factory=dict)
    # Answers that made the client try again: "503 database_unavailable", "ConnectError"…
    retried: Counter[str] = field(default_factory=Counter)

    @property
    def acked(self) -> bool:
        return self.outcome == "acked"


@dataclass
class PhaseWorld:
    """What one fault's writes go to."""

    name: str
    org: dict[str, Any]
    roster_id: str
    session_id: str
    session_days: list[date]
    station_id: str


@dataclass
class World:
    county: dict[str, Any]
    township: dict[str, Any]
    course_id: str
    admin: dict[str, str]  # the platform admin's bearer header
    county_admin: dict[str, str]
    phases: dict[str, PhaseWorld] = field(default_factory=dict)


class Load:
    """The client: builds the world, runs flows, keeps the ledger."""

    def __init__(self, platform: FaultPlatform, *, write_deadline: float = 45.0) -> None:
        self.platform = platform
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(15.0, connect=2.0),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )
        self.write_deadline = write_deadline
        self.ledger: list[Write] = []
        self._serial = 0
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._world: World | None = None
        self._random = random.Random(7)

    async def aclose(self) -> None:
        await self.client.aclose()

    @property
    def world(self) -> World:
        assert self._world is not None, "build the world first"
        return self._world

    def url(self, path: str) -> str:
        return f"{self.platform.gateway}{path}"

    def next_serial(self) -> int:
        self._serial += 1
        return self._serial

    # ------------------------------------------------------------------ plain calls

    async def _call(self, method: str, path: str, headers: dict[str, str], **kw: Any) -> Any:
        response = await self.client.request(method, self.url(path), headers=headers, **kw)
        if response.status_code >= 300:
            raise SetupFailed(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    async def _eventually(
        self, method: str, path: str, headers: dict[str, str], timeout: float = 30.0, **kw: Any
    ) -> Any:
        """Retry while a replica catches up (training or stations learning a new org)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return await self._call(method, path, headers, **kw)
            except (SetupFailed, httpx.TransportError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def sign_in(self, username: str, password: str) -> dict[str, str]:
        tokens = await self._call(
            "POST",
            "/v1/auth/token",
            {},
            data={"grant_type": "password", "username": username, "password": password},
        )
        return auth_header(tokens["access_token"])

    # ------------------------------------------------------------------ the world

    async def build_world(self, phases: list[str]) -> World:
        admin = await self.sign_in("admin", ADMIN_PASSWORD)
        county = await self._call(
            "POST",
            "/v1/membership/orgs",
            admin,
            json={
                "org_type": "county_federation",
                "name": "故障县总工会",
                "region_code": "530921000000",
            },
        )
        township = await self._call(
            "POST",
            "/v1/membership/orgs",
            admin,
            json={
                "parent_id": county["id"],
                "org_type": "township_union",
                "name": "故障镇工会",
                "region_code": "530921101000",
            },
        )
        username = f"faults_{uuid.uuid4().hex[:6]}"
        await self._call(
            "POST",
            "/v1/accounts",
            admin,
            json={
                "username": username,
                "password": f"{username}-pass-2026",
                "role": "county_admin",
                "org_id": county["id"],
            },
        )
        county_admin = await self.sign_in(username, f"{username}-pass-2026")
        course = await self._eventually(
            "POST",
            "/v1/training/courses",
            county_admin,
            json={
                "owner_org_id": county["id"],
                "title": "安全生产与职业健康",
                "category": "safety",
                "leads_to_certificate": False,
                "min_attendance_rate": 0.8,
                "hours": 16,
            },
        )
        self._world = World(county, township, course["id"], admin, county_admin)
        for n, name in enumerate(phases, start=1):
            self._world.phases[name] = await self._phase_world(name, n)
        return self._world

    async def _phase_world(self, name: str, n: int) -> PhaseWorld:
        world = self.world
        org = await self._call(
            "POST",
            "/v1/membership/orgs",
            world.admin,
            json={
                "parent_id": world.township["id"],
                "org_type": "village_union",
                "name": f"{name}村工会委员会",
                "region_code": f"530921101{200 + n:03d}",
                "lon": 99.92 + n * 0.01,
                "lat": 24.58,
            },
        )
        roster = await self._call(
            "POST",
            "/v1/membership/rosters",
            world.county_admin,
            json={"org_id": org["id"], "title": f"{name}入会名册"},
        )
        today = datetime.now(CHINA).date()
        first = today - timedelta(days=SESSION_DAYS - 1)
        starts = datetime.combine(first, datetime.min.time(), CHINA) + timedelta(hours=9)
        ends = datetime.combine(today, datetime.min.time(), CHINA) + timedelta(hours=17)
        session = await self._eventually(
            "POST",
            "/v1/training/sessions",
            world.county_admin,
            json={
                "course_id": world.course_id,
                "host_org_id": org["id"],
                "starts_at": starts.isoformat(),
                "ends_at": ends.isoformat(),
                "place": f"{name}村职工之家",
                "delivery_mode": "on_site",
                "capacity": 10000,
            },
        )
        for step in ("open", "start"):
            await self._call(
                "POST", f"/v1/training/sessions/{session['id']}/{step}", world.county_admin, json={}
            )
        station = await self._eventually(
            "POST",
            "/v1/stations/stations",
            world.county_admin,
            json={
                "station_type": "outdoor_worker_station",
                "name": f"{name}村爱心驿站",
                "host_org_id": org["id"],
                "lon": 99.92 + n * 0.01,
                "lat": 24.581,
                "crs": "wgs84",
            },
        )
        days = [first + timedelta(days=i) for i in range(SESSION_DAYS)]
        return PhaseWorld(name, org, roster["id"], session["id"], days, station["id"])

    # ------------------------------------------------------------------ one write

    async def write(
        self,
        kind: str,
        phase: str,
        path: str,
        body: dict[str, Any],
        *,
        probe: bool = False,
        tag: str | None = None,
    ) -> Write:
        """POST `body` until answered (same Idempotency-Key every time), into the ledger."""
        record = Write(kind, phase, str(uuid.uuid4()), time.monotonic(), probe=probe, tag=tag)
        self.ledger.append(record)
        headers = self.world.county_admin | {"Idempotency-Key": record.key}
        deadline = record.started + self.write_deadline
        delay = 0.1
        while True:
            record.attempts += 1
            try:
                response = await self.client.post(self.url(path), headers=headers, json=body)
            except httpx.TransportError as exc:
                record.error = type(exc).__name__
                record.retried[record.error] += 1
            else:
                record.status = response.status_code
                code = _error_code(response)
                retried = response.status_code in RETRIED_STATUSES or (
                    response.status_code == 409 and code == "idempotency_in_progress"
                )
                if not retried:
                    record.finished = time.monotonic()
                    if response.is_success:
                        record.outcome = "acked"
                        record.replayed = response.headers.get("idempotent-replayed") == "true"
                        record.ids = _ids(kind, response.json())
                    else:
                        record.outcome, record.error = "refused", code
                    return record
                record.error = code or str(response.status_code)
                record.retried[f"{response.status_code} {code or ''}".strip()] += 1
            if time.monotonic() + delay > deadline:
                record.finished, record.outcome = time.monotonic(), "gave_up"
                return record
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    # ------------------------------------------------------------------ flows

    async def admission(self, phase: str, *, probe: bool = False) -> list[Write]:
        """Apply, approve; a share of the new members then withdraw."""
        place = self.world.phases[phase]
        serial = self.next_serial()
        applied = await self.write(
            "apply",
            phase,
            "/v1/membership/applications",
            applicant_body(serial, place),
            probe=probe,
            tag=form_ref(serial),
        )
        if not applied.acked:
            return [applied]
        approved = await self.write(
            "approve",
            phase,
            f"/v1/membership/applications/{applied.ids['application_id']}/approve",
            {"approval_doc_no": "故工复〔2026〕1号"},
            probe=probe,
        )
        approved.ids["application_id"] = applied.ids["application_id"]
        writes = [applied, approved]
        if approved.acked and not probe and self._random.random() < WITHDRAW_SHARE:
            withdrawn = await self.write(
                "withdraw",
                phase,
                f"/v1/membership/members/{approved.ids['member_no']}/withdraw",
                {"reason": "本人申请退会"},
            )
            withdrawn.ids["member_no"] = approved.ids["member_no"]
            writes.append(withdrawn)
        return writes

    async def training(self, phase: str, *, probe: bool = False) -> list[Write]:
        """A non-member enrols and checks in on one or two of the session's days."""
        place = self.world.phases[phase]
        serial = self.next_serial()
        enrolled = await self.write(
            "enrol",
            phase,
            f"/v1/training/sessions/{place.session_id}/enrolments",
            {
                "name": f"学员{serial}",
                "id_number": id_number(serial, male=False),
                "phone": phone(serial),
            },
            probe=probe,
        )
        if not enrolled.acked:
            return [enrolled]
        writes = [enrolled]
        days = self._random.sample(place.session_days, 1 if probe else self._random.randint(1, 2))
        for day in days:
            attended = await self.write(
                "attend",
                phase,
                f"/v1/training/sessions/{place.session_id}/attendance",
                {"enrolment_id": enrolled.ids["enrolment_id"], "day": day.isoformat()},
                probe=probe,
            )
            attended.ids |= {"enrolment_id": enrolled.ids["enrolment_id"], "day": day.isoformat()}
            writes.append(attended)
        return writes

    async def visit(self, phase: str, *, probe: bool = False) -> list[Write]:
        """An anonymous visit; its comment is its tag, to find it (or it twice) later."""
        place = self.world.phases[phase]
        tag = f"fault-load {uuid.uuid4()}"
        services = self._random.sample(
            ["drinking_water", "phone_charging", "rest", "heating_food"], 2
        )
        record = await self.write(
            "visit",
            phase,
            f"/v1/stations/stations/{place.station_id}/visits",
            {"services": services, "comment": tag},
            probe=probe,
            tag=tag,
        )
        return [record]

    async def import_roster(self, org_id: str, count: int) -> int:
        """A roster file of `count` workers, imported in one request: `count` applications
        and their events committed at once, a backlog for membership's relay."""
        rows = []
        for _ in range(count):
            serial = IMPORT_SERIALS + self.next_serial()
            rows.append(
                {
                    "name": f"导入{serial}",
                    "id_number": id_number(serial),
                    "phone": phone(serial),
                    "household_type": "农村",
                    "category": "农民工",
                    "subtype": "",
                    "employer": "凤庆县滇红茶厂",
                    "form_ref": f"IMPORT-{serial}",
                }
            )
        out = io.StringIO(newline="")
        write_roster_csv(rows, out)
        # The service may be killed before it answers (that is the point): its answer
        # does not matter, only that the applications were committed.
        with contextlib.suppress(httpx.TransportError):
            await self.client.post(
                self.url("/v1/membership/rosters/import"),
                headers=self.world.county_admin,
                params={"org_id": org_id},
                files={"file": ("花名册.csv", out.getvalue().encode(), "text/csv")},
            )
        return count

    def flows(self) -> list[Callable[..., Any]]:
        return [self.admission, self.training, self.visit]

    async def run(self, phase: str, stop: asyncio.Event, *, rate: float, max_flows: int) -> None:
        """Start flows at `rate` a second, at most `max_flows`, until `stop`; then wait for
        the flows in flight to finish (each write is bounded by its deadline)."""
        tasks: set[asyncio.Task[Any]] = set()
        flows = self.flows()
        started = 0
        next_at = time.monotonic()
        while not stop.is_set() and started < max_flows:
            await self._slots.acquire()
            if stop.is_set():
                self._slots.release()
                break
            flow = flows[started % len(flows)]
            task = asyncio.create_task(flow(phase))
            task.add_done_callback(lambda _: self._slots.release())
            tasks.add(task)
            started += 1
            next_at += 1.0 / rate
            delay = next_at - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
            else:
                next_at = time.monotonic()  # behind (the platform is slow): no burst after
        if tasks:
            await asyncio.gather(*tasks)

    async def probe(self, phase: str) -> list[Write]:
        """One of each flow, concurrently, each until its writes are answered."""
        done = await asyncio.gather(*(flow(phase, probe=True) for flow in self.flows()))
        return [write for writes in done for write in writes]

    # ------------------------------------------------------------------ reading

    async def dashboard(self, org_id: str) -> dict[str, Any] | None:
        """The org's overview figures, or None while the gateway cannot answer."""
        try:
            response = await self.client.get(
                self.url("/v1/dashboard/overview"),
                params={"org_id": org_id},
                headers=self.world.county_admin,
            )
        except httpx.TransportError:
            return None
        if response.status_code != 200:
            return None
        figures: dict[str, Any] = response.json()["figures"]
        return figures


def dashboard_figures(figures: dict[str, Any]) -> dict[str, int]:
    """The figures the suite compares, flat."""
    return {
        "new_members": figures["members"]["new_members"],
        "active_members": figures["members"]["active"],
        "withdrawn_members": next(
            (s["count"] for s in figures["members"]["by_status"] if s["key"] == "withdrawn"), 0
        ),
        "person_times": figures["training"]["person_times"],
        "unique_persons": figures["training"]["unique_persons"],
        "visits": figures["stations"]["visits"],
    }


def acked_figures(writes: list[Write]) -> dict[str, int]:
    """What the dashboard must show at least, from the writes acknowledged so far."""
    kinds = {
        "approve": "new_members",
        "withdraw": "withdrawn_members",
        "attend": "person_times",
        "visit": "visits",
    }
    counts = dict.fromkeys(kinds.values(), 0)
    for write in writes:
        if write.acked and write.kind in kinds:
            counts[kinds[write.kind]] += 1
    return counts


def id_number(serial: int, *, male: bool = True) -> str:
    """A valid ID number per serial: 500 per birth day (membership's helper varies the
    3-digit sequence only), so the day moves on every 500."""
    birth = date(1975, 1, 1) + timedelta(days=serial // 500)
    return valid_id_number(serial % 500, birth=birth.strftime("%Y%m%d"), male=male)


def phone(serial: int) -> str:
    return f"139{serial % 100_000_000:08d}"


def applicant_body(serial: int, place: PhaseWorld) -> dict[str, Any]:
    return {
        "org_id": place.org["id"],
        "roster_id": place.roster_id,
        "name": f"会员{serial}",
        "id_number": id_number(serial),
        "phone": phone(serial),
        "household_type": "rural",
        "category": "migrant_worker",
        "employer": "凤庆县滇红茶厂",
        "form_ref": form_ref(serial),
    }


def form_ref(serial: int) -> str:
    return f"FAULT-{serial}"


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return str(code) if code else None
    return None


def _ids(kind: str, body: dict[str, Any]) -> dict[str, str]:
    if kind == "apply":
        return {"application_id": body["id"]}
    if kind == "approve":
        return {"member_no": body["member"]["member_no"]}
    if kind == "withdraw":
        return {}
    if kind == "enrol":
        return {"enrolment_id": body["id"]}
    if kind == "attend":
        return {"attendance_id": body["id"]}
    if kind == "visit":
        return {"visit_id": body["id"]}
    raise ValueError(kind)
