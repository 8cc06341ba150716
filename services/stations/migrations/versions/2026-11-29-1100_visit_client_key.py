"""visits.client_key: a retried visit is found, not recorded twice

The gateway forwards a device's `Idempotency-Key`; the visit keeps it, unique per
recorder, so a retry after a lost answer returns the first visit. Null on older rows.

Revision ID: 5b0f3c1d9a27
Revises: dded6824becd
Create Date: 2026-11-29 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "5b0f3c1d9a27"
down_revision = "dded6824becd"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("visits") as batch:
        batch.add_column(sa.Column("client_key", sa.String(200), nullable=True))
        batch.create_index(
            "ux_visits_recorder_client_key", ["recorded_by", "client_key"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("visits") as batch:
        batch.drop_index("ux_visits_recorder_client_key")
        batch.drop_column("client_key")
