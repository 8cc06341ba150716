"""Fixtures for the bus tests: a migrated bus database on each backend, and a NATS bus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gonghui_shared.bus import Bus
from gonghui_shared.db import Database
from gonghui_shared.testing import (
    create_postgres_database,
    drop_postgres_database,
    postgres_url_or_skip,
    truncate_all,
)
from gonghui_shared.testing.busdb import metadata, migrate_bus_db


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
async def bus_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("busdb") / "bus.db"
        url, admin = f"sqlite+aiosqlite:///{path}", None
    else:
        admin = postgres_url_or_skip()
        url = await create_postgres_database(admin, "gonghui_shared_test")
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.run_sync(migrate_bus_db)
    yield db
    await db.dispose()
    if admin:
        await drop_postgres_database(admin, url)


@pytest.fixture
async def db(bus_database: Database) -> Database:
    await truncate_all(bus_database, metadata)
    return bus_database


@pytest.fixture
async def bus(nats_url: str, subject_root: str) -> AsyncIterator[Bus]:
    bus = Bus(nats_url, "testsvc", root=subject_root)
    bus.start()
    assert await bus.connected(10), "NATS did not answer"
    await bus.ensure_stream("testsvc")
    await bus.js.purge_stream(f"{subject_root}_TESTSVC".upper())
    yield bus
    await bus.close()
