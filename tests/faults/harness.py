"""The whole platform on loopback for the fault suite, with handles to break it by.

Its own nats-server (it gets SIGKILLed: never the shared one on 4222), every service under
uvicorn on a fresh migrated database, and on PostgreSQL a TCP proxy between the services
and the server, so a database outage is staged without touching the server others use.
The runner reads the databases directly (the services never read each other's).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from gonghui_shared.testing import migrated_database
from gonghui_shared.testing.nats_server import NatsServer, free_port, reachable
from gonghui_shared.testing.processes import ServiceProcess
from tests.faults.proxy import ProxyProcess

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("membership", "training", "stations", "gateway")
ADMIN_PASSWORD = "faults-Admin-pass-1"
# Small pools: four processes share a PostgreSQL with max_connections 100 with other runs.
POOL_SIZE, MAX_OVERFLOW = "2", "6"


class PrivateNats(NatsServer):
    """A nats-server of our own that can be SIGKILLed and started again on the same port
    and store directory (so JetStream recovers its streams from disk)."""

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self, timeout: float = 10.0) -> None:
        # The kernel may hold the port for a moment after the kill.
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.start(timeout=max(1.0, deadline - time.monotonic()))
                return
            except (RuntimeError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


@dataclass
class FaultPlatform:
    backend: str
    root: str
    data_dir: Path
    folder: Path
    nats: PrivateNats
    services: dict[str, ServiceProcess]
    # Each service's database as the runner reaches it (never through the proxy).
    database_urls: dict[str, str]
    proxy: ProxyProcess | None

    def base(self, service: str) -> str:
        return self.services[service].base

    @property
    def gateway(self) -> str:
        return self.base("gateway")


async def create_admin(env: dict[str, str]) -> None:
    """`gonghui-gateway create-admin`: the first account, `admin`, a platform admin."""
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "gonghui-gateway"),
        "create-admin",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, output.decode(errors="replace")


def _through(url: str, port: int) -> str:
    """`url` with its host and port replaced by the proxy's."""
    return make_url(url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


@asynccontextmanager
async def running_platform(backend: str, folder: Path) -> AsyncIterator[FaultPlatform]:
    """Everything started and ready; killed, and the databases dropped, on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    nats = PrivateNats(folder / "nats")
    nats.start()
    proxy: ProxyProcess | None = None
    services: dict[str, ServiceProcess] = {}
    databases = [
        migrated_database(
            backend, REPO / "services" / name / "alembic.ini", folder, f"faults_{name}"
        )
        for name in SERVICES
    ]
    try:
        # One at a time: Alembic's command API keeps global state.
        urls = {
            name: await anext(database) for name, database in zip(SERVICES, databases, strict=True)
        }
        if backend == "postgres":
            target = make_url(next(iter(urls.values())))
            proxy = ProxyProcess(free_port(), target.host or "127.0.0.1", target.port or 5432)
            await proxy.ready()
        ports = {name: free_port() for name in SERVICES}
        root = f"faults{secrets.token_hex(4)}"
        data_dir = folder / "data"
        for name in SERVICES:
            prefix = name.upper()
            url = urls[name] if proxy is None else _through(urls[name], proxy.port)
            env = os.environ | {
                f"{prefix}_DATABASE_URL": url,
                "GONGHUI_NATS_URL": nats.url,
                "GONGHUI_SUBJECT_ROOT": root,
                "GONGHUI_DATA_DIR": str(data_dir),
                "GONGHUI_DB_POOL_SIZE": POOL_SIZE,
                "GONGHUI_DB_MAX_OVERFLOW": MAX_OVERFLOW,
                f"{prefix}_OUTBOX_POLL_SECONDS": "0.5",
            }
            if name == "gateway":
                env |= {
                    f"GATEWAY_{other.upper()}_URL": f"http://127.0.0.1:{ports[other]}"
                    for other in SERVICES
                    if other != "gateway"
                }
                env |= {
                    "GONGHUI_ADMIN_PASSWORD": ADMIN_PASSWORD,
                    # One client at a steady rate, from one address, as one principal.
                    "GATEWAY_RATE_LIMIT_PER_PRINCIPAL": "1000000",
                    "GATEWAY_RATE_LIMIT_TOKEN_PER_USER_IP": "1000",
                    "GATEWAY_RATE_LIMIT_TOKEN_PER_IP": "1000",
                }
                await create_admin(env)
            services[name] = ServiceProcess.launch(
                name, f"{name}.main:create_app", ports[name], env, folder / f"{name}.log"
            )
        await asyncio.gather(*(service.wait_ready(60) for service in services.values()))
        yield FaultPlatform(
            backend=backend,
            root=root,
            data_dir=data_dir,
            folder=folder,
            nats=nats,
            services=services,
            database_urls=urls,
            proxy=proxy,
        )
    finally:
        for service in services.values():
            service.kill()
        if proxy is not None:
            proxy.close()
        nats.kill()
        for database in databases:
            await database.aclose()


def nats_reachable(platform: FaultPlatform) -> bool:
    return reachable(platform.nats.url, 0.2)
