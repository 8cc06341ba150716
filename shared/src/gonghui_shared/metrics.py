"""Prometheus metrics, one set per process, labelled by service (or consumer).

Every service serves them at `/metrics`; README, Operations, "Metrics and tracing", lists
them with what to alert on, and deploy/prometheus/prometheus.yml scrapes them.
"""

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
# Errors are `gonghui_http_requests_total{status=~"5.."}`; this one says which exception,
# and also counts one that broke off a response already under way (its status is not 5xx).
HTTP_EXCEPTIONS = Counter(
    "gonghui_http_exceptions_total",
    "Requests that ended in an unhandled exception, by its class",
    ["service", "route", "exception"],
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
CONSUMER_LAG = Gauge(
    "gonghui_consumer_lag",
    "Events in the stream not yet delivered to this durable consumer (JetStream num_pending)",
    ["consumer"],
)
CONSUMER_RESUBSCRIBED = Counter(
    "gonghui_consumer_resubscribed_total",
    "Pull subscriptions re-created; reason: reconnect, or stall (messages waiting, none came)",
    ["consumer", "reason"],
)
DEAD_LETTERS = Counter(
    "gonghui_dead_letters_total",
    "Events a consumer gave up on; reason: failed, out_of_order or unreadable",
    ["consumer", "reason"],
)
DEAD_LETTERS_UNREPLAYED = Gauge(
    "gonghui_dead_letters_unreplayed", "Dead letters waiting for a replay", ["consumer"]
)
DEAD_LETTERS_REPLAYED = Counter(
    "gonghui_dead_letters_replayed_total", "Dead letters replayed by an admin", ["consumer"]
)
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
