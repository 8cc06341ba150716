"""Checks on a service's audit log that every service's tests share."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Table, func, select, text
from sqlalchemy.exc import DBAPIError

from gonghui_shared.db import Database


async def audit_rows(db: Database, table: Table, **equal: Any) -> list[dict[str, Any]]:
    """The rows whose columns equal the given values, oldest first."""
    query = select(table).where(*(table.c[k] == v for k, v in equal.items())).order_by(table.c.id)
    async with db.engine.connect() as conn:
        return [dict(row._mapping) for row in await conn.execute(query)]


async def assert_append_only(db: Database, table: Table) -> None:
    """The database itself refuses to change or remove a row of `table` (which has rows)."""
    async with db.engine.connect() as conn:
        before = await conn.scalar(select(func.count()).select_from(table))
    assert before, "the check needs at least one row"
    name = table.name
    attempts = [
        f"UPDATE {name} SET status = 299",
        f"UPDATE {name} SET subject = 'someone-else' WHERE id = (SELECT MIN(id) FROM {name})",
        f"DELETE FROM {name} WHERE id = (SELECT MIN(id) FROM {name})",
        f"DELETE FROM {name}",
    ]
    if db.dialect == "postgresql":
        attempts.append(f"TRUNCATE {name}")
    for statement in attempts:
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.engine.begin() as conn:
                await conn.execute(text(statement))
    async with db.engine.connect() as conn:
        after = await conn.scalar(select(func.count()).select_from(table))
        changed = await conn.scalar(
            select(func.count()).select_from(table).where(table.c.status == 299)
        )
    assert after == before and changed == 0
