"""The outbox relay's drain rate: committed events published to JetStream per second.

Issue 8's target is ≥ 2,000 events/s with `sync_interval: always` (JetStream fsyncs each
write before it acknowledges it), which is how production NATS is configured. The shared
NATS of a dev machine may fsync lazily, so this starts a private nats-server with that
setting, and a scratch database beside the stack's own (same server, or a SQLite file in
the run's folder) holding only the bus tables: the relay under test is the real
`OutboxRelay`, and no service's outbox or stream is touched.

`python -m bench.drain [--events N] [--backend postgres|sqlite]` runs it on its own
(PostgreSQL from TEST_POSTGRES_URL, as the tests).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import func, select

from bench.measure import Result
from bench.stack import Say, Stack
from gonghui_shared.bus import Bus, OutboxRelay, stream_name
from gonghui_shared.bus.outbox import OutboxItem, record_events
from gonghui_shared.bus.relay import MAX_IN_FLIGHT
from gonghui_shared.db import Database
from gonghui_shared.testing import create_postgres_database, drop_postgres_database
from gonghui_shared.testing.busdb import migrate_bus_db, outbox
from gonghui_shared.testing.nats_server import NatsServer
from gonghui_shared.testing.probe import ThingHappened

DEFAULT_EVENTS = 20_000
# Events per aggregate: a member's few events in a row, as a bulk import writes them.
EVENTS_PER_AGGREGATE = 4
# Rows per insert while filling the outbox (one transaction each).
FILL_CHUNK = 2_000
# Bare publishes timed before the drain, for the server's own pace.
CEILING_MESSAGES = 2_000
# The probe's event type is "testsvc.…": its stream is the "testsvc" service's.
SERVICE = "testsvc"


@asynccontextmanager
async def scratch_database(stack: Stack) -> AsyncIterator[Database]:
    """A database with only the bus tables, on the stack's server; dropped afterwards."""
    base = next(iter(stack.database_urls.values()))
    if stack.backend == "sqlite":
        url = f"sqlite+aiosqlite:///{stack.folder / f'drain-{uuid.uuid4().hex[:8]}.db'}"
    else:
        # Any database of the server will do to create another (the stack's user may).
        url = await create_postgres_database(base, "bench_drain")
    db = Database(url, pool_size=2, max_overflow=2)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(migrate_bus_db)
        yield db
    finally:
        await db.dispose()
        if stack.backend != "sqlite":
            await drop_postgres_database(base, url)


async def fill_outbox(db: Database, events: int) -> None:
    """Commit `events` unsent events, through the same `record_events` the services use."""
    for start in range(0, events, FILL_CHUNK):
        items = [
            OutboxItem(ThingHappened(thing_id=f"t{n}"), f"agg{n // EVENTS_PER_AGGREGATE}")
            for n in range(start, min(start + FILL_CHUNK, events))
        ]
        async with db.transaction() as session:
            await record_events(session, outbox, items)


async def unsent(db: Database) -> int:
    async with db.sessions() as session:
        query = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        return int(await session.scalar(query) or 0)


async def server_ceiling(bus: Bus, messages: int = CEILING_MESSAGES) -> float:
    """Bare pipelined JetStream publishes per second to the same server, just before the
    drain: with every write fsynced the disk sets the pace, and on a shared machine it
    varies from minute to minute, so the relay's rate is read against this."""
    subject = f"{bus.root}.{SERVICE}.ceiling"
    payload = b"x" * 400  # about an event's size
    in_flight: deque[asyncio.Task[object]] = deque()
    started = time.perf_counter()
    for n in range(messages):
        if len(in_flight) >= MAX_IN_FLIGHT:
            await in_flight.popleft()
        publish = bus.js.publish(subject, payload, headers={"Nats-Msg-Id": f"ceiling-{n}"})
        in_flight.append(asyncio.create_task(publish))
    await asyncio.gather(*in_flight)
    per_s = messages / (time.perf_counter() - started)
    await bus.js.purge_stream(stream_name(bus.root, SERVICE))
    return per_s


async def relay_drain(
    stack: Stack, say: Say, events: int = DEFAULT_EVENTS, *, nats_url: str | None = None
) -> Result:
    """Time the relay publishing `events` committed outbox rows to a private NATS that
    fsyncs every write. A smoke run passes a small `events`; `nats_url` measures against
    another server instead (to tell the relay's own cost from the disk's)."""
    nats_server = None
    if nats_url is None:
        nats_server = NatsServer(stack.folder / f"drain-nats-{uuid.uuid4().hex[:8]}")
        nats_server.start()
        nats_url = nats_server.url
    bus = Bus(nats_url, "bench-drain", root=f"drain{uuid.uuid4().hex[:8]}")
    try:
        bus.start()
        if not await bus.connected(10):
            raise RuntimeError(f"NATS at {nats_url} did not answer")
        await bus.ensure_stream(SERVICE)
        ceiling = await server_ceiling(bus)
        async with scratch_database(stack) as db:
            started = time.perf_counter()
            await fill_outbox(db, events)
            say(f"relay drain: {events:,} events committed ({time.perf_counter() - started:.1f} s)")
            relay = OutboxRelay(db, bus, outbox, service=SERVICE)
            published = rounds = 0
            started = time.perf_counter()
            while published < events:
                done = await relay.publish_batch()
                if done == 0:
                    raise RuntimeError(f"the relay stopped after {published} of {events}")
                published += done
                rounds += 1
            seconds = time.perf_counter() - started
            left = await unsent(db)
            stored = (await bus.js.stream_info(stream_name(bus.root, SERVICE))).state
    finally:
        if bus.is_connected:
            with contextlib.suppress(Exception):
                await bus.js.delete_stream(stream_name(bus.root, SERVICE))
        await bus.close()
        if nats_server is not None:
            nats_server.stop()
    per_s = published / seconds
    say(
        f"relay drain: {published:,} events in {seconds:.2f} s, {per_s:,.0f} events/s "
        f"(bare pipelined publishes to the same server: {ceiling:,.0f}/s)"
    )
    return Result(
        key="relay_drain",
        name="outbox relay drain (sync_interval: always)",
        requests_per_s=per_s,
        p50_ms=None,
        p99_ms=None,
        unit="events/s",
        details={
            "events": published,
            "seconds": round(seconds, 3),
            "batches": rounds,
            "batch_size": relay.batch_size,
            "max_in_flight": getattr(relay, "max_in_flight", 1),
            "server_ceiling_per_s": round(ceiling),
            "share_of_ceiling": round(per_s / ceiling, 2),
            "stored_in_stream": stored.messages,
            "left_unsent": left,
            "failed": left + abs(stored.messages - published),
            "backend": stack.backend,
            "nats_sync_interval": "always" if nats_server is not None else "the server's own",
        },
    )


async def _main(backend: str, events: int, nats_url: str | None) -> Result:
    with tempfile.TemporaryDirectory(prefix="drain-") as folder:
        admin = os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1/test")
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{Path(folder) / 'host.db'}"
        else:
            url = admin
        stack = Stack(
            backend=backend,
            folder=Path(folder),
            nats_url="",
            root="drain",
            database_urls={"membership": url},
        )
        say: Say = lambda line: print(line, file=sys.stderr)  # noqa: E731
        return await relay_drain(stack, say, events, nats_url=nats_url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--nats-url", help="an existing NATS instead of a private fsyncing one")
    args = parser.parse_args()
    result = asyncio.run(_main(args.backend, args.events, args.nats_url))
    print(f"{result.requests_per_s:,.0f} {result.unit} {result.details}")
