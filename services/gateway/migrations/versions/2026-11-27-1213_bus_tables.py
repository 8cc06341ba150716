"""bus tables

Revision ID: 0001
Revises:
Create Date: 2026-11-27 12:13:12.166088
"""

from __future__ import annotations

from alembic import op

from gonghui_shared.bus import create_bus_tables, drop_bus_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_bus_tables(op)


def downgrade() -> None:
    drop_bus_tables(op)
