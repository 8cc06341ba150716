"""Every metric moves when what it counts happens: requests and their errors, the outbox
backlog, consumed events, failures and lag (dead letters: test_dead_letters.py; calls to
the services: the gateway's routing/test_proxy.py)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from gonghui_shared import metrics
from gonghui_shared.app import RequestContextMiddleware, health_router
from gonghui_shared.bus import Bus, EventConsumer, OutboxRelay, record_event
from gonghui_shared.db import Database
from gonghui_shared.errors import install_error_handlers
from gonghui_shared.testing.busdb import inbox, outbox
from gonghui_shared.testing.probe import (
    Tally,
    ThingHappened,
    publish,
    subscription,
    thing_envelope,
    wait_until,
)

SERVICE = "metrics-test"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def client() -> Any:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, service=SERVICE)
    app.include_router(health_router())

    @app.get("/ok/{n}")
    async def ok(n: int) -> dict[str, int]:
        return {"n": n}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    @app.get("/busy")
    async def busy() -> JSONResponse:
        return JSONResponse({"error": "busy"}, status_code=503)

    # The app's own 500 answer, as a server gives it, instead of the exception.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
        yield client


async def test_requests_are_counted_and_timed_by_route_template(client: httpx.AsyncClient) -> None:
    labels = {"service": SERVICE, "method": "GET", "route": "/ok/{n}"}
    before = sample("gonghui_http_requests_total", **labels, status="200")
    timed_before = sample("gonghui_http_request_seconds_count", **labels)
    for n in range(3):
        assert (await client.get(f"/ok/{n}")).status_code == 200
    assert sample("gonghui_http_requests_total", **labels, status="200") == before + 3
    assert sample("gonghui_http_request_seconds_count", **labels) == timed_before + 3


async def test_server_errors_and_unhandled_exceptions_are_counted(
    client: httpx.AsyncClient,
) -> None:
    boom = {"service": SERVICE, "method": "GET", "route": "/boom", "status": "500"}
    busy = {"service": SERVICE, "method": "GET", "route": "/busy", "status": "503"}
    exceptions = {"service": SERVICE, "route": "/boom", "exception": "RuntimeError"}
    before = (
        sample("gonghui_http_requests_total", **boom),
        sample("gonghui_http_requests_total", **busy),
        sample("gonghui_http_exceptions_total", **exceptions),
    )
    answered = await client.get("/boom")
    assert answered.status_code == 500
    assert answered.json()["error"]["code"] == "internal_error"
    assert (await client.get("/busy")).status_code == 503
    assert (
        sample("gonghui_http_requests_total", **boom),
        sample("gonghui_http_requests_total", **busy),
        sample("gonghui_http_exceptions_total", **exceptions),
    ) == (before[0] + 1, before[1] + 1, before[2] + 1)


async def test_the_scrape_lists_every_metric(client: httpx.AsyncClient) -> None:
    scraped = (await client.get("/metrics")).text
    found = [m for m in vars(metrics).values() if isinstance(m, Counter | Gauge | Histogram)]
    assert len(found) >= 14
    for metric in found:
        name = metric._name + ("_total" if isinstance(metric, Counter) else "")
        assert f"# HELP {name} " in scraped, f"{name} is not exposed"


async def test_outbox_backlog_rises_while_publishing_fails_and_falls_once_published(
    db: Database, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = f"metrics{uuid.uuid4().hex[:6]}"  # a backlog gauge of this test's own
    relay = OutboxRelay(db, bus, outbox, service=service)
    for n in range(2):
        async with db.transaction() as session:
            await record_event(
                session, outbox, ThingHappened(thing_id=f"b{n}"), aggregate_id=f"b{n}"
            )

    async def unreachable(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("NATS is down")

    with monkeypatch.context() as patched:
        patched.setattr(bus.js, "publish", unreachable)
        with pytest.raises(ConnectionError):
            await relay.publish_batch()
    assert sample("gonghui_outbox_backlog", service=service) == 2
    assert sample("gonghui_outbox_published_total", service=service) == 0

    assert await relay.publish_batch() == 2
    assert sample("gonghui_outbox_backlog", service=service) == 0
    assert sample("gonghui_outbox_published_total", service=service) == 2


class Gate(Tally):
    """Tally, but the first call waits until the test opens the gate, and each failing
    thing fails once."""

    def __init__(self, failing: set[str]) -> None:
        super().__init__(failing=failing)
        self.entered = asyncio.Event()
        self.open = asyncio.Event()

    async def __call__(self, session: Any, event: Any, envelope: Any) -> None:
        self.entered.set()
        await self.open.wait()
        try:
            await super().__call__(session, event, envelope)
        except RuntimeError:
            self.failing.discard(event.thing_id)  # fails once only
            raise


async def test_consumer_lag_falls_to_zero_as_events_are_applied(db: Database, bus: Bus) -> None:
    for thing in ("a", "b", "c"):
        await publish(bus, thing_envelope(thing, seq=1))
    handler = Gate(failing={"b"})
    sub = subscription(handler, backoff_seconds=[0.1])
    consumer = EventConsumer(db, bus, inbox, sub)
    consumer.start()
    try:
        await asyncio.wait_for(handler.entered.wait(), 10)
        # Subscribed (the count came with the consumer's info), nothing applied yet.
        assert sample("gonghui_consumer_lag", consumer=sub.durable) == 3
        handler.open.set()

        async def all_applied() -> bool:
            applied = sample(
                "gonghui_consumer_events_total", consumer=sub.durable, outcome="applied"
            )
            return applied == 3

        await wait_until(all_applied, what="three events applied")
        assert sample("gonghui_consumer_lag", consumer=sub.durable) == 0
        assert sample("gonghui_consumer_failures_total", consumer=sub.durable) == 1

        await publish(bus, thing_envelope("d", seq=1))

        async def caught_up() -> bool:
            applied = sample(
                "gonghui_consumer_events_total", consumer=sub.durable, outcome="applied"
            )
            return applied == 4 and sample("gonghui_consumer_lag", consumer=sub.durable) == 0

        await wait_until(caught_up, what="the fourth event applied")
    finally:
        await consumer.stop()
