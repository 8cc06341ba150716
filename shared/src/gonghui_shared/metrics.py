"""Prometheus metrics, one set per process, labelled by service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "gonghui_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "gonghui_http_request_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OUTBOX_BACKLOG = Gauge(
    "gonghui_outbox_backlog", "Events committed but not yet published", ["service"]
)
OUTBOX_PUBLISHED = Counter("gonghui_outbox_published_total", "Events published", ["service"])
OUTBOX_DUPLICATES = Counter(
    "gonghui_outbox_duplicates_total",
    "Re-publishes JetStream recognised as duplicates",
    ["service"],
)
CONSUMER_EVENTS = Counter(
    "gonghui_consumer_events_total", "Events consumed", ["consumer", "outcome"]
)
CONSUMER_FAILED = Counter("gonghui_consumer_failures_total", "Handler failures", ["consumer"])
UPSTREAM_REQUESTS = Counter(
    "gonghui_upstream_requests_total",
    "Calls from the gateway to a service; status is the HTTP status, or what went wrong",
    ["service", "method", "status"],
)
UPSTREAM_LATENCY = Histogram(
    "gonghui_upstream_request_seconds",
    "Time from sending a call to a service until its response headers (or the failure)",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
