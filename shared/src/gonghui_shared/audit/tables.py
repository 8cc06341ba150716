"""The append-only `audit_log` table every service keeps in its own database.

One row per audited request: who (subject, role, the org scope they act in), what
(method, route template, path parameters, the outcome status), when (UTC), from where
(the client address) and the request id, and whether personal data was shown unmasked.
`org_path` is the org the request acted on when a permission check named one (the
entity's org), else the actor's scope; a county admin reads the rows whose `org_path`
or `actor_org_path` lies in their subtree.

Append-only is enforced by the database, not only by the code (which never updates or
deletes rows): on PostgreSQL a statement-level trigger refuses UPDATE, DELETE and
TRUNCATE; on SQLite triggers RAISE(ABORT) on UPDATE and DELETE. A table owner can still
disable a PostgreSQL trigger: in production the services' database role should not own
the table. SQLite keeps triggers with the table, so a later migration that batch-alters
`audit_log` (which re-creates the table) must call `create_append_only_guard` again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    false,
)

from gonghui_shared.db import UtcDateTime

AUDIT_TABLE = "audit_log"

# Tables carrying this flag in `Table.info` are never emptied, not even between tests.
APPEND_ONLY = "append_only"


def _columns() -> list[Column[Any]]:
    return [
        Column("id", String(36), primary_key=True),  # UUIDv7: the pagination cursor
        Column("at", UtcDateTime(), nullable=False),
        Column("request_id", String(64), nullable=True),
        Column("subject", String(100), nullable=True),  # null: no valid token
        Column("role", String(30), nullable=True),
        Column("actor_org_path", String(800), nullable=True),
        Column("org_path", String(800), nullable=True),
        Column("method", String(10), nullable=False),
        Column("route", String(200), nullable=False),  # the template: /v1/members/{member_no}
        Column("path_params", JSON, nullable=False),
        Column("status", Integer, nullable=False),
        Column("personal_data", Boolean, nullable=False, server_default=false()),
        Column("client_addr", String(64), nullable=True),
    ]


def _indexes(name: str) -> list[tuple[str, list[str]]]:
    return [
        (f"ix_{name}_at", ["at"]),
        (f"ix_{name}_subject", ["subject"]),
        (f"ix_{name}_org_path", ["org_path"]),
    ]


def audit_table(metadata: MetaData, name: str = AUDIT_TABLE) -> Table:
    """Attach the audit table to a service's metadata (as `bus_tables` does the outbox)."""
    table = Table(name, metadata, *_columns(), info={APPEND_ONLY: True})
    for index, columns in _indexes(name):
        Index(index, *(table.c[c] for c in columns))
    return table


def create_audit_table(op: Any, name: str = AUDIT_TABLE) -> None:
    """For a service's Alembic migration: the table, its indexes and the append-only guard."""
    op.create_table(name, *_columns())
    for index, columns in _indexes(name):
        op.create_index(index, name, columns)
    create_append_only_guard(op, name)


def drop_audit_table(op: Any, name: str = AUDIT_TABLE) -> None:
    drop_append_only_guard(op, name)
    for index, _ in reversed(_indexes(name)):
        op.drop_index(index, table_name=name)
    op.drop_table(name)


def create_append_only_guard(op: Any, name: str = AUDIT_TABLE) -> None:
    """Triggers that make the database refuse UPDATE and DELETE (and TRUNCATE) of the table."""
    for statement in _guard_ddl(op.get_bind().dialect.name, name):
        op.execute(statement)


def drop_append_only_guard(op: Any, name: str = AUDIT_TABLE) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f'DROP TRIGGER IF EXISTS "{name}_append_only" ON "{name}"')
        op.execute(f'DROP FUNCTION IF EXISTS "{name}_append_only"()')
    else:
        op.execute(f'DROP TRIGGER IF EXISTS "{name}_no_update"')
        op.execute(f'DROP TRIGGER IF EXISTS "{name}_no_delete"')


def _guard_ddl(dialect: str, name: str) -> list[str]:
    message = f"{name} is append-only"
    if dialect == "postgresql":
        # Statement level: refused even when no row matches, and TRUNCATE is covered too.
        return [
            f"""
            CREATE FUNCTION "{name}_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{message}: % refused', TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END
            $$
            """,
            f"""
            CREATE TRIGGER "{name}_append_only"
            BEFORE UPDATE OR DELETE OR TRUNCATE ON "{name}"
            FOR EACH STATEMENT EXECUTE FUNCTION "{name}_append_only"()
            """,
        ]
    if dialect == "sqlite":
        return [
            f'CREATE TRIGGER "{name}_no_{what.lower()}" BEFORE {what} ON "{name}" '
            f"BEGIN SELECT RAISE(ABORT, '{message}: {what} refused'); END"
            for what in ("UPDATE", "DELETE")
        ]
    # Gonghui runs on SQLite and PostgreSQL only; any other database is a configuration error.
    raise ValueError(f"the audit log supports SQLite and PostgreSQL, not {dialect}")
