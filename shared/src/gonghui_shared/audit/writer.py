"""Audit rows written together: one INSERT for the rows of every request waiting at once.

A request still waits until its own row is stored before its answer goes out (the
middleware's promise), but requests that finish while a write is in flight do not each
pay a round trip and a commit: their rows queue, and the next write stores them all in
one statement (group commit). Under load that is one INSERT per dozen requests instead
of one each; a lone request waits for nothing but its own row.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import Table

from gonghui_shared.db import Database

log = logging.getLogger(__name__)

# Rows per statement at most: a burst bigger than this goes in several writes in a row.
MAX_BATCH = 500


class AuditWriter:
    """Queues audit rows and writes them in batches, one write in flight at a time."""

    def __init__(self, db: Database, table: Table) -> None:
        self.db = db
        self.insert = table.insert()
        self._queued: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def write(self, row: dict[str, Any]) -> None:
        """Store `row`; returns once it is committed (or its failure is logged)."""
        done = asyncio.get_running_loop().create_future()
        self._queued.append((row, done))
        if self._writing is None:
            self._writing = asyncio.create_task(self._drain())
        # Shielded: a client that hangs up must not cancel the write its neighbours share.
        await asyncio.shield(done)

    async def _drain(self) -> None:
        batch: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        try:
            while self._queued:
                batch, self._queued = self._queued[:MAX_BATCH], self._queued[MAX_BATCH:]
                await self._store([row for row, _ in batch])
                _release(batch)
        finally:
            # Cancelled mid-write (the loop is closing): nobody may be left waiting.
            unwritten = _release(batch) + _release(self._queued)
            if unwritten:
                log.error("audit rows not written: cancelled", extra={"rows": unwritten})
            self._queued = []
            self._writing = None

    async def _store(self, rows: list[dict[str, Any]]) -> None:
        try:
            if self.db.dialect == "postgresql":
                # One statement is atomic on its own: in autocommit it needs no BEGIN and
                # COMMIT round trips.
                async with self.db.engine.connect() as conn:
                    autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
                    await autocommit.execute(self.insert, rows)
            else:
                async with self.db.engine.begin() as conn:
                    await conn.execute(self.insert, rows)
        except Exception:
            # The requests' own transactions have committed: failing their responses would
            # only make clients retry changes that were made. Say so loudly instead.
            log.exception(
                "audit rows not written",
                extra={
                    "rows": len(rows),
                    "routes": sorted({r["route"] for r in rows}),
                    "actors": sorted({str(r["subject"]) for r in rows}),
                },
            )


def _release(waiting: list[tuple[dict[str, Any], asyncio.Future[None]]]) -> int:
    """Let the requests waiting on these rows go on; how many were still waiting."""
    released = 0
    for _, done in waiting:
        if not done.done():
            done.set_result(None)
            released += 1
    return released
