"""audit log: the append-only record of every write and every unmasked read

The table, its indexes and the database guard that refuses UPDATE and DELETE of
its rows all come from `gonghui_shared.audit`, as every service's audit log does.

Revision ID: 9b44b6e94770
Revises: f58a68ec0f69
Create Date: 2026-11-27 12:24:00
"""

from __future__ import annotations

from alembic import op

from gonghui_shared.audit import create_audit_table, drop_audit_table

revision = "9b44b6e94770"
down_revision = "f58a68ec0f69"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_table(op)


def downgrade() -> None:
    drop_audit_table(op)
