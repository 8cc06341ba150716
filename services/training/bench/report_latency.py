"""Latency of `GET /v1/reports/summary` on 100,000 attendance records (not part of `make test`).

Migrates a fresh database, bulk-loads a county of ~100 townships and ~1,000
villages with a year of training (sessions, enrolments, attendance, certificates,
budget entries and competitions in realistic proportions: 2,000 sessions of 1-3
days and ~50 person-times each, 20,000 people at ~3 sessions each), then asks the
app in-process (httpx over ASGI, as the platform admin) for the county's, a
township's and a village's summary: a few warm-up calls, then `--calls` timed ones.

    .venv/bin/python services/training/bench/report_latency.py
    .venv/bin/python services/training/bench/report_latency.py \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/training_bench

A PostgreSQL database must be new (it may hold no attendance) and is yours to create
and drop; the default temporary SQLite database is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, text

from gonghui_shared.db import Database, normalise_url
from gonghui_shared.permissions import Role
from gonghui_shared.testing import auth_header, migrate, token_for
from training.attendance.models import Attendance
from training.certificates.models import Certificate
from training.config import TrainingSettings
from training.enrolments.models import Enrolment
from training.main import create_app
from training.sessions.models import TrainingSession
from training.testing import OrgTree, insert_org_tree, seed_training_data

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
PERSON_TIMES_PER_SESSION = 50
PERSON_TIMES_PER_PERSON = 5
BUDGET_MS = 200.0  # what the issue calls slow on 100k rows


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="async SQLAlchemy URL; default a temp SQLite")
    parser.add_argument("--rows", type=int, default=100_000, help="attendance records in 2026")
    parser.add_argument("--townships", type=int, default=100)
    parser.add_argument("--villages", type=int, default=10, help="villages per township")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per org")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per org first")
    return parser.parse_args()


async def load(db: Database, args: argparse.Namespace) -> tuple[OrgTree, float]:
    """Orgs and a training year straight into the tables; returns the tree and seconds taken."""
    started = time.perf_counter()
    tree = await insert_org_tree(db, townships=args.townships, villages=args.villages)
    await seed_training_data(
        db,
        tree,
        sessions=max(args.rows // PERSON_TIMES_PER_SESSION, 1),
        person_times=args.rows,
        people=max(args.rows // PERSON_TIMES_PER_PERSON, 1),
    )
    if db.dialect == "postgresql":
        # What autovacuum does soon after a bulk load: statistics for the planner, and the
        # visibility map that lets it answer from the covering index alone.
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
    return tree, time.perf_counter() - started


async def counts(db: Database) -> dict[str, int]:
    found: dict[str, int] = {}
    async with db.sessions() as session:
        for model in (TrainingSession, Enrolment, Attendance, Certificate):
            n = await session.scalar(select(func.count()).select_from(model))
            found[model.__tablename__] = n or 0
    return found


async def measure(
    client: httpx.AsyncClient,
    org: dict[str, Any],
    headers: dict[str, str],
    args: argparse.Namespace,
) -> tuple[list[float], dict[str, Any]]:
    params = {"org_id": org["id"], "from": "2026-01-01", "to": "2026-12-31"}
    body: dict[str, Any] = {}
    for _ in range(args.warmup):
        response = await client.get("/v1/reports/summary", params=params, headers=headers)
        response.raise_for_status()
        body = response.json()
    timings = []
    for _ in range(args.calls):
        started = time.perf_counter()
        response = await client.get("/v1/reports/summary", params=params, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return timings, body


def percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def main() -> int:
    args = parse_args()
    logging.getLogger("gonghui_shared.keys").setLevel(logging.ERROR)  # dev keys: expected here
    folder = Path(tempfile.mkdtemp(prefix="training-bench-"))
    try:
        return await run(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # the temp SQLite database, the dev keys


async def run(args: argparse.Namespace, folder: Path) -> int:
    url = normalise_url(args.database_url or f"sqlite+aiosqlite:///{folder / 'bench.db'}")
    await migrate(ALEMBIC_INI, url)
    db = Database(url)
    try:
        async with db.sessions() as session:
            if await session.scalar(select(func.count()).select_from(Attendance)):
                print("the database already holds attendance: give a fresh one", file=sys.stderr)
                return 2
        tree, load_seconds = await load(db, args)
        rows = await counts(db)
    finally:
        await db.dispose()

    settings = TrainingSettings(
        database_url=url,
        data_dir=folder,
        # No NATS needed: the bus reconnects in the background and reports never publish.
        nats_url="nats://127.0.0.1:1",
        log_level="WARNING",
    )
    app = create_app(settings)
    logging.getLogger("gonghui_shared.bus").setLevel(logging.CRITICAL)
    headers = auth_header(token_for(settings, Role.platform_admin))
    print(f"database   {db.dialect}  ({url.split('@')[-1]})")
    print(f"loaded     {', '.join(f'{n:,} {t}' for t, n in rows.items())}")
    print(f"           {len(tree.all):,} orgs, in {load_seconds:.1f} s")
    print(f"{'org':<10} {'person-times':>12} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    slow = False
    orgs = {"county": tree.county, "township": tree.townships[0], "village": tree.villages[0]}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://training") as client:
            for name, org in orgs.items():
                timings, body = await measure(client, org, headers, args)
                p50, p95 = percentile(timings, 50), percentile(timings, 95)
                slow = slow or p95 > BUDGET_MS
                print(
                    f"{name:<10} {body['person_times']:>12,} {p50:>8.1f} {p95:>8.1f}"
                    f" {max(timings):>8.1f}"
                )
    if slow:
        print(f"slower than {BUDGET_MS:.0f} ms at p95", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
