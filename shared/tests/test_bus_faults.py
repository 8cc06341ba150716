"""The bus and the database failing and coming back: NATS killed and restarted, a stream
full, the database unreachable. Readiness says so, writes answer 503, and everything
resumes by itself.

The tests that kill NATS start their own nats-server (never the shared one).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from nats.js.api import DiscardPolicy, StorageType
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from gonghui_shared import metrics
from gonghui_shared.bus import Bus, EventConsumer, OutboxRelay, record_event
from gonghui_shared.bus.connection import DUPLICATE_WINDOW_SECONDS, StreamLimits, stream_name
from gonghui_shared.bus.relay import MAX_BACKOFF_SECONDS, RETRY_HORIZON_SECONDS
from gonghui_shared.db import Database
from gonghui_shared.errors import is_database_outage
from gonghui_shared.runtime import ServiceRuntime
from gonghui_shared.testing.busdb import inbox, outbox
from gonghui_shared.testing.nats_server import NatsServer, free_port
from gonghui_shared.testing.probe import (
    ProbeSettings,
    Tally,
    ThingHappened,
    applied_ids,
    probe_app,
    publish,
    subscription,
    thing_envelope,
    wait_until,
)

RECOVERY_BOUND_SECONDS = 10.0


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server of the test's own, free to be killed."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


def settings_for(db_url: str, nats_url: str, root: str, data_dir: Path) -> ProbeSettings:
    return ProbeSettings(
        database_url=db_url,
        nats_url=nats_url,
        subject_root=root,
        data_dir=data_dir,
        environment="test",
        outbox_poll_seconds=0.1,
    )


async def unsent(db: Database) -> int:
    async with db.sessions() as session:
        query = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        return int(await session.scalar(query) or 0)


async def write_thing(db: Database, thing_id: str) -> None:
    async with db.transaction() as session:
        await record_event(session, outbox, ThingHappened(thing_id=thing_id), aggregate_id=thing_id)


# -- durability settings -------------------------------------------------------------------


def test_duplicate_window_outlasts_the_relay_retry_horizon() -> None:
    """A re-publish within the horizon is always recognised as the same message."""
    assert MAX_BACKOFF_SECONDS < RETRY_HORIZON_SECONDS < DUPLICATE_WINDOW_SECONDS
    bus = Bus("nats://127.0.0.1:4222", "testsvc")
    assert bus.stream_config("testsvc").duplicate_window == DUPLICATE_WINDOW_SECONDS


def test_runtime_takes_stream_limits_and_timeouts_from_settings(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    for name, value in {
        "GONGHUI_STREAM_REPLICAS": "3",
        "GONGHUI_STREAM_MAX_AGE_SECONDS": "86400",
        "GONGHUI_STREAM_MAX_BYTES": "1073741824",
        "GONGHUI_STREAM_MAX_MSGS": "1000000",
        "GONGHUI_NATS_CONNECT_TIMEOUT": "1.5",
        "GONGHUI_NATS_REQUEST_TIMEOUT": "4",
        "GONGHUI_DB_POOL_TIMEOUT": "3",
    }.items():
        monkeypatch.setenv(name, value)
    settings = ProbeSettings(
        database_url="postgresql://nobody@127.0.0.1:1/none", data_dir=data_dir, environment="test"
    )
    runtime = ServiceRuntime.create(settings, outbox)
    config = runtime.bus.stream_config("testsvc")
    assert (config.num_replicas, config.max_age, config.max_bytes, config.max_msgs) == (
        3,
        86400,
        1073741824,
        1000000,
    )
    assert config.storage is StorageType.FILE and config.discard is DiscardPolicy.NEW
    assert (runtime.bus.connect_timeout, runtime.bus.request_timeout) == (1.5, 4)
    assert runtime.db.engine.pool.timeout() == 3


async def test_full_stream_refuses_new_events_and_the_outbox_keeps_them(
    db: Database, nats_url: str, subject_root: str
) -> None:
    """Discard "new": a full stream drops nothing it holds; the outbox waits for room."""
    root = f"{subject_root}full{uuid.uuid4().hex[:6]}"  # a stream of its own, empty
    full = Bus(nats_url, "testsvc", root=root, limits=StreamLimits(max_msgs=2))
    full.start()
    try:
        assert await full.connected(10)
        await full.ensure_stream("testsvc")
        for n in range(3):
            await write_thing(db, f"t{n}")
        relay = OutboxRelay(db, full, outbox, service="testsvc")
        assert await relay.publish_batch() == 2
        with pytest.raises(Exception, match="maximum messages"):
            await relay.publish_batch()
        assert await unsent(db) == 1
        info = await full.js.stream_info(stream_name(root, "testsvc"))
        assert (info.state.first_seq, info.state.messages) == (1, 2), "nothing was dropped"

        full.limits = StreamLimits()  # an operator raises the limit
        await full.ensure_stream("testsvc")
        assert await relay.publish_batch() == 1
        assert await unsent(db) == 0
    finally:
        await full.close()


async def test_a_reconnect_cuts_the_relay_back_off_short(db: Database, bus: Bus) -> None:
    """After a long outage the relay would otherwise sleep out its full back-off (up to
    MAX_BACKOFF_SECONDS) with NATS already back, and events would wait that long."""
    relay = OutboxRelay(db, bus, outbox, service="testsvc")
    relay.start()
    try:
        backing_off = asyncio.create_task(relay._back_off(MAX_BACKOFF_SECONDS * 10))
        await asyncio.sleep(0.1)
        assert not backing_off.done()
        await bus._on_reconnected()
        await asyncio.wait_for(backing_off, 2.0)
    finally:
        await relay.stop()


async def test_a_stopped_relay_hands_the_outbox_over(db: Database, bus: Bus) -> None:
    """On PostgreSQL one relay leads by an advisory lock; stopping must give it up."""
    for name in ("first", "second"):
        relay = OutboxRelay(db, bus, outbox, service="testsvc", poll_seconds=0.1)
        relay.start()
        try:
            await write_thing(db, name)

            async def sent() -> bool:
                return await unsent(db) == 0

            await wait_until(sent, RECOVERY_BOUND_SECONDS, f"{name} relay publishing")
        finally:
            await relay.stop()


# -- NATS killed and restarted ---------------------------------------------------------------


async def test_consumer_resumes_after_nats_is_killed_and_restarted(
    db: Database, nats_server: NatsServer, subject_root: str
) -> None:
    bus = Bus(nats_server.url, "testsvc", root=subject_root)
    bus.start()
    sub = subscription(Tally(), stall_seconds=2.0)
    consumer = EventConsumer(db, bus, inbox, sub)
    try:
        assert await bus.connected(10)
        await bus.ensure_stream("testsvc")
        before = [thing_envelope(f"before{n}", seq=1) for n in range(3)]
        for envelope in before:
            await publish(bus, envelope)
        consumer.start()

        async def first_applied() -> bool:
            return len(await applied_ids(db)) == 3

        await wait_until(first_applied, what="the events before the crash")

        nats_server.kill()  # SIGKILL: no flush, no goodbye
        await asyncio.sleep(0.5)
        nats_server.start()  # same port, same store
        after = [thing_envelope(f"after{n}", seq=1) for n in range(3)]
        started = time.monotonic()
        for envelope in after:
            await _publish_retrying(bus, envelope)

        async def all_applied() -> bool:
            return len(await applied_ids(db)) == 6

        took = await wait_until(all_applied, RECOVERY_BOUND_SECONDS, "the events after")
        assert time.monotonic() - started < RECOVERY_BOUND_SECONDS, took
        assert sorted(await applied_ids(db)) == sorted(str(e.event_id) for e in before + after), (
            "each applied once"
        )
        info = await bus.js.stream_info(stream_name(subject_root, "testsvc"))
        assert info.state.messages == 6, "the stream kept what it had acknowledged"
        assert metrics.CONSUMER_RESUBSCRIBED.labels(sub.durable, "reconnect")._value.get() >= 1
    finally:
        await consumer.stop()
        await bus.close()


async def test_consumer_recreated_when_it_vanished_from_the_server(db: Database, bus: Bus) -> None:
    """A stall of another kind: the durable is gone (deleted, or lost with a store)."""
    sub = subscription(Tally(), stall_seconds=1.0)
    consumer = EventConsumer(db, bus, inbox, sub)
    consumer.start()
    try:
        first = thing_envelope("one")
        await publish(bus, first)

        async def applied(count: int) -> bool:
            return len(await applied_ids(db)) == count

        await wait_until(lambda: applied(1))
        await bus.js.delete_consumer(stream_name(bus.root, "testsvc"), sub.durable)
        await publish(bus, thing_envelope("two"))
        await wait_until(lambda: applied(2), RECOVERY_BOUND_SECONDS, "the event after")
        await asyncio.sleep(0.3)
        assert len(await applied_ids(db)) == 2, (
            "the re-created consumer re-read, applied nothing twice"
        )
        assert metrics.CONSUMER_RESUBSCRIBED.labels(sub.durable, "stall")._value.get() >= 1
    finally:
        await consumer.stop()


async def _publish_retrying(bus: Bus, envelope: Any, timeout: float = 10.0) -> None:
    """Publish once JetStream is back (it answers a little after the port opens)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await publish(bus, envelope)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def readiness(client: httpx.AsyncClient) -> tuple[int, dict[str, str]]:
    response = await client.get("/readyz")
    return response.status_code, response.json()["checks"]


async def test_readiness_and_delivery_follow_nats_down_and_back(
    db: Database, nats_server: NatsServer, subject_root: str, data_dir: Path
) -> None:
    """NATS down: not ready, yet writes still succeed (the outbox holds their events);
    NATS back: ready again, and the events written meanwhile are delivered."""
    settings = settings_for(db.url, nats_server.url, subject_root, data_dir)
    async with probe_app(settings, [subscription(Tally(), stall_seconds=2.0)]) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://p") as client:

            async def ready() -> bool:
                return (await readiness(client))[0] == 200

            await wait_until(ready, what="ready")
            nats_server.kill()

            async def nats_failing() -> bool:
                status, checks = await readiness(client)
                return status == 503 and checks["nats"].startswith("failing")

            await wait_until(nats_failing, RECOVERY_BOUND_SECONDS, "503 with the NATS check")
            assert (await readiness(client))[1]["database"] == "ok"
            assert (await client.post("/v1/things/during")).status_code == 201
            await asyncio.sleep(0.5)
            assert await unsent(db) == 1

            nats_server.start()
            await wait_until(ready, RECOVERY_BOUND_SECONDS, "ready again without a restart")

            async def delivered() -> bool:
                return await unsent(db) == 0 and len(await applied_ids(db)) == 1

            await wait_until(delivered, RECOVERY_BOUND_SECONDS, "the event written meanwhile")


# -- the database unreachable ------------------------------------------------------------


@pytest.mark.parametrize(
    "database_url",
    [
        pytest.param("postgresql+asyncpg://nobody@127.0.0.1:{port}/none", id="postgres"),
        pytest.param("sqlite+aiosqlite:////nonexistent-dir/probe.db", id="sqlite"),
    ],
)
async def test_write_while_the_database_is_unreachable_is_503(
    database_url: str, nats_url: str, subject_root: str, data_dir: Path
) -> None:
    url = database_url.format(port=free_port())  # nothing listens there
    async with probe_app(settings_for(url, nats_url, subject_root, data_dir)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://p") as client:
            response = await client.post("/v1/things/x", headers={"X-Request-ID": "db-down-1"})
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"] == "5"
            error = response.json()["error"]
            assert error["code"] == "database_unavailable"
            assert error["message_zh"] and error["request_id"] == "db-down-1"
            status, checks = await readiness(client)
            assert status == 503 and checks["database"].startswith("failing")


def test_only_an_outage_is_a_503() -> None:
    """A database that cannot serve now is 503 (retry); a bug stays a 500."""
    outages: list[BaseException] = [
        ConnectionRefusedError(111, "Connect call failed"),
        OSError("Multiple exceptions: [Errno 111] …, [Errno 99] …"),
        sa_exc.TimeoutError("QueuePool limit reached"),
        sa_exc.OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked")),
    ]
    bugs: list[BaseException] = [
        sa_exc.OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: t")),
        sa_exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")),
        FileNotFoundError(2, "No such file or directory"),
    ]
    assert [is_database_outage(e) for e in outages] == [True] * len(outages)
    assert [is_database_outage(e) for e in bugs] == [False] * len(bugs)


class TcpProxy:
    """Forwards a loopback port to a server; `cut` drops it (and every connection), `mend`
    listens again on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def mend(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, upstream_writer}
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


async def test_readiness_and_writes_follow_postgres_down_and_back(
    db: Database, nats_url: str, subject_root: str, data_dir: Path
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite is a file: there is no server to lose")
    real = make_url(db.url)
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432)
    await proxy.mend()
    url = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    app: FastAPI
    async with probe_app(settings_for(url, nats_url, subject_root, data_dir)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://p") as client:
            assert (await client.post("/v1/things/before")).status_code == 201
            assert (await readiness(client))[0] == 200

            await proxy.cut()
            status, checks = await readiness(client)
            assert status == 503 and checks["database"].startswith("failing"), checks
            response = await client.post("/v1/things/during")
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "database_unavailable"

            await proxy.mend()

            async def ready() -> bool:
                return (await readiness(client))[0] == 200

            await wait_until(ready, RECOVERY_BOUND_SECONDS, "ready again without a restart")
            assert (await client.post("/v1/things/after")).status_code == 201
        await proxy.cut()
