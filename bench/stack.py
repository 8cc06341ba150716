"""The platform under test: fresh databases, NATS, the four services and the bare app.

Each service runs as `make run` runs it, one uvicorn process on loopback with its own
migrated database; they share one NATS under a subject root of their own and the dev keys
of the run's folder. Everything made here (processes, databases, streams, a NATS of our
own) is removed when the `running_stack` block ends, whatever happened inside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nats
from sqlalchemy import func, select

from gonghui_shared.db import Database
from gonghui_shared.testing import create_postgres_database, drop_postgres_database, migrate
from gonghui_shared.testing.nats_server import NatsServer, free_port, reachable
from gonghui_shared.testing.processes import ServiceProcess

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("membership", "training", "stations", "gateway")
UPSTREAMS = ("membership", "training", "stations")
BARE = "bare"
# FastAPI's floors (bench/reference.py): minimal, and with one database read.
REFERENCE = "reference"

Say = Callable[[str], None]


@dataclass
class Stack:
    backend: str  # "postgres" or "sqlite"
    folder: Path  # dev keys, logs, SQLite files
    nats_url: str
    root: str
    database_urls: dict[str, str]
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    pool_size: int = 4
    max_overflow: int = 4
    # One connection each, kept for the harness's frequent looks (outboxes, read model).
    watchers: dict[str, Database] = field(default_factory=dict)
    # The environment every process starts from (the repository on PYTHONPATH).
    base_env: dict[str, str] = field(default_factory=dict)

    def cpu_seconds(self) -> dict[str, float]:
        """User + system CPU time each process has used so far (Linux /proc; else empty)."""
        found = {name: cpu_seconds(p.process.pid) for name, p in self.processes.items()}
        if self.backend == "postgres":
            # The database's share of the cores: every server process on this machine (a
            # remote server's are not here, and count nothing).
            found["postgres"] = sum(_own_cpu_seconds(pid) for pid in _pids_named("postgres"))
        return found

    def base(self, name: str) -> str:
        return self.processes[name].base

    def database(self, name: str) -> Database:
        """A small pool on `name`'s database for the harness's own in-process work."""
        return Database(self.database_urls[name], pool_size=2, max_overflow=2)

    def watcher(self, name: str) -> Database:
        if name not in self.watchers:
            self.watchers[name] = Database(self.database_urls[name], pool_size=1, max_overflow=1)
        return self.watchers[name]

    def settings_env(self, name: str) -> dict[str, str]:
        """What a service process (or the same service in-process) is configured with."""
        prefix = name.upper()
        env = {
            f"{prefix}_DATABASE_URL": self.database_urls[name],
            "GONGHUI_NATS_URL": self.nats_url,
            "GONGHUI_SUBJECT_ROOT": self.root,
            "GONGHUI_DATA_DIR": str(self.folder),
            # Four services and the harness share the server's 100 connections with
            # whatever else runs on it: a small pool each, as the tests use.
            "GONGHUI_DB_POOL_SIZE": str(self.pool_size),
            "GONGHUI_DB_MAX_OVERFLOW": str(self.max_overflow),
        }
        if name == "gateway":
            env |= {
                f"GATEWAY_{other.upper()}_URL": self.base(other)
                for other in UPSTREAMS
                if other in self.processes
            }
        return env


def cpu_seconds(pid: int) -> float:
    """The process's CPU time and its living children's (granian serves from a child)."""
    own = _own_cpu_seconds(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return own + sum(cpu_seconds(int(child)) for child in children)


def _own_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class StolenTime:
    """The share of the machine's CPU time its hypervisor gave to others, over a stretch.

    On a shared virtual machine the cores this run has can be slower by a third for
    minutes at a time (the `st` column of vmstat): each measurement reports the share
    it ran under, so two runs of the same code that differ can be told apart.
    """

    def __init__(self) -> None:
        self.start = _machine_jiffies()

    def share(self) -> float | None:
        """Since this was made; None where /proc/stat cannot tell (not Linux)."""
        end = _machine_jiffies()
        if self.start is None or end is None or end[1] <= self.start[1]:
            return None
        return round((end[0] - self.start[0]) / (end[1] - self.start[1]), 3)


def _machine_jiffies() -> tuple[int, int] | None:
    """(stolen, all) jiffies of every CPU since boot, from /proc/stat's first line."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice, counted in user]
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def _pids_named(command: str) -> list[int]:
    """The processes whose command name is `command` (Linux /proc; else none)."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*/comm"):
        try:
            if entry.read_text().strip() == command:
                pids.append(int(entry.parent.name))
        except (OSError, ValueError):
            continue
    return pids


async def _create_database(backend: str, admin_url: str | None, folder: Path, name: str) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{folder / f'{name}.db'}"
    assert admin_url is not None
    return await create_postgres_database(admin_url, f"bench_{name}")


async def _delete_streams(nats_url: str, root: str) -> None:
    nc = await nats.connect(nats_url, connect_timeout=2, max_reconnect_attempts=1)
    try:
        js = nc.jetstream()
        for info in await js.streams_info():
            if info.config.name and info.config.name.startswith(f"{root.upper()}_"):
                with contextlib.suppress(Exception):
                    await js.delete_stream(info.config.name)
    finally:
        await nc.close()


@asynccontextmanager
async def running_stack(
    backend: str,
    admin_url: str | None,
    folder: Path,
    say: Say,
    *,
    pool_size: int = 4,
    max_overflow: int = 4,
) -> AsyncIterator[Stack]:
    """Databases migrated, NATS found or started, every service and the bare app ready."""
    nats_server: NatsServer | None = None
    nats_url = os.environ.get("NATS_URL") or os.environ.get("GONGHUI_NATS_URL") or ""
    if not (nats_url and reachable(nats_url)):
        nats_server = NatsServer(folder / "nats")
        nats_server.start()
        nats_url = nats_server.url
    stack = Stack(
        backend=backend,
        folder=folder,
        nats_url=nats_url,
        root=f"bench{uuid.uuid4().hex[:8]}",
        database_urls={},
        pool_size=pool_size,
        max_overflow=max_overflow,
    )
    try:
        for name in SERVICES:
            started = time.perf_counter()
            url = await _create_database(backend, admin_url, folder, name)
            stack.database_urls[name] = url
            await migrate(REPO / "services" / name / "alembic.ini", url)
            say(f"{name}: database migrated ({time.perf_counter() - started:.1f} s)")
        # The bare app is imported from the repository (`bench.bare`), like the harness.
        path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        base_env = os.environ | {"PYTHONPATH": path}
        stack.base_env = base_env
        for name in (*UPSTREAMS, "gateway"):  # the gateway last: it is told where they are
            env = base_env | stack.settings_env(name)
            stack.processes[name] = ServiceProcess.launch(
                name, f"{name}.main:create_app", free_port(), env, folder / f"{name}.log"
            )
        stack.processes[BARE] = ServiceProcess.launch(
            BARE, "bench.bare:create_app", free_port(), base_env, folder / "bare.log"
        )
        membership_db = stack.database_urls["membership"]
        reference_env = base_env | (
            {"BENCH_REFERENCE_DSN": membership_db.replace("+asyncpg", "", 1)}
            if backend == "postgres"
            else {}
        )
        stack.processes[REFERENCE] = ServiceProcess.launch(
            REFERENCE,
            "bench.reference:create_app",
            free_port(),
            reference_env,
            folder / "reference.log",
        )
        await asyncio.gather(*(p.wait_ready(90) for p in stack.processes.values()))
        say(f"services ready: {', '.join(f'{n} {p.base}' for n, p in stack.processes.items())}")
        yield stack
    finally:
        for db in stack.watchers.values():
            with contextlib.suppress(Exception):
                await db.dispose()
        for process in stack.processes.values():
            process.kill()
        if backend == "postgres" and admin_url is not None:
            for url in stack.database_urls.values():
                with contextlib.suppress(Exception):
                    await drop_postgres_database(admin_url, url)
        with contextlib.suppress(Exception):
            await _delete_streams(nats_url, stack.root)
        if nats_server is not None:
            nats_server.stop()


# -------------------------------------------------------------------- waiting for the events


async def unsent_events(stack: Stack) -> dict[str, int]:
    """Rows each service's outbox has not published yet."""
    counts = {}
    for name in SERVICES:
        outbox = importlib.import_module(f"{name}.base").outbox
        async with stack.watcher(name).sessions() as session:
            counts[name] = (
                await session.scalar(
                    select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
                )
                or 0
            )
    return counts


async def pending_deliveries(stack: Stack) -> dict[str, int]:
    """Messages every durable consumer under the stack's root has not processed yet."""
    nc = await nats.connect(stack.nats_url, connect_timeout=2)
    try:
        js = nc.jetstream()
        pending: dict[str, int] = {}
        for info in await js.streams_info():
            stream = info.config.name or ""
            if not stream.startswith(f"{stack.root.upper()}_"):
                continue
            for consumer in await js.consumers_info(stream):
                name = consumer.name or consumer.config.durable_name or "?"
                pending[name] = (consumer.num_pending or 0) + (consumer.num_ack_pending or 0)
        return pending
    finally:
        await nc.close()


async def wait_until_quiet(
    stack: Stack, say: Say, timeout: float, every: float = 10.0, pause: float = 1.0
) -> float:
    """Wait until every outbox is sent and every consumer has caught up; the seconds taken.

    Quiet twice in a row, `pause` apart, so an event in flight between an outbox and its
    consumers (published, not yet counted as pending) is not missed.
    """
    started = time.perf_counter()
    last_report = started
    quiet_once = False
    first_backlog: int | None = None
    while True:
        unsent = await unsent_events(stack)
        pending = await pending_deliveries(stack)
        quiet = not any(unsent.values()) and not any(pending.values())
        if quiet and quiet_once:
            return time.perf_counter() - started
        quiet_once = quiet
        now = time.perf_counter()
        backlog = sum(unsent.values()) + sum(pending.values())
        if first_backlog is None:
            first_backlog = backlog
        if now - started > timeout:
            raise TimeoutError(f"events still flowing after {timeout:.0f} s: {unsent} {pending}")
        if now - last_report >= every:
            busy = {k: v for k, v in {**unsent, **pending}.items() if v}
            say(
                f"  events in flight after {now - started:.0f} s: {busy or 'settling'}"
                + _pace(first_backlog - backlog, backlog, now - started, timeout)
            )
            last_report = now
        await asyncio.sleep(pause)


def _pace(done: int, left: int, seconds: float, timeout: float) -> str:
    """How fast the backlog shrinks and when it would be gone, against the time allowed."""
    if done <= 0 or not left:
        return f" (gives up after {timeout:,.0f} s)"
    rate = done / seconds
    return (
        f" ({rate:,.0f}/s fewer waiting, ~{left / rate:,.0f} s to go; "
        f"gives up after {timeout:,.0f} s)"
    )
