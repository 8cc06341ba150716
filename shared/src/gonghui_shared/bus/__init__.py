"""The NATS JetStream bus: connection, outbox relay, idempotent consumers."""

from gonghui_shared.bus.connection import Bus, stream_name
from gonghui_shared.bus.consumer import EventConsumer, Subscription
from gonghui_shared.bus.outbox import record_event
from gonghui_shared.bus.relay import OutboxRelay
from gonghui_shared.bus.tables import bus_tables, create_bus_tables, drop_bus_tables

__all__ = [
    "Bus",
    "EventConsumer",
    "OutboxRelay",
    "Subscription",
    "bus_tables",
    "create_bus_tables",
    "drop_bus_tables",
    "record_event",
    "stream_name",
]
