"""The outbox and inbox tables every service has in its own database.

`outbox`: events written in the same transaction as the change they describe;
the relay publishes them and stamps `sent_at`. `inbox`: the ids of events a
consumer has applied, written in the same transaction as the effect, so a
redelivered event is recognised and skipped.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
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


def _inbox_columns() -> list[Column[Any]]:
    return [
        Column("consumer", String(120), primary_key=True),
        Column("event_id", String(36), primary_key=True),
        Column("event_type", String(120), nullable=False),
        Column("processed_at", UtcDateTime(), nullable=False),
    ]


def bus_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Attach the outbox and inbox tables to a service's metadata."""
    outbox = Table("outbox", metadata, *_outbox_columns())
    Index("ix_outbox_unsent", outbox.c.sent_at, outbox.c.position)
    return outbox, Table("inbox", metadata, *_inbox_columns())


def create_bus_tables(op: Any) -> None:
    """For a service's first Alembic migration: `create_bus_tables(op)`."""
    op.create_table("outbox", *_outbox_columns())
    op.create_index("ix_outbox_unsent", "outbox", ["sent_at", "position"])
    op.create_table("inbox", *_inbox_columns())


def drop_bus_tables(op: Any) -> None:
    op.drop_table("inbox")
    op.drop_index("ix_outbox_unsent", table_name="outbox")
    op.drop_table("outbox")
