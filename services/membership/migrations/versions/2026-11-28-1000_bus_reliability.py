"""bus reliability: events numbered per aggregate, consumer positions, dead letters

`outbox.aggregate_seq` and `outbox_sequences` number each aggregate's events in commit
order; `consumer_positions` and `dead_letters` stay empty until this service consumes
events (every service has every bus table).
The tables come from `gonghui_shared.bus.tables`, as every service's do.

Revision ID: a9a3c73064e1
Revises: 47aa4c596a43
Create Date: 2026-11-28 10:00:00
"""

from __future__ import annotations

from alembic import op

from gonghui_shared.bus.tables import create_bus_reliability_tables, drop_bus_reliability_tables

revision = "a9a3c73064e1"
down_revision = "47aa4c596a43"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_bus_reliability_tables(op)


def downgrade() -> None:
    drop_bus_reliability_tables(op)
