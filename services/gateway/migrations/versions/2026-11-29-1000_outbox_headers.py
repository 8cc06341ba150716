"""outbox headers: the trace context each event is published with

`outbox.headers` holds the NATS headers the relay publishes an event with besides its
`Nats-Msg-Id`: the W3C `traceparent` of the transaction that wrote it, when tracing is on
(GONGHUI_OTEL_ENABLED), so a consumer's span joins the trace of the request. Null otherwise,
and on every row written before.
The column comes from `gonghui_shared.bus.tables`, as every service's bus tables do.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 10:00:00
"""

from __future__ import annotations

from alembic import op

from gonghui_shared.bus.tables import add_outbox_headers, drop_outbox_headers

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_outbox_headers(op)


def downgrade() -> None:
    drop_outbox_headers(op)
