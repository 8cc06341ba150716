"""phone hash: find members by phone (the gateway's login by one-time code)

Adds a keyed hash of the E.164 phone to applications and members, as the ID
number already has, and fills it for the rows that exist: each phone is
decrypted with the service's personal-data keys (the same GONGHUI_PII_* settings
or dev keys the service runs with) and hashed with its hash key. A row that
cannot be decrypted keeps a null hash and is reported; it is simply not found
by phone.

Revision ID: 5c2f8e1a7b34
Revises: 1a81355dc879
Create Date: 2026-11-27 13:00:00
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "5c2f8e1a7b34"
down_revision = "1a81355dc879"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

_TABLES = ("applications", "members")
_BATCH = 1000


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("phone_hash", sa.String(length=64), nullable=True))
            batch_op.create_index(
                batch_op.f(f"ix_{table}_phone_hash"), ["phone_hash"], unique=False
            )
    _fill_hashes()


def downgrade() -> None:
    for table in reversed(_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_phone_hash"))
            batch_op.drop_column("phone_hash")


def _fill_hashes() -> None:
    bind = op.get_bind()
    cipher = None
    failed = 0
    for name in _TABLES:
        table = sa.table(
            name,
            sa.column("id", sa.String),
            sa.column("phone_encrypted", sa.Text),
            sa.column("phone_hash", sa.String),
        )
        last = ""
        while True:
            rows = bind.execute(
                sa.select(table.c.id, table.c.phone_encrypted)
                .where(table.c.id > last)
                .order_by(table.c.id)
                .limit(_BATCH)
            ).all()
            if not rows:
                break
            last = rows[-1].id
            if cipher is None:
                # Only a database with rows needs the keys (an empty one migrates anywhere).
                from gonghui_shared.runtime import load_pii_cipher
                from membership.config import MembershipSettings

                cipher = load_pii_cipher(MembershipSettings())
            updates = []
            for row in rows:
                try:
                    phone = cipher.decrypt(row.phone_encrypted)
                except Exception:  # noqa: BLE001 - a row we cannot read keeps a null hash
                    failed += 1
                    continue
                updates.append({"row_id": row.id, "hash": cipher.lookup_hash(phone)})
            if updates:
                bind.execute(
                    table.update()
                    .where(table.c.id == sa.bindparam("row_id"))
                    .values(phone_hash=sa.bindparam("hash")),
                    updates,
                )
    if failed:
        log.warning("phone_hash: %d rows could not be decrypted and keep a null hash", failed)
