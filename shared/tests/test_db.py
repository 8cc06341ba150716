"""The connection pool: a connection the server closed is replaced, not handed out."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from gonghui_shared.db import Database
from gonghui_shared.testing import postgres_url_or_skip


async def test_a_connection_closed_by_the_server_is_replaced_at_checkout() -> None:
    admin_url = postgres_url_or_skip()
    pooled = Database(admin_url, pool_size=1, max_overflow=0)
    admin = Database(admin_url, pool_size=1, max_overflow=0)
    try:
        async with pooled.engine.connect() as conn:
            victim = await conn.scalar(text("SELECT pg_backend_pid()"))
        async with admin.engine.connect() as conn:
            assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
        # asyncpg hears the socket close by itself, once the loop has read it.
        await asyncio.sleep(0.5)

        async with pooled.engine.connect() as conn:  # without the check: ConnectionDoesNotExist
            replacement = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert replacement != victim
    finally:
        await pooled.dispose()
        await admin.dispose()
