"""Advisory locks for the handlers that must not interleave (see their callers)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Boolean, Integer, case, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession


async def advisory_locks(
    session: AsyncSession,
    keys: Iterable[tuple[int, int]],
    shared: Iterable[tuple[int, int]] = (),
) -> None:
    """Transaction-scoped advisory locks (two 32-bit keys each) on PostgreSQL, exclusive for
    `keys` and shared for `shared` (exclusive wins for a key in both), taken in one
    statement and in one order, so two takers cannot deadlock: PostgreSQL evaluates a
    volatile function of the select list after the sort. SQLite has one writer at a time:
    nothing to take."""
    exclusive = set(keys)
    wanted = sorted(
        [(k, o, False) for k, o in exclusive] + [(k, o, True) for k, o in set(shared) - exclusive]
    )
    if not wanted or session.get_bind().dialect.name != "postgresql":
        return
    pairs = select(
        func.unnest(literal([k for k, _, _ in wanted], ARRAY(Integer))).label("k"),
        func.unnest(literal([o for _, o, _ in wanted], ARRAY(Integer))).label("o"),
        func.unnest(literal([s for _, _, s in wanted], ARRAY(Boolean))).label("s"),
    ).subquery()
    lock = case(
        (pairs.c.s, func.pg_advisory_xact_lock_shared(pairs.c.k, pairs.c.o)),
        else_=func.pg_advisory_xact_lock(pairs.c.k, pairs.c.o),
    )
    await session.execute(select(lock).order_by(pairs.c.k, pairs.c.o))
