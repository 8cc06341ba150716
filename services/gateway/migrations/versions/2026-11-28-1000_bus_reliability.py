"""bus reliability: events numbered per aggregate, consumer positions, dead letters

`outbox.aggregate_seq` and `outbox_sequences` number each aggregate's events in commit
order; `consumer_positions` and `dead_letters` serve this service's consumers (the
order of each aggregate's events, and the events they gave up on).
The tables come from `gonghui_shared.bus.tables`, as every service's do.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 10:00:00
"""

from __future__ import annotations

from alembic import op

from gonghui_shared.bus.tables import create_bus_reliability_tables, drop_bus_reliability_tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_bus_reliability_tables(op)


def downgrade() -> None:
    drop_bus_reliability_tables(op)
