"""The relay's claim stays an index range scan however long the sent history before it."""

from __future__ import annotations

from sqlalchemy import text

from gonghui_shared.bus.relay import unsent_batch
from gonghui_shared.db import Database
from gonghui_shared.testing import (
    create_postgres_database,
    drop_postgres_database,
    postgres_url_or_skip,
)
from gonghui_shared.testing.busdb import metadata, outbox


async def test_the_claim_reads_the_unsent_index_when_most_of_a_long_outbox_is_unsent() -> None:
    """A bulk import's shape: 70,000 events sent, then 130,000 waiting. Ordered by position
    alone, PostgreSQL chose the primary key and filtered out every sent row first."""
    admin = postgres_url_or_skip()
    url = await create_postgres_database(admin, "gonghui_relay_claim")
    db = Database(url, pool_size=1, max_overflow=0)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(
                text(
                    "INSERT INTO outbox (event_id, event_type, event_version, aggregate_id,"
                    " aggregate_seq, payload, created_at, attempts, sent_at)"
                    " SELECT md5(n::text), 'thing.made', 1, md5(n::text), 1, '{}', now(), 0,"
                    " CASE WHEN n <= 70000 THEN now() END"
                    " FROM generate_series(1, 200000) AS n"
                )
            )
        async with db.engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE outbox"))
            claim = unsent_batch(outbox, 500).compile(
                dialect=conn.dialect, compile_kwargs={"literal_binds": True}
            )
            plan = "\n".join(
                (await conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {claim}"))).scalars()
            )
            first = await conn.execute(unsent_batch(outbox, 3))
        assert "ix_outbox_unsent" in plan and "Rows Removed by Filter" not in plan, plan
        assert [row.position for row in first] == [70001, 70002, 70003]  # commit order
    finally:
        await db.dispose()
        await drop_postgres_database(admin, url)
