"""The platform as real processes: each service under uvicorn with its own database, one NATS."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gonghui_shared.testing import BACKENDS, migrated_database
from gonghui_shared.testing.nats_server import free_port
from gonghui_shared.testing.processes import Platform, ServiceProcess

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("membership", "training")


@pytest.fixture(params=BACKENDS)
async def platform(
    request: pytest.FixtureRequest, tmp_path: Path, nats_url: str, subject_root: str, data_dir: Path
) -> AsyncIterator[Platform]:
    """Membership and training running as processes on `request.param`'s database."""
    root = f"{subject_root}e2e{request.param}{os.urandom(2).hex()}"
    services: dict[str, ServiceProcess] = {}
    databases = [
        migrated_database(
            request.param, REPO / "services" / name / "alembic.ini", tmp_path, f"e2e_{name}"
        )
        for name in SERVICES
    ]
    try:
        for name, database in zip(SERVICES, databases, strict=True):
            url = await anext(database)
            port = free_port()
            env = os.environ | {
                f"{name.upper()}_DATABASE_URL": url,
                "GONGHUI_NATS_URL": nats_url,
                "GONGHUI_SUBJECT_ROOT": root,
                "GONGHUI_DATA_DIR": str(data_dir),  # the same dev keys for every service
                f"{name.upper()}_OUTBOX_POLL_SECONDS": "0.5",
            }
            log = tmp_path / f"{name}.log"
            with log.open("w") as out:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        f"{name}.main:create_app",
                        "--factory",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                    ],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            services[name] = ServiceProcess(name, f"http://127.0.0.1:{port}", process, log)
        for service in services.values():
            await service.wait_ready()
        yield Platform(root=root, data_dir=data_dir, services=services)
    finally:
        for service in services.values():
            if service.process.poll() is None:
                service.process.kill()
                service.process.wait()
        for database in databases:
            await database.aclose()
