"""Tracing: a request's trace goes with its event through the outbox and NATS to the consumer,
and with tracing off nothing is made or exported.

The probe service (`gonghui_shared.testing.probe`) consumes its own events, so one app has
all the links: a request writes an event, its relay publishes it, its consumer applies it.
Spans go to an in-memory exporter in place of OTLP.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import select

from gonghui_shared import tracing
from gonghui_shared.bus import Bus
from gonghui_shared.bus.connection import stream_name
from gonghui_shared.db import Database
from gonghui_shared.testing.busdb import outbox
from gonghui_shared.testing.probe import (
    SOURCE,
    ProbeSettings,
    Tally,
    applied_ids,
    probe_app,
    subscription,
    wait_until,
)


class Collector:
    """Stands in for `tracing.span_processor`: an in-memory exporter, and how often asked."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.asked = 0

    def __call__(self, settings: Any) -> SimpleSpanProcessor:
        self.asked += 1
        return SimpleSpanProcessor(self.exporter)

    def spans(self, trace_id: int, kind: SpanKind | None = None) -> list[ReadableSpan]:
        return [
            span
            for span in self.exporter.get_finished_spans()
            if span.context.trace_id == trace_id and (kind is None or span.kind is kind)
        ]


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Collector:
    collector = Collector()
    monkeypatch.setattr(tracing, "span_processor", collector)
    return collector


def probe_settings(db: Database, nats_url: str, subject_root: str, data_dir: Path, on: bool) -> Any:
    return ProbeSettings(
        database_url=db.url,
        nats_url=nats_url,
        # A stream of its own: the relay publishes every unsent row of the test's database.
        subject_root=f"{subject_root}tr{uuid.uuid4().hex[:6]}",
        data_dir=data_dir,
        environment="test",
        outbox_poll_seconds=0.1,
        otel_enabled=on,
    )


def traceparent(trace_id: int, span_id: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-01"


async def stored_headers(db: Database) -> list[Any]:
    async with db.sessions() as session:
        return list(await session.scalars(select(outbox.c.headers).order_by(outbox.c.position)))


async def published_headers(bus_root: str, nats_url: str) -> dict[str, str]:
    probe = Bus(nats_url, "reader", root=bus_root)
    probe.start()
    try:
        assert await probe.connected(10)
        message = await probe.js.get_last_msg(stream_name(bus_root, SOURCE), f"{bus_root}.>")
        return dict(message.headers or {})
    finally:
        await probe.close()


async def test_the_consumer_span_continues_the_request_trace_through_nats(
    db: Database, nats_url: str, subject_root: str, data_dir: Path, collector: Collector
) -> None:
    settings = probe_settings(db, nats_url, subject_root, data_dir, on=True)
    sub = subscription(Tally(failing={"poison"}), max_deliver=2, backoff_seconds=[0.1])
    caller_trace, caller_span = uuid.uuid4().int >> 1, uuid.uuid4().int >> 65
    async with probe_app(settings, [sub]) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            answered = await client.post(
                "/v1/things/t1", headers={"traceparent": traceparent(caller_trace, caller_span)}
            )
            assert answered.status_code == 201

            async def consumed() -> bool:
                return bool(collector.spans(caller_trace, SpanKind.CONSUMER))

            await wait_until(consumed, what="the consumer's span")

            # A caller without a trace: the request starts one.
            assert (await client.post("/v1/things/poison")).status_code == 201

            async def failed_once() -> bool:
                return any(
                    span.kind is SpanKind.CONSUMER and span.status.status_code is StatusCode.ERROR
                    for span in collector.exporter.get_finished_spans()
                )

            await wait_until(failed_once, what="the failing consumer's span")
        published = await published_headers(settings.subject_root, nats_url)

    assert collector.asked == 1, "one provider for the service"
    (server,) = collector.spans(caller_trace, SpanKind.SERVER)
    (producer,) = collector.spans(caller_trace, SpanKind.PRODUCER)
    (consumer,) = collector.spans(caller_trace, SpanKind.CONSUMER)
    assert server.parent is not None and server.parent.is_remote
    assert server.parent.span_id == caller_span
    assert server.name == "POST /v1/things/{thing_id}"
    assert server.attributes is not None and server.attributes["http.response.status_code"] == 201
    assert server.resource.attributes["service.name"] == SOURCE

    # The outbox kept the request's context; the relay published its own span's.
    first_stored = (await stored_headers(db))[0]
    assert first_stored == {"traceparent": traceparent(caller_trace, server.context.span_id)}
    assert producer.parent is not None and producer.parent.span_id == server.context.span_id
    assert consumer.parent is not None and consumer.parent.span_id == producer.context.span_id
    assert consumer.attributes is not None
    assert consumer.attributes["messaging.consumer.group.name"] == sub.durable
    assert consumer.attributes["gonghui.consumer.outcome"] == "applied"
    assert consumer.status.status_code is not StatusCode.ERROR

    # The second request started a trace of its own, and its failures are marked.
    (failing_server,) = [
        s
        for s in collector.exporter.get_finished_spans()
        if s.kind is SpanKind.SERVER and s.context.trace_id != caller_trace
    ]
    assert failing_server.parent is None
    poison_trace = failing_server.context.trace_id
    failed = [
        s
        for s in collector.spans(poison_trace, SpanKind.CONSUMER)
        if s.status.status_code is StatusCode.ERROR
    ]
    assert failed and any(event.name == "exception" for event in failed[0].events)
    assert published["traceparent"].split("-")[1] == f"{poison_trace:032x}"


async def test_with_tracing_off_nothing_is_made_stored_or_exported(
    db: Database, nats_url: str, subject_root: str, data_dir: Path, collector: Collector
) -> None:
    settings = probe_settings(db, nats_url, subject_root, data_dir, on=False)
    handler = Tally()
    async with probe_app(settings, [subscription(handler)]) as app:
        runtime = app.state.runtime
        assert not runtime.tracing.enabled and runtime.tracing.provider is None
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            answered = await client.post(
                "/v1/things/t1", headers={"traceparent": traceparent(1234, 5678)}
            )
            assert answered.status_code == 201

            async def applied() -> bool:
                return len(await applied_ids(db)) == 1

            await wait_until(applied, what="the event applied")
        published = await published_headers(settings.subject_root, nats_url)

    assert collector.asked == 0, "no span processor, so no exporter, was made"
    assert collector.exporter.get_finished_spans() == ()
    assert await stored_headers(db) == [None]
    assert "traceparent" not in published
    assert tracing.current_trace_headers() is None


async def test_a_process_wide_provider_adds_no_second_server_span(
    db: Database,
    nats_url: str,
    subject_root: str,
    data_dir: Path,
    collector: Collector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FastAPI traces requests itself once a process-wide provider is set (by an agent, a
    library): its spans would double ours. The service's own middleware makes the one
    SERVER span; FastAPI's telemetry stays off."""
    process_wide = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(process_wide))
    # Patched, not set: OpenTelemetry lets a process set its provider only once.
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    settings = probe_settings(db, nats_url, subject_root, data_dir, on=True)
    async with probe_app(settings, [subscription(Tally())]) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            assert (await client.post("/v1/things/t-once")).status_code == 201
    servers = [s for s in collector.exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert [s.name for s in servers] == ["POST /v1/things/{thing_id}"]
    assert process_wide.get_finished_spans() == ()
