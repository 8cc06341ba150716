"""One trace from a caller through the gateway, membership and NATS to the consumers.

The gateway, membership and training run with tracing on (GONGHUI_OTEL_ENABLED), their
spans going to one in-memory exporter in place of OTLP. An approval through the gateway is
followed to training's replica of the member and the gateway's dashboards, which apply the
event membership published. Tracing is the same on both databases: SQLite only.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import membership
import training
from gateway.config import GatewaySettings
from gateway.main import create_app
from gateway.routing.testing import LoopbackServer
from gonghui_shared import tracing
from gonghui_shared.permissions import Role
from gonghui_shared.testing import migrated_database
from gonghui_shared.testing.probe import wait_until
from membership.config import MembershipSettings
from membership.main import create_app as membership_app
from membership.testing import Api as MembershipApi
from training.config import TrainingSettings
from training.main import create_app as training_app

GATEWAY_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
APPROVED = "membership.member.approved"


@dataclass
class Traced:
    """The three services with tracing on, and where their spans went."""

    gateway: httpx.AsyncClient
    membership: MembershipApi
    exporter: InMemorySpanExporter

    def spans(self, trace_id: int) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.context.trace_id == trace_id]


def _ini(package: Any) -> Path:
    return Path(package.__file__).resolve().parents[2] / "alembic.ini"


@pytest.fixture(scope="module")
async def traced(
    nats_url: str, subject_root: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Traced]:
    exporter = InMemorySpanExporter()
    folder = tmp_path_factory.mktemp("traced")
    common: dict[str, Any] = {
        "nats_url": nats_url,
        # One root for the three: the gateway's dashboards consume membership's events too.
        "subject_root": f"{subject_root}trace",
        "data_dir": data_dir,
        "environment": "test",
        "outbox_poll_seconds": 0.1,
        "otel_enabled": True,
        "trusted_proxies": "127.0.0.1",
    }
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(tracing, "span_processor", lambda _: SimpleSpanProcessor(exporter))
        async with AsyncExitStack() as stack:
            urls: dict[str, str] = {}
            for package, settings_class, factory in (
                (membership, MembershipSettings, membership_app),
                (training, TrainingSettings, training_app),
            ):
                name = package.__name__
                databases = migrated_database("sqlite", _ini(package), folder, f"trace_{name}")
                stack.push_async_callback(databases.aclose)
                app = factory(settings_class(database_url=await anext(databases), **common))
                await stack.enter_async_context(app.router.lifespan_context(app))
                server = LoopbackServer(app)
                await server.start()
                stack.push_async_callback(server.stop)
                urls[name] = server.url
            databases = migrated_database("sqlite", GATEWAY_INI, folder, "trace_gateway")
            stack.push_async_callback(databases.aclose)
            settings = GatewaySettings(
                database_url=await anext(databases),
                membership_url=urls["membership"],
                training_url=urls["training"],
                stations_url="http://127.0.0.1:9",  # not called
                **common,
            )
            gateway = create_app(settings)
            await stack.enter_async_context(gateway.router.lifespan_context(gateway))
            client = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=gateway), base_url="http://gw", timeout=30
                )
            )
            direct = await stack.enter_async_context(
                httpx.AsyncClient(base_url=urls["membership"], timeout=30)
            )
            yield Traced(client, MembershipApi(direct, settings), exporter)


def only(spans: list[ReadableSpan], **where: Any) -> ReadableSpan:
    """The one span matching `where` (kind, service, or any attribute)."""
    found = [
        span
        for span in spans
        if all(
            span.kind is value
            if key == "kind"
            else span.resource.attributes.get("service.name") == value
            if key == "service"
            else (span.attributes or {}).get(key) == value
            for key, value in where.items()
        )
    ]
    assert len(found) == 1, f"{len(found)} spans match {where}: {[s.name for s in spans]}"
    return found[0]


def parent_of(spans: list[ReadableSpan], child: ReadableSpan) -> ReadableSpan:
    assert child.parent is not None, f"{child.name} has no parent"
    (parent,) = [s for s in spans if s.context.span_id == child.parent.span_id]
    return parent


async def test_an_approval_is_one_trace_from_the_gateway_to_the_consumers(
    traced: Traced,
) -> None:
    api = traced.membership
    county, _, village = await api.tree()
    application = await api.apply(village, await api.roster(village))
    caller_trace, caller_span = uuid.uuid4().int >> 1, uuid.uuid4().int >> 65

    answered = await traced.gateway.post(
        f"/v1/membership/applications/{application['id']}/approve",
        json={"approval_doc_no": "凤工复〔2026〕12号"},
        headers={
            **api.headers(Role.county_admin, county),
            "traceparent": f"00-{caller_trace:032x}-{caller_span:016x}-01",
        },
    )
    assert answered.status_code == 200, answered.text

    consumers = {"training": "training__membership", "gateway": "gateway__membership_dashboards"}

    async def both_consumed() -> bool:
        applied = [
            s
            for s in traced.spans(caller_trace)
            if s.kind is SpanKind.CONSUMER
            and (s.attributes or {}).get("gonghui.event.type") == APPROVED
        ]
        return len(applied) == len(consumers)

    await wait_until(both_consumed, what="training and the dashboards applying the approval")
    spans = traced.spans(caller_trace)

    # caller -> gateway SERVER -> gateway CLIENT -> membership SERVER -> PRODUCER -> CONSUMERs
    edge = only(spans, kind=SpanKind.SERVER, service="gateway")
    assert edge.parent is not None and edge.parent.is_remote
    assert edge.parent.span_id == caller_span
    call = parent_of(spans, only(spans, kind=SpanKind.SERVER, service="membership"))
    assert call.kind is SpanKind.CLIENT and call.resource.attributes["service.name"] == "gateway"
    assert parent_of(spans, call) is edge
    membership_server = only(spans, kind=SpanKind.SERVER, service="membership")
    assert membership_server.name == "POST /v1/applications/{application_id}/approve"
    for service, durable in consumers.items():
        consumer = only(
            spans,
            kind=SpanKind.CONSUMER,
            service=service,
            **{"gonghui.event.type": APPROVED, "messaging.consumer.group.name": durable},
        )
        producer = parent_of(spans, consumer)
        assert producer.kind is SpanKind.PRODUCER
        assert producer.resource.attributes["service.name"] == "membership"
        assert producer.name.endswith(f"{APPROVED}.v1")
        assert parent_of(spans, producer) is membership_server
        assert consumer.attributes is not None
        assert consumer.attributes["gonghui.consumer.outcome"] == "applied"
