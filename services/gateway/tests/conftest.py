"""Gateway fixtures: a migrated database per backend and the running app, and (for the
tests that route to them) membership, training and stations running for real.

The three services each have their own migrated database (of the session's backend) and
share one subject root, so training and stations learn orgs and members from membership's
events over NATS, as in production. They verify the tokens the tests sign with the
gateway's settings because all use the session's `data_dir`, where the dev key lives.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

import membership
import stations
import training
from gateway.config import GatewaySettings
from gateway.main import create_app
from gateway.models import Base
from gateway.routing.testing import LoopbackServer
from gonghui_shared.settings import ServiceSettings
from gonghui_shared.testing import BACKENDS, migrated_database, truncate_all
from membership.config import MembershipSettings
from membership.main import create_app as membership_app
from membership.testing import Api as MembershipApi
from stations.config import StationsSettings
from stations.main import create_app as stations_app
from training.config import TrainingSettings
from training.main import create_app as training_app

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


@pytest.fixture(scope="session", params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A database migrated to head, once per backend."""
    folder = tmp_path_factory.mktemp("gateway")
    async for url in migrated_database(request.param, ALEMBIC_INI, folder, "gateway"):
        yield url


@pytest.fixture(scope="session")
def settings(
    database_url: str, nats_url: str, subject_root: str, data_dir: Path
) -> GatewaySettings:
    return GatewaySettings(
        database_url=database_url,
        nats_url=nats_url,
        # A root of its own: the other services' tests publish their events too.
        subject_root=f"{subject_root}gw",
        data_dir=data_dir,
        environment="test",
        outbox_poll_seconds=0.2,
    )


@pytest.fixture(scope="session")
async def app(settings: GatewaySettings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert await app.state.runtime.bus.connected(10), "NATS did not answer"
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    await truncate_all(app.state.runtime.db, Base.metadata)
    app.state.limits.reset()  # one app serves the session: each test starts uncounted
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


_SPECS: list[tuple[Any, type[ServiceSettings], Callable[[Any], FastAPI]]] = [
    (membership, MembershipSettings, membership_app),
    (training, TrainingSettings, training_app),
    (stations, StationsSettings, stations_app),
]


@dataclass
class Running:
    """A service running for real: its app (and runtime) and the server it listens on."""

    name: str
    app: FastAPI
    server: LoopbackServer

    @property
    def url(self) -> str:
        return self.server.url

    async def until(self, model: Any, timeout: float = 10.0, **where: Any) -> None:
        """Wait until the service's database has a row of `model` matching `where`
        (an org or member it learns from membership's events)."""
        deadline = time.monotonic() + timeout
        query = select(func.count()).select_from(model).filter_by(**where)
        while True:
            async with self.app.state.runtime.db.sessions() as session:
                if await session.scalar(query):
                    return
            assert time.monotonic() < deadline, f"{self.name} never saw {model.__name__} {where}"
            await asyncio.sleep(0.05)


@pytest.fixture(scope="session")
async def services(
    settings: GatewaySettings,
    nats_url: str,
    subject_root: str,
    data_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[dict[str, Running]]:
    """The three services of the session's backend, each on its own loopback port."""
    backend = "sqlite" if settings.database_url.startswith("sqlite") else "postgres"
    folder = tmp_path_factory.mktemp(f"services-{backend}")
    running: dict[str, Running] = {}
    async with AsyncExitStack() as stack:
        for package, settings_class, factory in _SPECS:
            name = package.__name__
            ini = Path(package.__file__).resolve().parents[2] / "alembic.ini"
            databases = migrated_database(backend, ini, folder, f"gw_{name}")
            url = await anext(databases)
            stack.push_async_callback(databases.aclose)
            app = factory(
                settings_class(
                    database_url=url,
                    nats_url=nats_url,
                    subject_root=f"{subject_root}me{backend}",
                    data_dir=data_dir,
                    environment="test",
                    outbox_poll_seconds=0.1,
                    # The gateway calls them from loopback: they believe its X-Forwarded-For.
                    trusted_proxies="127.0.0.1",
                )
            )
            await stack.enter_async_context(app.router.lifespan_context(app))
            server = LoopbackServer(app)
            await server.start()
            stack.push_async_callback(server.stop)
            running[name] = Running(name, app, server)
        yield running


@pytest.fixture(scope="session")
def me_settings(settings: GatewaySettings, services: dict[str, Running]) -> GatewaySettings:
    return settings.model_copy(
        update={
            "membership_url": services["membership"].url,
            "training_url": services["training"].url,
            "stations_url": services["stations"].url,
        }
    )


@pytest.fixture
async def direct(services: dict[str, Running]) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """Clients of the services themselves, over HTTP, bypassing the gateway."""
    clients = {name: httpx.AsyncClient(base_url=s.url, timeout=30) for name, s in services.items()}
    try:
        yield clients
    finally:
        for client in clients.values():
            await client.aclose()


_counties = itertools.count(1)
Tree = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


@pytest.fixture
def tree(
    direct: dict[str, httpx.AsyncClient], me_settings: GatewaySettings
) -> Callable[[], Awaitable[Tree]]:
    """Makes a county of its own in membership, with one township and one village."""

    async def make() -> Tree:
        api = MembershipApi(direct["membership"], me_settings)
        code = f"53{1000 + next(_counties):04d}"
        county = await api.county(f"{code}000000", f"第{code}县总工会")
        township = await api.child(county, "township_union", "凤山镇工会", f"{code}101000")
        village = await api.child(township, "village_union", "京竹林村工会", f"{code}101201")
        return county, township, village

    return make
