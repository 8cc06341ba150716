"""pytest fixtures shared by every service's tests (loaded via the `pytest11` entry point)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest

from gonghui_shared.testing.nats_server import NatsServer, reachable


def pytest_configure(config: pytest.Config) -> None:
    # Dozens of test apps (and the service processes the e2e tests start, which inherit
    # the environment) live for the whole session; each keeps only 2 idle PostgreSQL
    # connections, so together they stay under the server's max_connections (100 by
    # default). The peak per process is unchanged: 2 + 18 = the production 10 + 10.
    os.environ.setdefault("GONGHUI_DB_POOL_SIZE", "2")
    os.environ.setdefault("GONGHUI_DB_MAX_OVERFLOW", "18")


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real NATS with JetStream: `NATS_URL` if it answers, else one we start."""
    url = os.environ.get("NATS_URL") or os.environ.get("GONGHUI_NATS_URL")
    if url and reachable(url):
        yield url
        return
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def subject_root(nats_url: str) -> AsyncIterator[str]:
    """A subject root of our own, so test runs sharing a NATS never see each other's events."""
    root = f"gtest{uuid.uuid4().hex[:10]}"
    yield root
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    # Every stream made under this root (and roots derived from it) goes.
    for info in await js.streams_info():
        if info.config.name and info.config.name.startswith(root.upper()):
            with contextlib.suppress(Exception):
                await js.delete_stream(info.config.name)
    await nc.close()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where generated dev keys go during the test session."""
    return tmp_path_factory.mktemp("data")
