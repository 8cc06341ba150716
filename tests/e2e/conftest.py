"""The platform as real processes: each service under uvicorn with its own database, one NATS."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from gonghui_shared.testing import BACKENDS, migrated_database
from gonghui_shared.testing.nats_server import free_port
from gonghui_shared.testing.processes import Platform, ServiceProcess

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("membership", "training")
ALL_SERVICES = ("membership", "training", "stations", "gateway")
# The password of the gateway's first account `admin` (a platform admin) in these tests;
# tests read it back from the gateway's environment.
ADMIN_PASSWORD = "e2e-Admin-pass-1"


async def create_admin(env: dict[str, str]) -> None:
    """`gonghui-gateway create-admin`, as `make run` does: the first account, `admin`."""
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "gonghui-gateway"),
        "create-admin",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        raise
    assert process.returncode == 0, output.decode(errors="replace")


@asynccontextmanager
async def running_platform(
    backend: str,
    names: Sequence[str],
    folder: Path,
    nats_url: str,
    root: str,
    data_dir: Path,
) -> AsyncIterator[Platform]:
    """`names` under uvicorn on loopback, each on a fresh migrated database of `backend`.

    They share one NATS, one subject root and the dev keys under `data_dir`; the gateway
    (if named) is pointed at the others. Everything is killed and dropped on exit.
    """
    services: dict[str, ServiceProcess] = {}
    databases = [
        migrated_database(backend, REPO / "services" / name / "alembic.ini", folder, f"e2e_{name}")
        for name in names
    ]
    ports = {name: free_port() for name in names}
    try:
        for name, database in zip(names, databases, strict=True):
            url = await anext(database)
            prefix = name.upper()
            env = os.environ | {
                f"{prefix}_DATABASE_URL": url,
                "GONGHUI_NATS_URL": nats_url,
                "GONGHUI_SUBJECT_ROOT": root,
                "GONGHUI_DATA_DIR": str(data_dir),  # the same dev keys for every service
                f"{prefix}_OUTBOX_POLL_SECONDS": "0.5",
            }
            if name == "gateway":
                env |= {
                    f"GATEWAY_{other.upper()}_URL": f"http://127.0.0.1:{ports[other]}"
                    for other in ("membership", "training", "stations")
                    if other in ports
                }
                env["GONGHUI_ADMIN_PASSWORD"] = ADMIN_PASSWORD
                # One platform serves the whole session, all from 127.0.0.1: sign-ins
                # and one-time codes add up across tests, so the limits are wide here.
                env |= {
                    "GATEWAY_RATE_LIMIT_TOKEN_PER_USER_IP": "1000",
                    "GATEWAY_RATE_LIMIT_TOKEN_PER_IP": "1000",
                    "GATEWAY_RATE_LIMIT_OTP_PER_PHONE": "1000",
                    "GATEWAY_RATE_LIMIT_OTP_PER_IP": "1000",
                }
            if name == "gateway":
                await create_admin(env)
            services[name] = ServiceProcess.launch(
                name, f"{name}.main:create_app", ports[name], env, folder / f"{name}.log"
            )
        await asyncio.gather(*(service.wait_ready() for service in services.values()))
        yield Platform(root=root, data_dir=data_dir, services=services)
    finally:
        for service in services.values():
            service.kill()
        for database in databases:
            await database.aclose()


@pytest.fixture(params=BACKENDS)
async def platform(
    request: pytest.FixtureRequest, tmp_path: Path, nats_url: str, subject_root: str, data_dir: Path
) -> AsyncIterator[Platform]:
    """Membership and training running as processes on `request.param`'s database."""
    root = f"{subject_root}e2e{request.param}{os.urandom(2).hex()}"
    async with running_platform(
        request.param, SERVICES, tmp_path, nats_url, root, data_dir
    ) as running:
        yield running


@pytest.fixture(scope="module", params=BACKENDS)
async def full_platform(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    nats_url: str,
    subject_root: str,
    data_dir: Path,
) -> AsyncIterator[Platform]:
    """All four services (membership, training, stations, gateway) as processes, once per
    module and backend; a test that stops a service starts it again before it ends."""
    root = f"{subject_root}e2e{request.param}{os.urandom(2).hex()}"
    folder = tmp_path_factory.mktemp(f"platform-{request.param}")
    async with running_platform(
        request.param, ALL_SERVICES, folder, nats_url, root, data_dir
    ) as running:
        yield running
