"""stations: the nearby index also holds lat and lon

A nearby search asks for the active stations in a few H3 r7 cells that lie inside the
circle's bounding box. With lat and lon in the index (after h3_r7 and status) PostgreSQL
checks the box on index entries and reads from the table only the rows inside it, instead of
every row of the cells (most of which lie outside the box: the cells cover 15-40 km² for a
circle of 4 km²). Queries that only need (h3_r7, status), such as coverage, use its prefix.

Revision ID: 7c2e9a4b1d05
Revises: 5b0f3c1d9a27
Create Date: 2026-11-30 10:00:00
"""

from __future__ import annotations

from alembic import op

revision = "7c2e9a4b1d05"
down_revision = "5b0f3c1d9a27"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stations") as batch:
        batch.create_index(
            "ix_stations_h3_r7_status_lat_lon", ["h3_r7", "status", "lat", "lon"], unique=False
        )
        batch.drop_index("ix_stations_h3_r7_status")


def downgrade() -> None:
    with op.batch_alter_table("stations") as batch:
        batch.create_index("ix_stations_h3_r7_status", ["h3_r7", "status"], unique=False)
        batch.drop_index("ix_stations_h3_r7_status_lat_lon")
