"""The connection pool: a connection the server closed is replaced, not handed out; reads
without a transaction."""

from __future__ import annotations

import asyncio
from pathlib import Path

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


async def test_a_reading_session_runs_each_statement_on_its_own_on_postgresql() -> None:
    db = Database(postgres_url_or_skip(), pool_size=1, max_overflow=0)
    xact = text("SELECT pg_current_xact_id()::text")  # the transaction's id (given one)
    try:
        async with db.reading() as session:
            first, second = await session.scalar(xact), await session.scalar(xact)
            assert first != second  # autocommit: each statement a transaction of its own
        async with db.transaction() as session:
            first, second = await session.scalar(xact), await session.scalar(xact)
            assert first == second  # one transaction for both
        async with db.transaction() as session:  # the pooled connection is transactional again
            await session.execute(text("CREATE TEMP TABLE t (n int)"))
            await session.execute(text("INSERT INTO t VALUES (1)"))
            await session.rollback()
            assert await session.scalar(text("SELECT to_regclass('pg_temp.t') IS NULL")) is True
    finally:
        await db.dispose()


async def test_a_reading_session_does_not_wait_for_the_sqlite_writer(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'reads.db'}")
    try:
        async with db.transaction() as session:
            await session.execute(text("CREATE TABLE things (n INTEGER)"))
        async with db.transaction() as writing:
            await writing.execute(text("INSERT INTO things VALUES (1)"))  # holds the write lock
            async with db.reading() as reading:
                # a BEGIN IMMEDIATE here would wait out the 30 s busy timeout
                seen = await asyncio.wait_for(
                    reading.scalar(text("SELECT count(*) FROM things")), 5
                )
            assert seen == 0  # the writer has not committed
        async with db.reading() as reading:
            assert await reading.scalar(text("SELECT count(*) FROM things")) == 1
    finally:
        await db.dispose()
