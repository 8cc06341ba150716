"""A minimal database with only the bus tables, for testing the bus itself.

It is built with `create_bus_tables`, `create_bus_reliability_tables` and
`add_outbox_headers`, the helpers every service's migrations call, so these tests
exercise that code too.
"""

from __future__ import annotations

from typing import Any

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Column, Integer, MetaData, String, Table

from gonghui_shared.bus import bus_tables, create_bus_tables
from gonghui_shared.bus.tables import add_outbox_headers, create_bus_reliability_tables

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
    create_bus_reliability_tables(op)
    add_outbox_headers(op)
    op.create_table("tally", *_tally_columns())
