"""A minimal database with only the bus tables, for testing the bus itself.

It is built with `create_bus_tables`, the helper every service's first
migration calls, so these tests exercise that migration code too.
"""

from __future__ import annotations

from typing import Any

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Column, Integer, MetaData, String, Table

from gonghui_shared.bus import bus_tables, create_bus_tables

metadata = MetaData()
outbox, inbox = bus_tables(metadata)


def _tally_columns() -> list[Column[Any]]:
    return [
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False),
    ]


# What the test consumer's handler writes: one row per applied event.
tally = Table("tally", metadata, *_tally_columns())


def migrate_bus_db(connection: Any) -> None:
    op = Operations(MigrationContext.configure(connection))
    create_bus_tables(op)
    op.create_table("tally", *_tally_columns())
