"""Advisory locks for the handlers that must not interleave (see their callers)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Integer, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession


async def advisory_locks(session: AsyncSession, keys: Iterable[tuple[int, int]]) -> None:
    """Transaction-scoped advisory locks (two 32-bit keys each) on PostgreSQL, taken in
    one statement and in one order, so two takers cannot deadlock: PostgreSQL evaluates a
    volatile function of the select list after the sort. SQLite has one writer at a time:
    nothing to take."""
    wanted = sorted(set(keys))
    if not wanted or session.get_bind().dialect.name != "postgresql":
        return
    pairs = select(
        func.unnest(literal([k for k, _ in wanted], ARRAY(Integer))).label("k"),
        func.unnest(literal([o for _, o in wanted], ARRAY(Integer))).label("o"),
    ).subquery()
    await session.execute(
        select(func.pg_advisory_xact_lock(pairs.c.k, pairs.c.o)).order_by(pairs.c.k, pairs.c.o)
    )
