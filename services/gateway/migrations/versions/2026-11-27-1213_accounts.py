"""accounts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 12:13:14.931187
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
