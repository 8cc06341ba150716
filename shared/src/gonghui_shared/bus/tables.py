"""The bus tables every service has in its own database.

`outbox`: events written in the same transaction as the change they describe;
the relay publishes them and stamps `sent_at`. `outbox_sequences`: the last
`aggregate_seq` given out per aggregate, so each aggregate's events are numbered
1, 2, 3… in commit order. `inbox`: the ids of events a consumer has applied,
written in the same transaction as the effect, so a redelivered event is
recognised and skipped. `consumer_positions`: the last `aggregate_seq` each
consumer applied per aggregate, which tells an early event (held back until its
predecessor arrives) from a late duplicate. `dead_letters`: events a consumer
gave up on, kept for an admin to read and replay.

Migrations never change: `create_bus_tables` is the schema as first released
(every service's first migration calls it), `create_bus_reliability_tables`
is what the reliability release added, and `add_outbox_headers` what tracing added
(one later migration per service calls each). A new service's first migration calls all three.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from gonghui_shared.db import UtcDateTime

OUTBOX_SEQUENCES = "outbox_sequences"
CONSUMER_POSITIONS = "consumer_positions"
DEAD_LETTERS = "dead_letters"

# BigInteger autoincrement is INTEGER on SQLite (so it becomes the rowid).
_Position = BigInteger().with_variant(Integer(), "sqlite")


def _outbox_columns() -> list[Column[Any]]:
    return [
        Column("position", _Position, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("event_type", String(120), nullable=False),
        Column("event_version", Integer, nullable=False),
        Column("aggregate_id", String(64), nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("sent_at", UtcDateTime(), nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", Text, nullable=True),
    ]


def _aggregate_seq_column() -> Column[Any]:
    # Null on rows written before events were numbered.
    return Column("aggregate_seq", Integer, nullable=True)


def _outbox_headers_column() -> Column[Any]:
    # NATS headers the relay publishes the event with besides its Nats-Msg-Id: the trace
    # context of the transaction that wrote it. Null (SQL NULL, not JSON null) outside a trace.
    return Column("headers", JSON(none_as_null=True), nullable=True)


def _inbox_columns() -> list[Column[Any]]:
    return [
        Column("consumer", String(120), primary_key=True),
        Column("event_id", String(36), primary_key=True),
        Column("event_type", String(120), nullable=False),
        Column("processed_at", UtcDateTime(), nullable=False),
    ]


def _outbox_sequence_columns() -> list[Column[Any]]:
    return [
        Column("aggregate_id", String(64), primary_key=True),
        Column("last_seq", Integer, nullable=False),
    ]


def _consumer_position_columns() -> list[Column[Any]]:
    return [
        Column("consumer", String(120), primary_key=True),
        Column("aggregate_id", String(64), primary_key=True),
        Column("last_seq", Integer, nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
    ]


def _dead_letter_columns() -> list[Column[Any]]:
    return [
        Column("id", String(36), primary_key=True),  # UUIDv7: the pagination cursor
        Column("consumer", String(120), nullable=False),  # the durable that gave up
        # The envelope's facts; null when the message could not even be parsed.
        Column("event_id", String(36), nullable=True),
        Column("event_type", String(120), nullable=True),
        Column("aggregate_id", String(64), nullable=True),
        Column("aggregate_seq", Integer, nullable=True),
        Column("org_path", String(800), nullable=True),  # who may see and replay it
        Column("subject", String(255), nullable=False),
        Column("stream_seq", BigInteger, nullable=True),
        Column("payload", Text, nullable=False),  # the message body as received
        Column("headers", JSON, nullable=True),
        Column("error", Text, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("first_failed_at", UtcDateTime(), nullable=False),
        Column("last_failed_at", UtcDateTime(), nullable=False),
        Column("replayed_at", UtcDateTime(), nullable=True),
        Column("replayed_by", String(100), nullable=True),
    ]


# (name, columns, unique)
_DEAD_LETTER_INDEXES = [
    # One row per event and consumer: a second give-up updates it.
    ("ux_dead_letters_consumer_event", ["consumer", "event_id"], True),
    ("ix_dead_letters_consumer_replayed", ["consumer", "replayed_at"], False),
]


def bus_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Attach every bus table to a service's metadata; returns the outbox and the inbox.

    The others are found beside them: `companion(outbox, OUTBOX_SEQUENCES)`.
    """
    outbox = Table(
        "outbox", metadata, *_outbox_columns(), _aggregate_seq_column(), _outbox_headers_column()
    )
    Index("ix_outbox_unsent", outbox.c.sent_at, outbox.c.position)
    inbox = Table("inbox", metadata, *_inbox_columns())
    Table(OUTBOX_SEQUENCES, metadata, *_outbox_sequence_columns())
    Table(CONSUMER_POSITIONS, metadata, *_consumer_position_columns())
    dead_letters = Table(DEAD_LETTERS, metadata, *_dead_letter_columns())
    for name, columns, unique in _DEAD_LETTER_INDEXES:
        Index(name, *(dead_letters.c[c] for c in columns), unique=unique)
    return outbox, inbox


def companion(table: Table, name: str) -> Table:
    """Another bus table on the same metadata as `table` (both attached by `bus_tables`)."""
    try:
        return table.metadata.tables[name]
    except KeyError:
        raise LookupError(
            f"no {name!r} table beside {table.name!r}: attach the bus tables with bus_tables()"
        ) from None


def create_bus_tables(op: Any) -> None:
    """For a service's first Alembic migration: `create_bus_tables(op)` (the first release)."""
    op.create_table("outbox", *_outbox_columns())
    op.create_index("ix_outbox_unsent", "outbox", ["sent_at", "position"])
    op.create_table("inbox", *_inbox_columns())


def drop_bus_tables(op: Any) -> None:
    op.drop_table("inbox")
    op.drop_index("ix_outbox_unsent", table_name="outbox")
    op.drop_table("outbox")


def create_bus_reliability_tables(op: Any) -> None:
    """For the migration after `create_bus_tables`: event numbering and dead letters."""
    op.add_column("outbox", _aggregate_seq_column())
    op.create_table(OUTBOX_SEQUENCES, *_outbox_sequence_columns())
    op.create_table(CONSUMER_POSITIONS, *_consumer_position_columns())
    op.create_table(DEAD_LETTERS, *_dead_letter_columns())
    for name, columns, unique in _DEAD_LETTER_INDEXES:
        op.create_index(name, DEAD_LETTERS, columns, unique=unique)


def drop_bus_reliability_tables(op: Any) -> None:
    for name, _, _ in reversed(_DEAD_LETTER_INDEXES):
        op.drop_index(name, table_name=DEAD_LETTERS)
    op.drop_table(DEAD_LETTERS)
    op.drop_table(CONSUMER_POSITIONS)
    op.drop_table(OUTBOX_SEQUENCES)
    # Batch mode: SQLite rebuilds the table to drop a column.
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("aggregate_seq")


def add_outbox_headers(op: Any) -> None:
    """For the migration after `create_bus_reliability_tables`: headers to publish events with."""
    op.add_column("outbox", _outbox_headers_column())


def drop_outbox_headers(op: Any) -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("headers")
