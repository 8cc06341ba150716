"""`ReadPool` and `fetch`: one Core statement, the same rows through asyncpg (PostgreSQL) and
through the engine (SQLite); a connection the server ended is replaced and the read runs
again. (The nearby search and the member lookup test their own reads through it.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Date, Integer, MetaData, String, Table, bindparam, select, text
from sqlalchemy import exc as sa_exc

from gonghui_shared import reads
from gonghui_shared.db import Database
from gonghui_shared.reads import Reader, ReadPool
from gonghui_shared.settings import ServiceSettings
from gonghui_shared.testing import BACKENDS, empty_database

metadata = MetaData()
things = Table(
    "read_things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50)),
    Column("made_on", Date),
)
BY_NAME = (
    select(things.c.id, things.c.name, things.c.made_on)
    .where(things.c.name == bindparam("name"), things.c.id >= bindparam("least"))
    .order_by(things.c.id)
)
ROWS = [
    {"id": 1, "name": "水杯", "made_on": date(2026, 3, 1)},
    {"id": 2, "name": "水杯", "made_on": None},
    {"id": 3, "name": "充电宝", "made_on": date(2026, 5, 4)},
]


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async for url in empty_database(request.param, tmp_path, "reads"):
        database = Database(url, pool_size=1, max_overflow=0)
        async with database.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(things.insert(), ROWS)
        yield database
        await database.dispose()


@pytest.fixture
async def pool(db: Database, tmp_path: Path) -> AsyncIterator[ReadPool]:
    read_pool = ReadPool(db, ServiceSettings(data_dir=tmp_path, db_read_pool_size=2))
    yield read_pool
    await read_pool.dispose()


async def test_a_statement_reads_the_same_rows_on_either_backend(
    db: Database, pool: ReadPool
) -> None:
    assert pool.direct is (db.dialect == "postgresql")

    async def water_cups(reader: Reader) -> list[tuple[object, ...]]:
        return [
            tuple(row) for row in await reads.fetch(reader, BY_NAME, {"name": "水杯", "least": 1})
        ]

    # Twice: the second time asyncpg's text comes from the cache and the statement is prepared.
    for _ in range(2):
        assert await pool.run(water_cups) == [(1, "水杯", date(2026, 3, 1)), (2, "水杯", None)]
    # Parameters go by name, whatever order the values come in.
    found = await pool.run(lambda r: reads.fetch(r, BY_NAME, {"least": 2, "name": "水杯"}))
    assert [row[0] for row in found] == [2]


async def test_a_read_whose_connection_the_server_ended_runs_again(
    db: Database, pool: ReadPool
) -> None:
    if not pool.direct:
        pytest.skip("on SQLite reads go through the service's engine (tested in test_db.py)")
    sessions: list[int] = []

    async def read(reader: Any) -> int:
        sessions.append(await reader.fetchval("SELECT pg_backend_pid()"))
        if len(sessions) == 1:
            await reader.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return len(await reads.fetch(reader, BY_NAME, {"name": "充电宝", "least": 0}))

    assert await pool.run(read) == 1
    assert len(sessions) == 2 and sessions[0] != sessions[1]


async def test_direct_reads_leave_the_engine_alone(db: Database, pool: ReadPool) -> None:
    """On PostgreSQL a read uses a connection of the pool's own, in autocommit: the engine's
    pool lends nothing, and no transaction stays open behind the read."""
    if not pool.direct:
        pytest.skip("on SQLite the engine is what reads go through")

    rows = await pool.run(lambda reader: reads.fetch(reader, BY_NAME, {"name": "水杯", "least": 0}))
    assert len(rows) == 2
    assert db.engine.pool.checkedout() == 0
    async with db.engine.connect() as conn:
        open_transactions = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'idle in transaction'"
            )
        )
    assert open_transactions == 0


async def test_reads_get_a_connection_in_the_order_they_asked(db: Database, pool: ReadPool) -> None:
    """First come, first served: more reads at once than connections (2) wait in line. A
    worker that has just given its connection back and asks again must not take it ahead of
    the reads already waiting (asyncpg's own queue lets it, and a few unlucky reads then
    wait many turns: the nearby search's long tail)."""
    if not pool.direct:
        pytest.skip("on SQLite reads go through the service's engine, which has its own pool")
    # Both connections open first: which of two new connections is ready first is no order.
    await asyncio.gather(*(pool.run(lambda r: r.fetchval("SELECT pg_sleep(0.05)")) for _ in "ab"))
    asked: list[int] = []
    served: list[int] = []

    async def worker() -> None:
        for _ in range(15):
            turn = len(asked)
            asked.append(turn)

            async def read(reader: Any, turn: int = turn) -> None:
                served.append(turn)
                await reader.fetchval("SELECT 1")

            await pool.run(read)

    await asyncio.gather(*(worker() for _ in range(8)))
    assert len(served) == 8 * 15
    overtaken = sum(1 for i, turn in enumerate(served) if turn > min(served[i:]))
    assert overtaken == 0, f"{overtaken} reads were served ahead of an earlier one"


async def test_a_read_that_waits_too_long_for_a_connection_is_a_pool_timeout(
    db: Database, tmp_path: Path
) -> None:
    """Past `db_pool_timeout` in line, the read fails as SQLAlchemy's pool would (the
    handlers answer 503 database_unavailable), and the reads holding connections are
    unharmed."""
    if db.dialect != "postgresql":
        pytest.skip("on SQLite reads go through the service's engine, which has its own pool")
    settings = ServiceSettings(data_dir=tmp_path, db_read_pool_size=1, db_pool_timeout=0.2)
    pool = ReadPool(db, settings)
    release = asyncio.Event()

    async def holding(reader: Any) -> int:
        await release.wait()
        return int(await reader.fetchval("SELECT 7"))

    try:
        held = asyncio.create_task(pool.run(holding))
        await asyncio.sleep(0.05)
        with pytest.raises(sa_exc.TimeoutError):
            await pool.run(lambda reader: reader.fetchval("SELECT 1"))
        release.set()
        assert await held == 7
        assert await pool.run(lambda reader: reader.fetchval("SELECT 2")) == 2
    finally:
        await pool.dispose()


async def _backend_alive(db: Database, pid: int) -> bool:
    async with db.engine.connect() as conn:
        found = await conn.scalar(
            text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        )
    return bool(found)


async def _backend_pid(reader: Any) -> int:
    return int(await reader.fetchval("SELECT pg_backend_pid()"))


async def test_a_statement_postgresql_refuses_leaves_its_connection_for_the_next_read(
    db: Database, pool: ReadPool
) -> None:
    if not pool.direct:
        pytest.skip("on SQLite reads go through the service's engine")
    before = await pool.run(_backend_pid)
    with pytest.raises(sa_exc.OperationalError) as refused:
        await pool.run(lambda reader: reader.fetchval("SELECT 1 / 0"))
    assert not refused.value.connection_invalidated
    assert await pool.run(_backend_pid) == before


async def test_a_cancelled_read_s_connection_is_closed_not_lent_again(
    db: Database, pool: ReadPool
) -> None:
    """Cancelled mid-statement (a client gone, a timeout), a connection is in no state to
    serve the next read: it is closed, and the server ends its session."""
    if not pool.direct:
        pytest.skip("on SQLite reads go through the service's engine")
    started = asyncio.Event()
    pids: list[int] = []

    async def slow(reader: Any) -> None:
        pids.append(await _backend_pid(reader))
        started.set()
        await reader.fetchval("SELECT pg_sleep(30)")

    read = asyncio.create_task(pool.run(slow))
    await started.wait()
    read.cancel()
    with pytest.raises(asyncio.CancelledError):
        await read
    assert await pool.run(_backend_pid) != pids[0]
    for _ in range(100):
        if not await _backend_alive(db, pids[0]):
            break
        await asyncio.sleep(0.05)
    assert not await _backend_alive(db, pids[0]), "the cancelled read's session lives on"


async def test_dispose_closes_every_connection_once_the_reads_are_done(
    db: Database, tmp_path: Path
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("on SQLite reads go through the service's engine")
    pool = ReadPool(db, ServiceSettings(data_dir=tmp_path, db_read_pool_size=2))
    release = asyncio.Event()

    async def held(reader: Any) -> int:
        await release.wait()
        return await _backend_pid(reader)

    reads_running = [asyncio.create_task(pool.run(held)) for _ in range(2)]
    await asyncio.sleep(0.1)
    disposing = asyncio.create_task(pool.dispose())
    await asyncio.sleep(0.1)
    assert not disposing.done(), "dispose did not wait for the reads in progress"
    release.set()
    pids = await asyncio.gather(*reads_running)
    await disposing
    assert len(set(pids)) == 2
    for pid in pids:
        for _ in range(100):
            if not await _backend_alive(db, pid):
                break
            await asyncio.sleep(0.05)
        assert not await _backend_alive(db, pid)
