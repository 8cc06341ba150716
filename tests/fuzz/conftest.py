"""Fuzzing every service's OpenAPI with schemathesis: the services, their seeds, the counts.

Each service runs in-process (schemathesis' ASGI transport starts its lifespan on an event
loop of its own) on a fresh migrated database, with a seeded county whose admin every
request is made as, so requests get past authentication and into the handlers. One test
per operation, per service and database: `pytest tests/fuzz -k "membership and orgs"`.

Environment: `FUZZ_EXAMPLES` (examples per operation, default 12); `FUZZ_BACKENDS`
(`sqlite`, `postgres` or both, comma separated; default PostgreSQL when TEST_POSTGRES_URL
is set, else SQLite); `FUZZ_RANDOM=1` draws new examples each run (`make fuzz`), where
`make test` replays the same derandomised ones, so it fails only when the code changes.

The gateway is fuzzed without the operations that ask another service (they answer 503
here, where none runs); those services are fuzzed on their own.

(schemathesis' pytest integration is not used: its lazy `from_fixture` schemas set pytest's
private `Node._nodeid`, gone in pytest 9.2, and its plugin ends every ASGI app's lifespan
after each test, so pyproject.toml turns the plugin off. Its Hypothesis strategies per
operation, its checks and its ASGI transport are what we use.)
"""

from __future__ import annotations

import asyncio
import importlib
import os
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import httpx
import pytest
import requests
import schemathesis
from alembic import command
from fastapi import FastAPI
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi
from sqlalchemy import Table

from gonghui_shared.bus import Bus
from gonghui_shared.db import Database
from gonghui_shared.permissions import Role
from gonghui_shared.settings import ServiceSettings
from gonghui_shared.testing import (
    alembic_config,
    auth_header,
    create_postgres_database,
    drop_postgres_database,
    postgres_url_or_skip,
    token_for,
)
from gonghui_shared.testing.driver import ApiDriver
from gonghui_shared.testing.feed import MembershipFeed

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or 12)
RANDOM = os.environ.get("FUZZ_RANDOM") == "1"
BACKENDS = [
    b.strip()
    for b in (
        os.environ.get("FUZZ_BACKENDS")
        or ("postgres" if os.environ.get("TEST_POSTGRES_URL") else "sqlite")
    ).split(",")
    if b.strip()
]

T = TypeVar("T")


def in_thread(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on an event loop of its own, in a thread (pytest-asyncio owns ours)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(work())).result()


Known = dict[str, str]  # parameter or body field name -> the id of a seeded entity


@dataclass
class Seeded:
    county: dict[str, Any]  # the county admin's scope
    known: Known


Seed = Callable[[ApiDriver, ServiceSettings], Coroutine[Any, Any, Seeded]]


@dataclass
class Service:
    """A service under fuzz: how to build it, and how to fill it with a county to act in."""

    name: str
    settings: type[ServiceSettings]
    create_app: Callable[[Any], FastAPI]
    seed: Seed
    # Operations left out, by OpenAPI tag or by label ("POST /v1/accounts"): the gateway's,
    # that ask another service, answer 503 here, where none runs (those services are fuzzed
    # on their own).
    skip: frozenset[str] = frozenset()


class _ThroughAsgiClient(httpx.AsyncBaseTransport):
    """httpx requests answered by schemathesis' ASGI client (the app runs on its loop), so
    the services' async test helpers can seed the app from a loop of our own."""

    def __init__(self, client: requests.Session) -> None:
        self.client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        answer = await asyncio.to_thread(
            self.client.request,
            request.method,
            str(request.url),
            headers={k: v for k, v in request.headers.items() if k.lower() != "content-length"},
            data=body or None,
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


def seed(app: FastAPI, service: Service, settings: ServiceSettings) -> Seeded:
    async def run() -> Seeded:
        with asgi.get_client(app) as client:
            transport = _ThroughAsgiClient(client)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                return await service.seed(ApiDriver(c, settings), settings)

    return in_thread(run)


async def seed_membership(api: ApiDriver, settings: ServiceSettings) -> Seeded:
    """A county, township and village; a roster, a member, a pending application, a cadre."""
    from membership.testing import Api

    membership = Api(api.client, settings)
    county, _, village = await membership.tree()
    roster = await membership.roster(village)
    member = (await membership.approve(county, await membership.apply(village, roster)))["member"]
    pending = await membership.apply(village, roster)
    cadre = await membership.ok(
        "POST",
        f"/v1/orgs/{village['id']}/cadres",
        expect=201,
        json={"member_no": member["member_no"], "role": "chair", "appointed_on": "2026-01-01"},
    )
    return Seeded(
        county,
        {
            "org_id": village["id"],
            "roster_id": roster["id"],
            "application_id": pending["id"],
            "member_no": member["member_no"],
            "cadre_id": cadre["id"],
            "code": village["region_code"],
            "parent_id": village["id"],
        },
    )


async def membership_tree(
    settings: ServiceSettings, inbox: Table, durable: str
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Training, stations: a county and a village, and a member, as membership's events."""
    bus = Bus(settings.nats_url, "fuzz-seed", root=settings.subject_root)
    bus.start()
    db = Database(settings.database_url)
    try:
        assert await bus.connected(10), "NATS did not answer"
        runtime: Any = SimpleNamespace(bus=bus, db=db)
        feed = MembershipFeed(runtime, inbox, durable)
        county, _, village = await feed.tree()
        return county, village, await feed.member(village)
    finally:
        await bus.close()
        await db.dispose()


async def seed_training(api: ApiDriver, settings: ServiceSettings) -> Seeded:
    """The county from membership's events; a course, an open session, an enrolment."""
    from training.base import inbox
    from training.events.handlers import MEMBERSHIP
    from training.testing import open_session

    county, village, member_no = await membership_tree(settings, inbox, MEMBERSHIP.durable)
    session = await open_session(api, village)
    enrolment = await api.ok(
        "POST",
        f"/v1/sessions/{session['id']}/enrolments",
        expect=201,
        json={"member_no": member_no},
    )
    return Seeded(
        county,
        {
            "org_id": village["id"],
            "host_org_id": village["id"],
            "owner_org_id": village["id"],
            "member_no": member_no,
            "session_id": session["id"],
            "course_id": session["course_id"],
            "enrolment_id": enrolment["id"],
        },
    )


async def seed_stations(api: ApiDriver, settings: ServiceSettings) -> Seeded:
    """The county from membership's events, and a station in its village."""
    from stations.base import inbox
    from stations.events.handlers import MEMBERSHIP
    from stations.testing import Api, open_station

    county, village, member_no = await membership_tree(settings, inbox, MEMBERSHIP.durable)
    station = await open_station(Api(api.client, settings), village)
    return Seeded(
        county,
        {
            "org_id": village["id"],
            "host_org_id": village["id"],
            "member_no": member_no,
            "station_id": station["id"],
        },
    )


# The gateway's own operations that look an org up in membership.
GATEWAY_ASKS = {"POST /v1/accounts", "PATCH /v1/accounts/{account_id}", "POST /v1/api-keys"}


async def seed_gateway(api: ApiDriver, settings: ServiceSettings) -> Seeded:
    """The county from membership's events (the dashboards' read model)."""
    from gateway.base import inbox
    from gateway.dashboards.handlers import DURABLE

    county, _, _ = await membership_tree(settings, inbox, DURABLE["membership"])
    return Seeded(county, {})


def conventional(name: str, seed: Seed, skip: frozenset[str] = frozenset()) -> Service:
    """The service whose settings class is in `<name>.config`, its app `<name>.main:create_app`."""
    config = importlib.import_module(f"{name}.config")
    settings = next(
        value
        for value in vars(config).values()
        if isinstance(value, type)
        and issubclass(value, ServiceSettings)
        and value is not ServiceSettings
    )
    return Service(name, settings, importlib.import_module(f"{name}.main").create_app, seed, skip)


# One line per service; a new one needs its seed (a county its admin acts in).
SERVICES = {
    s.name: s
    for s in (
        conventional("membership", seed_membership),
        conventional("training", seed_training),
        conventional("stations", seed_stations),
        conventional("gateway", seed_gateway, frozenset({"routing", "me", *GATEWAY_ASKS})),
    )
}


def operation_labels(service: Service) -> list[str]:
    """`GET /v1/orgs/{org_id}`, … as the service's OpenAPI lists them (no app started)."""
    document = service.create_app(service.settings(database_url="sqlite://")).openapi()
    return [
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method, spec in item.items()
        if method in {"get", "put", "post", "patch", "delete"}
        and not service.skip & {*spec.get("tags", []), f"{method.upper()} {path}"}
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per (service, database, operation), in that order: one start per service."""
    if "fuzz_operation" not in metafunc.fixturenames:
        return
    metafunc.parametrize(
        ("fuzz_target", "fuzz_operation"),
        [
            pytest.param((name, backend), label, id=f"{name}-{backend}-{label}")
            for name, service in SERVICES.items()
            for backend in BACKENDS
            for label in operation_labels(service)
        ],
        indirect=["fuzz_target"],
    )


@dataclass
class FuzzTarget:
    """One service on one database, running, seeded, with its county admin's headers."""

    service: str
    backend: str
    schema: Any
    token: Callable[[], str]  # a new one each time: a request may log its own out
    known: Known  # ids of seeded entities, by parameter or body field name
    examples: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return auth_header(self.token())

    def count(self, status: int) -> None:
        self.examples += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1


@contextmanager
def running(
    name: str, backend: str, folder: Path, nats_url: str, subject_root: str, data_dir: Path
) -> Iterator[FuzzTarget]:
    """The service on a fresh migrated database of `backend`, started and seeded."""
    service = SERVICES[name]
    ini = REPO / "services" / name / "alembic.ini"
    admin = None
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / f'fuzz-{name}.db'}"
    else:
        admin = postgres_url_or_skip()
        url = in_thread(lambda: create_postgres_database(admin, f"gonghui_fuzz_{name}"))
    try:
        in_thread(lambda: asyncio.to_thread(command.upgrade, alembic_config(ini, url), "head"))
        settings = service.settings(
            database_url=url,
            nats_url=nats_url,
            # a root of its own: the seeds publish membership's events
            subject_root=f"{subject_root}fz{uuid.uuid4().hex[:6]}",
            data_dir=data_dir,
            environment="test",
            outbox_poll_seconds=0.2,
        )
        app = service.create_app(settings)
        # Starts the app's lifespan on schemathesis' ASGI event loop, where it keeps running.
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
        try:
            seeded = seed(app, service, settings)
            county = seeded.county

            def token() -> str:
                return token_for(
                    settings, Role.county_admin, org_id=county["id"], org_path=county["path"]
                )

            yield FuzzTarget(name, backend, schema, token, seeded.known)
        finally:
            asgi.shutdown_lifespans()
    finally:
        if admin is not None:
            in_thread(lambda: drop_postgres_database(admin, url))


# The token is ours: negative cases are about the request, not about dropping the token.
CONFIG = SchemathesisConfig.from_dict({"generation": {"with-security-parameters": False}})


class FuzzPool:
    """One running service at a time: tests come grouped by service and database."""

    def __init__(self, start: Callable[[str, str], AbstractContextManager[FuzzTarget]]) -> None:
        self.start = start
        self.current: FuzzTarget | None = None
        self.stack = ExitStack()
        self.done: list[FuzzTarget] = []

    def get(self, name: str, backend: str) -> FuzzTarget:
        current = self.current
        if current is not None and (current.service, current.backend) == (name, backend):
            return current
        self.close()
        self.current = self.stack.enter_context(self.start(name, backend))
        return self.current

    def close(self) -> None:
        if self.current is not None:
            self.done.append(self.current)
            self.current = None
        self.stack.close()


_POOL = pytest.StashKey[FuzzPool]()


@pytest.fixture(scope="session")
def fuzz_pool(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    nats_url: str,
    subject_root: str,
    data_dir: Path,
) -> Iterator[FuzzPool]:
    folder = tmp_path_factory.mktemp("fuzz")
    pool = FuzzPool(
        lambda name, backend: running(name, backend, folder, nats_url, subject_root, data_dir)
    )
    request.config.stash[_POOL] = pool
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def fuzz_target(request: pytest.FixtureRequest, fuzz_pool: FuzzPool) -> FuzzTarget:
    name, backend = request.param
    return fuzz_pool.get(name, backend)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    pool = config.stash.get(_POOL, None)
    if pool is None or not pool.done:
        return
    targets = pool.done
    terminalreporter.section("schemathesis: examples run per service")
    for t in targets:
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(t.statuses.items()))
        terminalreporter.write_line(
            f"{t.service} on {t.backend}: {t.examples} requests "
            f"(FUZZ_EXAMPLES={EXAMPLES}{', random' if RANDOM else ''}) — statuses {statuses}"
        )
