"""Stations fixtures: a migrated database per backend, the running app, a membership feed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from gonghui_shared.testing import BACKENDS, migrated_database, truncate_all
from gonghui_shared.testing.feed import MembershipFeed
from stations.config import StationsSettings
from stations.main import create_app
from stations.models import Base
from stations.testing import Api, membership_feed

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


@pytest.fixture(scope="session", params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A database migrated to head, once per backend."""
    folder = tmp_path_factory.mktemp("stations")
    async for url in migrated_database(request.param, ALEMBIC_INI, folder, "stations"):
        yield url


@pytest.fixture(scope="session")
def settings(
    database_url: str, nats_url: str, subject_root: str, data_dir: Path
) -> StationsSettings:
    return StationsSettings(
        database_url=database_url,
        nats_url=nats_url,
        # A root of its own: membership's tests publish membership events too.
        subject_root=f"{subject_root}st",
        data_dir=data_dir,
        environment="test",
        outbox_poll_seconds=0.2,
    )


@pytest.fixture(scope="session")
async def app(settings: StationsSettings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert await app.state.runtime.bus.connected(10), "NATS did not answer"
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    await truncate_all(app.state.runtime.db, Base.metadata)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://stations") as client:
        yield client


@pytest.fixture
def api(client: httpx.AsyncClient, settings: StationsSettings) -> Api:
    return Api(client, settings)


@pytest.fixture
def feed(app: FastAPI, client: httpx.AsyncClient) -> MembershipFeed:
    """Membership's events, published on NATS; depends on `client` so tables start empty."""
    return membership_feed(app.state.runtime)
