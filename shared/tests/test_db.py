"""The connection pool: a connection the server closed is replaced, not handed out; reads
without a transaction; the insert helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import JSON, String, UniqueConstraint, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gonghui_shared import db as db_module
from gonghui_shared.db import (
    Database,
    UtcDateTime,
    analyze_if_stale,
    bulk_insert,
    insert_unless_conflicting,
)
from gonghui_shared.ids import new_id
from gonghui_shared.models import id_column, utcnow
from gonghui_shared.testing import BACKENDS, empty_database, postgres_url_or_skip


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


class _Base(DeclarativeBase):
    pass


class _Seat(_Base):
    """A model as the services write them: a defaulted id and timestamp, one unique pair."""

    __tablename__ = "seats"
    __table_args__ = (UniqueConstraint("session_id", "person"),)
    id: Mapped[str] = id_column()
    session_id: Mapped[str] = mapped_column(String(36))
    person: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(20))
    details: Mapped[dict[str, object] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


@pytest.fixture(params=BACKENDS)
async def seats_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async for url in empty_database(request.param, tmp_path, "seats"):
        db = Database(url, pool_size=1, max_overflow=0, pool_timeout=5)
        async with db.engine.begin() as conn:
            await conn.run_sync(_Base.metadata.create_all)
        yield db
        await db.dispose()


def _seat(person: str, note: str | None = None) -> _Seat:
    return _Seat(id=new_id(), session_id="s1", person=person, note=note, created_at=utcnow())


async def test_insert_unless_conflicting_inserts_once_and_keeps_the_transaction(
    seats_db: Database,
) -> None:
    async with seats_db.transaction() as session:
        first = _seat("张三", "first")
        assert await insert_unless_conflicting(session, first) is True
        # The same person again: no row, no error, and the transaction goes on.
        assert await insert_unless_conflicting(session, _seat("张三", "second")) is False
        assert await insert_unless_conflicting(session, _seat("李四")) is True
    async with seats_db.reading() as session:
        rows = (await session.execute(select(_Seat.id, _Seat.person, _Seat.note))).all()
    assert sorted((person, note) for _, person, note in rows) == [("张三", "first"), ("李四", None)]
    assert first.id in {row_id for row_id, _, _ in rows}


async def test_insert_unless_conflicting_wants_what_columns_would_default(
    seats_db: Database,
) -> None:
    async with seats_db.transaction() as session:
        with pytest.raises(ValueError, match="created_at"):
            await insert_unless_conflicting(session, _Seat(id=new_id(), session_id="s", person="p"))
        assert await session.scalar(select(func.count()).select_from(_Seat)) == 0


_SEATS = _Seat.__table__
_BEIJING = timezone(timedelta(hours=8))


def _seat_row(person: str, **values: object) -> dict[str, object]:
    return {
        "id": new_id(),
        "session_id": "s1",
        "person": person,
        "note": None,
        "details": None,
        "created_at": utcnow(),
    } | values


async def test_bulk_insert_stores_each_value_as_an_insert_would(seats_db: Database) -> None:
    at = datetime(2026, 11, 28, 9, 30, tzinfo=_BEIJING)
    rows = [_seat_row(f"工人{n}", note=str(n), created_at=at) for n in range(300)]
    rows[7] |= {"details": {"签到": [1, 2], "note": None}, "note": None}
    async with seats_db.transaction() as session:
        await bulk_insert(session, _SEATS, rows)
    async with seats_db.reading() as session:
        stored = {
            row.id: row
            for row in await session.execute(
                select(_Seat.id, _Seat.person, _Seat.note, _Seat.details, _Seat.created_at)
            )
        }
    assert len(stored) == 300
    seventh = stored[str(rows[7]["id"])]
    assert (seventh.person, seventh.note, seventh.details) == (
        "工人7",
        None,
        {"签到": [1, 2], "note": None},
    )
    assert stored[str(rows[8]["id"])].note == "8"
    # The timestamp type's own conversion ran: the same instant, kept as UTC.
    assert {row.created_at for row in stored.values()} == {at}
    assert seventh.created_at.utcoffset() == timedelta(0)


async def test_bulk_insert_is_part_of_the_transaction(seats_db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with seats_db.transaction() as session:
            # The transaction's first statement: it must not commit on its own.
            await bulk_insert(session, _SEATS, [_seat_row("张三"), _seat_row("李四")])
            raise RuntimeError("the request failed")
    async with seats_db.reading() as session:
        assert await session.scalar(select(func.count()).select_from(_Seat)) == 0


async def test_bulk_insert_conflict_is_sqlalchemys_integrity_error(seats_db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with seats_db.transaction() as session:
            await bulk_insert(session, _SEATS, [_seat_row("张三"), _seat_row("张三")])
    async with seats_db.reading() as session:
        assert await session.scalar(select(func.count()).select_from(_Seat)) == 0


async def test_bulk_insert_refuses_rows_that_leave_a_default_or_a_timezone_out(
    seats_db: Database,
) -> None:
    async with seats_db.transaction() as session:
        without_time = _seat_row("张三")
        del without_time["created_at"]
        with pytest.raises(ValueError, match="created_at"):
            await bulk_insert(session, _SEATS, [without_time])
        with pytest.raises(Exception, match="naive datetime"):
            await bulk_insert(session, _SEATS, [_seat_row("李四", created_at=datetime(2026, 1, 1))])


async def _changed_since_analyze(db: Database, table: str, at_least: int) -> tuple[int, int]:
    """(rows changed since the table's last ANALYZE, manual ANALYZEs so far), once the
    server's statistics show at least `at_least` changed: a backend reports its counts
    when it goes idle, up to a second after the commit."""
    query = text(
        "SELECT n_mod_since_analyze, analyze_count FROM pg_stat_user_tables WHERE relname = :t"
    )
    for _ in range(50):
        async with db.reading() as session:
            changed, analysed = (await session.execute(query, {"t": table})).one()
        if changed >= at_least:
            break
        await asyncio.sleep(0.1)
    return changed, analysed


async def test_analyze_if_stale_analyses_a_table_a_bulk_insert_changed(
    seats_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "STALE_MIN_ROWS", 300)
    postgres = seats_db.dialect == "postgresql"
    if postgres:
        async with seats_db.transaction() as session:
            # Autovacuum would analyse it on its own once a minute: not while we look.
            await session.execute(text("ALTER TABLE seats SET (autovacuum_enabled = false)"))
    async with seats_db.transaction() as session:
        await bulk_insert(session, _SEATS, [_seat_row(f"p{n}") for n in range(200)])
    if postgres:
        assert await _changed_since_analyze(seats_db, "seats", 200) == (200, 0)
    async with seats_db.reading() as session:
        assert await analyze_if_stale(session, [_SEATS]) == []  # 200 changed: below the floor
    async with seats_db.transaction() as session:
        await bulk_insert(session, _SEATS, [_seat_row(f"q{n}") for n in range(200)])
    if not postgres:  # SQLite plans without gathered statistics: nothing to do
        async with seats_db.reading() as session:
            assert await analyze_if_stale(session, [_SEATS]) == []
        return

    changed, analysed = await _changed_since_analyze(seats_db, "seats", 400)
    assert (changed, analysed) == (400, 0)
    async with seats_db.transaction() as session:
        # The session holds the pool's one connection: the analysis must not wait for another.
        assert await session.scalar(select(func.count()).select_from(_Seat)) == 400
        assert await analyze_if_stale(session, [_SEATS]) == ["seats"]
    changed, analysed_after = await _changed_since_analyze(seats_db, "seats", 0)
    assert (changed, analysed_after) == (0, 1)
    async with seats_db.reading() as session:
        assert await analyze_if_stale(session, [_SEATS]) == []  # fresh now

    # 300 more on 400: enough rows, but under a fifth of the table after 100 more is not.
    async with seats_db.transaction() as session:
        await bulk_insert(session, _SEATS, [_seat_row(f"r{n}") for n in range(300)])
    assert await _changed_since_analyze(seats_db, "seats", 300) == (300, 1)
    monkeypatch.setattr(db_module, "STALE_SHARE", 0.5)  # 300 of 700 is under half
    async with seats_db.reading() as session:
        assert await analyze_if_stale(session, [_SEATS]) == []
