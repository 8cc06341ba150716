"""applications: drop the person-hash indexes no query uses

`ix_applications_id_number_hash` and `ix_applications_phone_hash` came with the person
columns the table shares with `members`. Every look-up of applications by ID number hash is
of pending ones, which `uq_applications_pending_person` serves, and none is by phone; each
cost a random B-tree insert for every application (a roster import makes 100,000 at once).
`members` keeps both.

Revision ID: 5c0f3e2b9d41
Revises: 82d9e87e75dd
Create Date: 2026-11-30 10:00:00
"""

from __future__ import annotations

from alembic import op

revision = "5c0f3e2b9d41"
down_revision = "82d9e87e75dd"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_applications_phone_hash", table_name="applications")
    op.drop_index("ix_applications_id_number_hash", table_name="applications")


def downgrade() -> None:
    op.create_index("ix_applications_id_number_hash", "applications", ["id_number_hash"])
    op.create_index("ix_applications_phone_hash", "applications", ["phone_hash"])
