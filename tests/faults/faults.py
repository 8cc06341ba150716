"""The faults: each breaks one thing, waits, and mends it; it returns when it is mended.

Every fault records when it began and when it ended (wall clock, to compare with the
services' timestamps, and monotonic, to measure recovery from).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats

from tests.faults.harness import FaultPlatform

FAULTS = ("nats_kill", "service_kill", "postgres_outage", "poison")
# The stream the poison goes into, and the consumer expected to dead-letter it.
POISONED_SOURCE = "stations"
POISONED_CONSUMER = "gateway__stations_dashboards"
WATCHER = Path(__file__).with_name("watcher.py")


async def _line(process: subprocess.Popen[str], timeout: float = 10.0) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), timeout)).strip()


@dataclass
class Injected:
    fault: str
    target: str
    began: float = 0.0  # monotonic
    ended: float = 0.0
    began_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_at: datetime | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def begin(self) -> None:
        self.began, self.began_at = time.monotonic(), datetime.now(UTC)

    def end(self) -> None:
        self.ended, self.ended_at = time.monotonic(), datetime.now(UTC)


async def nats_kill(platform: FaultPlatform, down_seconds: float) -> Injected:
    """SIGKILL nats-server; start it again on the same port and store after `down_seconds`."""
    injected = Injected("nats_kill", "nats-server")
    injected.begin()
    platform.nats.kill()
    await asyncio.sleep(down_seconds)
    await asyncio.to_thread(platform.nats.restart)
    injected.end()
    return injected


@dataclass(frozen=True)
class Backlog:
    """Many events committed at once by one request, and how to tell them on the bus:
    messages on `subject` whose `data[key]` is `value`."""

    commit: Callable[[], Awaitable[int]]
    subject: str
    key: str
    value: str


async def service_kill(
    platform: FaultPlatform, service: str, down_seconds: float, backlog: Backlog | None = None
) -> Injected:
    """SIGKILL a service process; start it again (same port, database, environment).

    With a `backlog`, the kill comes at the worst moment for the outbox: the instant the
    first of its events reaches NATS, while the relay is still publishing the rest and
    before it could mark any of them sent. After the restart they are published again,
    and JetStream's duplicate window must drop the copies.
    """
    injected = Injected("service_kill", service)
    process = platform.services[service]
    if backlog is None:
        injected.begin()
    else:
        watcher = subprocess.Popen(
            [
                sys.executable,
                "-P",  # its folder not first on sys.path, where load.py and such shadow others
                str(WATCHER),
                platform.nats.url,
                backlog.subject,
                backlog.key,
                backlog.value,
                str(process.process.pid),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert await _line(watcher) == "ready", "the crash-point watcher did not start"
            injected.notes["backlog"] = await backlog.commit()
            said = await _line(watcher, 20.0)
            injected.begin()
            injected.notes["crash_point"] = (
                "first backlog event published" if said == "killed" else "missed"
            )
        finally:
            watcher.kill()
            watcher.wait(5)
    process.kill()  # reaps it (the watcher may have killed it already)
    await asyncio.sleep(down_seconds)
    injected.end()  # the fault is over once it is started again: booting is recovery
    await process.start(timeout=60)
    injected.notes["ready_after"] = round(time.monotonic() - injected.ended, 2)
    return injected


async def postgres_outage(platform: FaultPlatform, down_seconds: float) -> Injected:
    """Every service loses PostgreSQL: the proxy refuses connections and resets open ones."""
    assert platform.proxy is not None, "a database outage needs PostgreSQL behind the proxy"
    injected = Injected("postgres_outage", "postgresql (proxy)")
    injected.begin()
    await platform.proxy.sever()
    await asyncio.sleep(down_seconds)
    await platform.proxy.open()
    injected.end()
    return injected


def poison_messages(root: str) -> list[tuple[str, bytes]]:
    """Two events no consumer can apply: bytes that are not JSON, and an envelope whose data
    is not a visit. Each has an aggregate of its own, so it can hold back nothing else."""
    subject = f"{root}.{POISONED_SOURCE}.visit.recorded.v1"
    envelope = {
        "event_id": str(uuid.uuid4()),
        "type": "stations.visit.recorded",
        "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "source": POISONED_SOURCE,
        "aggregate_id": str(uuid.uuid4()),
        "aggregate_seq": 1,
        "org_path": None,
        "request_id": None,
        "data": {"station_id": 42, "services": "not a list"},
    }
    return [
        (subject, b"\x00poison: not an event at all"),
        (subject, json.dumps(envelope).encode()),
    ]


async def poison(platform: FaultPlatform) -> Injected:
    """Publish unappliable events into a producer's stream, as a broken producer would."""
    injected = Injected("poison", POISONED_CONSUMER)
    messages = poison_messages(platform.root)
    nc = await nats.connect(platform.nats.url, connect_timeout=2)
    try:
        js = nc.jetstream(timeout=5)
        injected.begin()
        for n, (subject, payload) in enumerate(messages):
            await js.publish(
                subject, payload, headers={"Nats-Msg-Id": f"poison-{uuid.uuid4()}-{n}"}
            )
        injected.end()
    finally:
        await nc.close()
    injected.notes["published"] = len(messages)
    return injected
