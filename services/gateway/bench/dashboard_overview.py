"""Latency of `GET /v1/dashboard/overview` over a county of 100,000 members (not in `make test`).

Migrates a fresh gateway database, then loads straight into the read-model tables what the
event handlers would have built for a county of `--members` members in 200 villages
(10 townships of 20) over three years: member counters computed with the handlers' own
`member_counts` and rolled up by month, year and all time as `add_counts` does (4% ended,
2% transferred), cadres (two per village, most trained), training
(100 sessions a year at the townships and the county, ~24,000 person-times a year, and the
persons-seen rows behind unique persons), 210 stations with visits, services and subsidies,
and the units of the county. Then it asks the app in-process (httpx over ASGI, as the
platform admin) for the county's, a township's and a village's overview: `--warmup` untimed
calls, `--calls` timed ones each; then `--concurrency` clients at once on the county for
throughput.

    .venv/bin/python services/gateway/bench/dashboard_overview.py
    .venv/bin/python services/gateway/bench/dashboard_overview.py --backend postgres \\
        --postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

With `--backend postgres` a database is created on that server and dropped at the end;
the default temporary SQLite database is removed at the end too.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select, text

from gateway.config import GatewaySettings
from gateway.dashboards.handlers import member_counts
from gateway.dashboards.models import (
    DashCadre,
    DashCadreTrained,
    DashCounter,
    DashMember,
    DashMemberMove,
    DashOrg,
    DashPersonSeen,
    DashSource,
    DashStation,
    DashUnit,
)
from gateway.dashboards.repository import periods_of, rolled_up
from gateway.main import create_app
from gonghui_shared.db import Database
from gonghui_shared.ids import new_id
from gonghui_shared.permissions import Role
from gonghui_shared.testing import (
    auth_header,
    create_postgres_database,
    drop_postgres_database,
    migrate,
    token_for,
)

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
TOWNSHIPS, VILLAGES_PER_TOWNSHIP = 10, 20
MONTHS = [f"{y}-{m:02d}" for y in (2024, 2025, 2026) for m in range(1, 13)]
CATEGORIES = [("migrant_worker", 0.6), ("new_employment", 0.1), ("employee", 0.25), ("other", 0.05)]
COURSES = ["welding_trades", "planting_breeding", "ecommerce", "cadre_training", "safety"]
SERVICES = ["drinking_water", "phone_charging", "rest", "heating_food", "toilet"]
STATION_TYPES = ["village_service_point", "outdoor_worker_station", "worker_home"]
CENTRE = (99.9286, 24.5803)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1/test"),
        help="a server where a scratch database may be created",
    )
    parser.add_argument("--calls", type=int, default=200, help="timed calls per org")
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls per org first")
    parser.add_argument("--concurrency", type=int, default=8, help="clients for throughput")
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput run length")
    return parser.parse_args()


def _org(org_id: str, parent: DashOrg | None, org_type: str, name: str, code: str) -> DashOrg:
    rnd = random.Random(code)
    return DashOrg(
        id=org_id,
        parent_id=parent.id if parent else None,
        path=f"{parent.path if parent else '/'}{org_id}/",
        org_type=org_type,
        name=name,
        region_code=code,
        lon=CENTRE[0] + rnd.uniform(-0.3, 0.3),
        lat=CENTRE[1] + rnd.uniform(-0.3, 0.3),
        status="active",
        last_event_at=datetime(2024, 1, 1, tzinfo=UTC),
    )


def build(members: int) -> tuple[dict[Any, list[dict[str, Any]]], dict[str, DashOrg]]:
    """Every row to insert, by model; and the county, a township and a village."""
    rnd = random.Random(20261127)
    rows: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    counters: dict[tuple[str, str, str, str], int] = defaultdict(int)

    def row(obj: Any) -> dict[str, Any]:
        return {c.key: getattr(obj, c.key) for c in obj.__table__.columns}

    county = _org(new_id(), None, "county_federation", "凤庆县总工会", "530921000000")
    townships, villages = [], []
    for t in range(1, TOWNSHIPS + 1):
        code = f"530921{t:03d}000"
        township = _org(new_id(), county, "township_union", f"第{t}镇工会", code)
        townships.append(township)
        for v in range(1, VILLAGES_PER_TOWNSHIP + 1):
            villages.append(
                _org(new_id(), township, "village_union", f"第{t}镇{v}村工会", f"{code[:9]}{v:03d}")
            )
    orgs = [county, *townships, *villages]
    rows[DashOrg] = [row(o) for o in orgs]
    loaded = datetime(2024, 1, 1, tzinfo=UTC)
    rows[DashUnit] = [
        {"code": o.region_code, "name": o.name, "level": lvl, "parent_code": parent,
         "lon": o.lon, "lat": o.lat, "last_event_at": loaded}
        for o, lvl, parent in [(county, "county", None)]
        + [(t, "township", "530921000000") for t in townships]
        + [(v, "village", v.region_code[:9] + "000") for v in villages]
    ]  # fmt: skip

    # members, through the handlers' own contribution function
    weights = [w for _, w in CATEGORIES]
    names = [c for c, _ in CATEGORIES]
    for i in range(members):
        village = villages[i % len(villages)]
        start = rnd.randrange(len(MONTHS))
        member = DashMember(
            member_no=f"5309212024{i:06d}",
            member_id=new_id(),
            category=rnd.choices(names, weights)[0],
            approved_org_id=village.id,
            approved_month=MONTHS[start],
        )
        moves: list[DashMemberMove] = []
        if rnd.random() < 0.02 and start < len(MONTHS) - 1:
            month = MONTHS[rnd.randrange(start + 1, len(MONTHS))]
            moves.append(
                DashMemberMove(
                    transfer_id=new_id(),
                    member_no=member.member_no,
                    occurred_at=datetime.fromisoformat(f"{month}-10T00:00+00:00"),
                    month=month,
                    from_org_id=village.id,
                    to_org_id=rnd.choice(villages).id,
                )
            )
        if rnd.random() < 0.04 and start < len(MONTHS) - 2:
            month = MONTHS[rnd.randrange(start + 2, len(MONTHS))]
            member.ended_status = rnd.choice(["withdrawn", "lapsed", "expelled"])
            member.ended_org_id = village.id
            member.ended_at = datetime.fromisoformat(f"{month}-20T00:00+00:00")
            member.ended_month = month
        for key, n in member_counts(member, moves).items():
            counters[key] += n
        rows[DashMember].append(row(member))
        rows[DashMemberMove].extend(row(mv) for mv in moves)

    # cadres: two per village and township, most of them trained
    for org in [*townships, *villages]:
        for role in ("chair", "vice_chair"):
            member_no = f"9{rnd.randrange(10**15):015d}"
            rows[DashCadre].append(
                {"cadre_id": new_id(), "member_no": member_no, "org_id": org.id, "role": role}
            )
            if rnd.random() < 0.85:
                rows[DashCadreTrained].append(
                    {"member_no": member_no, "first_day": date(2025, 3, 1)}
                )

    # training: 100 sessions a year at the townships and the county
    people = [f"m:5309212024{i:06d}" for i in range(members)]
    seen: set[tuple[str, str, str]] = set()
    hosts = [county, *townships]
    for month in MONTHS:
        for _ in range(8):
            host = rnd.choice(hosts).id
            course = rnd.choice(COURSES)
            counters[(host, "sessions_completed", month, course)] += 1
            counters[(host, "budget_spent_fen", month, course)] += rnd.randrange(50_000, 500_000)
            counters[(host, "certificates_issued", month, "")] += 30
            counters[(host, "certificates_revoked", month, "")] += rnd.randrange(0, 2)
            for person in rnd.sample(people, 40):
                counters[(host, "person_times", month, "migrant_worker")] += 3
                seen.add((host, month, person))
        counters[(rnd.choice(hosts).id, "sessions_cancelled", month, "safety")] += 1
    counters[(county.id, "sessions_scheduled", "2026-12", "ecommerce")] += 2
    rows[DashPersonSeen] = [
        {"org_id": o, "period": period, "person_key": p}
        for o, p, period in {(o, p, period) for o, m, p in seen for period in periods_of(m)}
    ]

    # stations: one per village and township, visits and subsidies every month
    for org in [*townships, *villages]:
        station_type = (
            STATION_TYPES[0] if org.org_type == "village_union" else rnd.choice(STATION_TYPES)
        )
        assert org.lon is not None and org.lat is not None
        rows[DashStation].append(
            {"station_id": new_id(), "host_org_id": org.id, "station_type": station_type,
             "name": f"{org.name}驿站", "lon": org.lon + 0.003, "lat": org.lat,
             "status": "active" if rnd.random() < 0.9 else "suspended",
             "place_at": loaded, "status_at": loaded}
        )  # fmt: skip
        for month in MONTHS:
            visits = rnd.randrange(5, 60)
            counters[(org.id, "visits", month, station_type)] += visits
            for service in SERVICES:
                counters[(org.id, "services_used", month, service)] += rnd.randrange(0, visits)
            counters[(org.id, "subsidies_paid_fen", month, "")] += 10_000
    rows[DashCounter] = [
        {"org_id": o, "period": p, "metric": m, "dimension": d, "value": v}
        for (o, p, m, d), v in rolled_up(counters).items()
    ]
    rows[DashSource] = [
        {"source": s, "last_event_at": loaded, "applied_at": loaded, "events_applied": 1}
        for s in ("membership", "training", "stations")
    ]
    return rows, {"county": county, "township": townships[0], "village": villages[0]}


async def load(db: Database, rows: dict[Any, list[dict[str, Any]]]) -> float:
    started = time.perf_counter()
    async with db.transaction() as session:
        for model, items in rows.items():
            for start in range(0, len(items), 2000):
                await session.execute(insert(model), items[start : start + 2000])
    if db.dialect == "postgresql":
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - started


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def measure(url: str, folder: Path, args: argparse.Namespace) -> None:
    print(f"building the read models of {args.members:,} members…", file=sys.stderr)
    rows, orgs = build(args.members)
    db = Database(url)
    try:
        seconds = await load(db, rows)
        async with db.sessions() as session:
            counted = {
                m.__tablename__: await session.scalar(select(func.count()).select_from(m))
                for m in (DashCounter, DashPersonSeen, DashMember)
            }
    finally:
        await db.dispose()
    print(f"loaded in {seconds:.1f}s: {counted}")

    settings = GatewaySettings(
        database_url=url, data_dir=folder, environment="test", nats_url="nats://127.0.0.1:9"
    )
    app = create_app(settings)
    headers = auth_header(token_for(settings, Role.platform_admin))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:

            async def call(org: DashOrg) -> dict[str, Any]:
                response = await client.get(
                    "/v1/dashboard/overview", params={"org_id": org.id}, headers=headers
                )
                assert response.status_code == 200, response.text
                return response.json()  # type: ignore[no-any-return]

            body = await call(orgs["county"])
            assert body["figures"]["members"]["by_status"][0]["count"] > 0.9 * args.members
            print(
                f"county: {body['figures']['members']['active']:,} active members, "
                f"{body['figures']['training']['person_times']:,} person-times, "
                f"{body['figures']['training']['unique_persons']:,} unique persons"
            )
            for name, org in orgs.items():
                for _ in range(args.warmup):
                    await call(org)
                timings = []
                for _ in range(args.calls):
                    started = time.perf_counter()
                    await call(org)
                    timings.append((time.perf_counter() - started) * 1000)
                print(
                    f"overview {name:<9} p50 {percentile(timings, 50):7.1f} ms   "
                    f"p99 {percentile(timings, 99):7.1f} ms   ({args.calls} calls)"
                )

            done = 0
            deadline = time.perf_counter() + args.seconds

            async def client_loop() -> None:
                nonlocal done
                while time.perf_counter() < deadline:
                    await call(orgs["county"])
                    done += 1

            started = time.perf_counter()
            await asyncio.gather(*(client_loop() for _ in range(args.concurrency)))
            elapsed = time.perf_counter() - started
            print(
                f"throughput county overview, {args.concurrency} concurrent clients in one "
                f"process: {done / elapsed:.1f} requests/s"
            )


async def main() -> int:
    args = parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp:
        folder = Path(tmp)
        if args.backend == "sqlite":
            url = f"sqlite+aiosqlite:///{folder / 'gateway.db'}"
            await migrate(ALEMBIC_INI, url)
            await measure(url, folder, args)
            return 0
        url = await create_postgres_database(args.postgres_url, "gateway_bench")
        try:
            await migrate(ALEMBIC_INI, url)
            await measure(url, folder, args)
        finally:
            await drop_postgres_database(args.postgres_url, url)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
