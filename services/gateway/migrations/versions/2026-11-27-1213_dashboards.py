"""dashboards

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 12:13:15.532093
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
