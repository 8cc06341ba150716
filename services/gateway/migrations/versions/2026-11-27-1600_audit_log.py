"""audit log: the append-only record of the gateway's own writes

Accounts, API keys, sign-ins and sign-outs. Requests forwarded to a service are
audited by that service. The table, its indexes and the database guard that refuses
UPDATE and DELETE of its rows come from `gonghui_shared.audit`, as every service's do.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 16:00:00.000000
"""

from __future__ import annotations

from alembic import op

from gonghui_shared.audit import create_audit_table, drop_audit_table

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_table(op)


def downgrade() -> None:
    drop_audit_table(op)
