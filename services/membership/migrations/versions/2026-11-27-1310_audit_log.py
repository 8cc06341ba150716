"""audit log: the append-only record of every write and every unmasked read

The table, its indexes and the database guard that refuses UPDATE and DELETE of
its rows all come from `gonghui_shared.audit`, as every service's audit log does.

Revision ID: 47aa4c596a43
Revises: 5c2f8e1a7b34
Create Date: 2026-11-27 13:10:00
"""

from __future__ import annotations

from alembic import op

from gonghui_shared.audit import create_audit_table, drop_audit_table

revision = "47aa4c596a43"
down_revision = "5c2f8e1a7b34"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_table(op)


def downgrade() -> None:
    drop_audit_table(op)
