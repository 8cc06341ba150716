"""Gateway fixtures: a migrated database per backend and the running app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from gateway.config import GatewaySettings
from gateway.main import create_app
from gateway.models import Base
from gonghui_shared.testing import BACKENDS, migrated_database, truncate_all

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
