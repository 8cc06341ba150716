"""OpenTelemetry tracing: one trace from the gateway through a service and NATS to the consumers.

Off unless `GONGHUI_OTEL_ENABLED=true`. On, a trace is made of:

- a SERVER span per HTTP request (`app.RequestContextMiddleware`), continuing the caller's
  W3C `traceparent` if it sent one;
- at the gateway, a CLIENT span per call to a service, whose `traceparent` goes with the call;
- the outbox keeps the trace context of the transaction that wrote an event (`outbox.headers`);
  the relay continues it in a PRODUCER span and publishes that span's `traceparent` as a NATS
  header;
- a consumer continues the message's `traceparent` in a CONSUMER span around applying it.

Each service has its own `TracerProvider`, not OpenTelemetry's process-wide one, so services
running in one test process keep their own `service.name`. Spans go out in batches over
OTLP/HTTP; the exporter reads the standard `OTEL_EXPORTER_OTLP_*` variables (endpoint,
headers, timeout), the provider `OTEL_TRACES_SAMPLER`, and `OTEL_SERVICE_NAME` and
`OTEL_RESOURCE_ATTRIBUTES` override the resource's defaults.

Off, nothing is built (no provider, exporter or export thread; the SDK is not even
imported) and every hook returns at its first check.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    from gonghui_shared.settings import ServiceSettings

# W3C Trace Context only (`traceparent`, `tracestate`): what crosses HTTP and NATS.
PROPAGATOR = TraceContextTextMapPropagator()
TRACE_HEADERS = frozenset(PROPAGATOR.fields)

# Reused: entering a nullcontext twice is fine, and it costs no allocation per call.
_NO_SPAN: contextlib.AbstractContextManager[Span] = contextlib.nullcontext(INVALID_SPAN)


def span_processor(settings: ServiceSettings) -> SpanProcessor:
    """Where finished spans go: batches over OTLP/HTTP. Tests put an in-memory exporter here."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return BatchSpanProcessor(OTLPSpanExporter())


class Tracing:
    """A service's tracer, or none: `Tracing()` is off, and then every method is a no-op."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.provider = provider
        self._tracer = None if provider is None else provider.get_tracer("gonghui")

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Tracing:
        if not settings.otel_enabled:
            return cls()
        from opentelemetry.sdk.resources import OTELResourceDetector, Resource
        from opentelemetry.sdk.trace import TracerProvider

        defaults = Resource.create(
            {
                "service.name": settings.service_name,
                "service.namespace": "gonghui",
                "deployment.environment.name": settings.environment,
            }
        )
        provider = TracerProvider(resource=defaults.merge(OTELResourceDetector().detect()))
        provider.add_span_processor(span_processor(settings))
        return cls(provider)

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def span(
        self,
        name: str,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        parent: Mapping[str, str] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> contextlib.AbstractContextManager[Span]:
        """A span, current for the block. `parent`: headers whose `traceparent` it continues
        (without one it starts a trace); None: a child of the current span."""
        if self._tracer is None:
            return _NO_SPAN
        context = None if parent is None else PROPAGATOR.extract(parent)
        return self._tracer.start_as_current_span(
            name, context=context, kind=kind, attributes=attributes
        )

    def inject(self, carrier: MutableMapping[str, str]) -> None:
        """Add the current span's `traceparent` to outgoing headers (nothing when off)."""
        if self._tracer is not None:
            PROPAGATOR.inject(carrier)

    @contextlib.contextmanager
    def producing(
        self, subject: str, event_id: str, stored: Mapping[str, str] | None
    ) -> Iterator[dict[str, str]]:
        """The headers to publish an event with: the trace context stored with it, continued
        in a PRODUCER span when tracing is on (an event written outside any trace gets none)."""
        headers = dict(stored or {})
        if self._tracer is None or not headers:
            yield headers
            return
        with self.span(
            f"publish {subject}",
            kind=SpanKind.PRODUCER,
            parent=headers,
            attributes={
                "messaging.system": "nats",
                "messaging.operation.type": "send",
                "messaging.destination.name": subject,
                "messaging.message.id": event_id,
            },
        ):
            PROPAGATOR.inject(headers)
            yield headers

    def consuming(
        self, subject: str, headers: Mapping[str, str] | None, consumer: str
    ) -> contextlib.AbstractContextManager[Span]:
        """The CONSUMER span around applying one message, continuing its `traceparent`."""
        if self._tracer is None:
            return _NO_SPAN
        return self.span(
            f"process {subject}",
            kind=SpanKind.CONSUMER,
            parent=headers or {},
            attributes={
                "messaging.system": "nats",
                "messaging.operation.type": "process",
                "messaging.destination.name": subject,
                "messaging.consumer.group.name": consumer,
            },
        )

    def flush(self, timeout_seconds: float = 5.0) -> None:
        """Export what is finished (at shutdown; the provider shuts down when the process exits)."""
        if self.provider is not None:
            self.provider.force_flush(int(timeout_seconds * 1000))


def current_trace_headers() -> dict[str, str] | None:
    """The current span's trace context as headers, to store with an event; None outside a
    trace (always, when tracing is off: then no span is ever current)."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    headers: dict[str, str] = {}
    PROPAGATOR.inject(headers)
    return headers or None


def mark_failed(span: Span, exc: BaseException | None = None, description: str = "") -> None:
    """Record a failure the code handles itself (a span only sees exceptions that escape it)."""
    if exc is not None:
        span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, description or (repr(exc) if exc else None)))
