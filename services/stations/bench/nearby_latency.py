"""Latency of `GET /v1/stations/nearby` with 100,000 stations (not part of `make test`).

Migrates a fresh database, bulk-loads stations over a province-sized area (Jiangxi's box,
lon 113.5-118.5, lat 24.5-30.0: 60% clustered around its 11 prefecture cities, the rest
spread out), then asks the app in-process (httpx over ASGI, as a member) for the
15-minute circle with one amenity filter at random points (most in the cities, where the
candidate sets are largest): a few warm-up calls, then `--queries` timed ones.

    .venv/bin/python services/stations/bench/nearby_latency.py
    .venv/bin/python services/stations/bench/nearby_latency.py --postgres
    .venv/bin/python services/stations/bench/nearby_latency.py \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/stations_bench

`--postgres` creates its own database on `--postgres-admin-url` and drops it afterwards;
a `--database-url` must be new (or hold no stations) and is left as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, text

from gonghui_shared.db import Database, normalise_url
from gonghui_shared.ids import new_id
from gonghui_shared.permissions import Role
from gonghui_shared.testing import (
    auth_header,
    create_postgres_database,
    drop_postgres_database,
    migrate,
    token_for,
)
from stations import geo
from stations.config import StationsSettings
from stations.geo import walking_distance_m
from stations.main import create_app
from stations.nearby import repository
from stations.nearby import service as nearby
from stations.stations.amenities import CODES
from stations.stations.models import Station, StationType
from stations.testing import insert_stations, point_at, station_values

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
BUDGET_P99_MS = 50.0
BOX = (113.5, 24.5, 118.5, 30.0)  # Jiangxi: min lon, min lat, max lon, max lat
# Jiangxi's prefecture-level cities (WGS-84, roughly the centre) and their share of stations.
CITIES = [
    ("南昌", 115.858, 28.683, 0.22),
    ("赣州", 114.935, 25.831, 0.14),
    ("九江", 116.001, 29.705, 0.10),
    ("宜春", 114.417, 27.816, 0.09),
    ("上饶", 117.943, 28.455, 0.09),
    ("吉安", 114.993, 27.114, 0.08),
    ("抚州", 116.358, 27.948, 0.07),
    ("景德镇", 117.178, 29.269, 0.06),
    ("萍乡", 113.854, 27.623, 0.05),
    ("新余", 114.917, 27.818, 0.05),
    ("鹰潭", 117.069, 28.260, 0.05),
]
CLUSTERED = 0.6
CITY_SIGMA_M = 6000.0  # most of a city's stations within ~12 km of its centre
# How often a station offers each amenity ("渴了有水喝" nearly everywhere).
AMENITY_ODDS = {
    "drinking_water": 0.85,
    "phone_charging": 0.75,
    "seating": 0.8,
    "toilets": 0.5,
    "microwave": 0.45,
    "first_aid_kit": 0.55,
    "air_conditioning": 0.4,
    "wifi": 0.35,
}
HOURS = ["24/7"] * 6 + [
    "Mo-Fr 08:00-18:00",
    "Mo-Su 07:00-21:00",
    "Mo-Fr 08:00-12:00,14:00-18:00; PH off",
]
TYPES = [t.value for t in StationType]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="async SQLAlchemy URL; default a temp SQLite")
    parser.add_argument(
        "--postgres", action="store_true", help="create (and drop) a database of our own"
    )
    parser.add_argument(
        "--postgres-admin-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--stations", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="timed searches")
    parser.add_argument("--warmup", type=int, default=20, help="untimed searches first")
    parser.add_argument("--minutes", type=float, default=15)
    parser.add_argument("--amenity", default="phone_charging", help="the amenity filter")
    parser.add_argument("--seed", type=int, default=4200)
    parser.add_argument(
        "--explain", action="store_true", help="print the query plan of one search in a city"
    )
    return parser.parse_args()


def _city_point(rng: random.Random, sigma_m: float) -> tuple[float, float]:
    _, lon, lat, _ = rng.choices(CITIES, weights=[c[3] for c in CITIES])[0]
    # A 2-D normal around the centre: Rayleigh-distributed distance, uniform bearing.
    distance = sigma_m * math.sqrt(-2 * math.log(1 - rng.random()))
    return point_at(lon, lat, rng.uniform(0, 360), distance)


def _anywhere(rng: random.Random) -> tuple[float, float]:
    return rng.uniform(BOX[0], BOX[2]), rng.uniform(BOX[1], BOX[3])


def stations(n: int, rng: random.Random) -> list[dict[str, Any]]:
    host = new_id()
    rows = []
    for i in range(n):
        lon, lat = _city_point(rng, CITY_SIGMA_M) if rng.random() < CLUSTERED else _anywhere(rng)
        rows.append(
            station_values(
                lon,
                lat,
                host_org_id=host,
                host_org_path=f"/{host}/",
                name=f"爱心驿站{i:06d}",
                station_type=rng.choice(TYPES),
                status=rng.choices(["active", "suspended", "closed"], [94, 3, 3])[0],
                amenities=[a for a in CODES if rng.random() < AMENITY_ODDS.get(a, 0.1)],
                opening_hours=rng.choice(HOURS),
            )
        )
    return rows


def query_points(n: int, rng: random.Random) -> list[tuple[float, float]]:
    """Where people search: mostly in the cities, some anywhere in the province."""
    return [_city_point(rng, 4000) if rng.random() < 0.8 else _anywhere(rng) for _ in range(n)]


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def load(app: FastAPI, args: argparse.Namespace, rng: random.Random) -> float:
    runtime = app.state.runtime
    db: Database = runtime.db
    async with db.sessions() as session:
        if await session.scalar(select(func.count()).select_from(Station)):
            raise SystemExit("the database already holds stations: give a fresh one")
    started = time.perf_counter()
    await insert_stations(runtime, stations(args.stations, rng), chunk=5000)
    if db.dialect == "postgresql":
        # What autovacuum does within a minute of a bulk load; the planner needs the statistics.
        async with db.engine.connect() as conn:
            await conn.execute(text("ANALYZE stations"))
            await conn.commit()
    return time.perf_counter() - started


async def explain(db: Database, args: argparse.Namespace) -> None:
    """The plan of the candidate query for a 15-minute circle in central Nanchang."""
    radius = walking_distance_m(args.minutes, StationsSettings().walking_speed_kmh)
    lon, lat = CITIES[0][1], CITIES[0][2]
    ranges = nearby.r7_ranges(nearby.covering_cells(lon, lat, radius))
    box = geo.bounding_box(lon, lat, radius)
    query = repository.candidates_query(ranges, box=box, amenities=[args.amenity])
    sql = str(query.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}))
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if db.dialect == "postgresql" else "EXPLAIN QUERY PLAN "
    async with db.sessions() as session:
        plan = (await session.execute(text(prefix + sql))).all()
        found = len((await session.execute(query)).all())
    print(f"plan       {len(ranges)} r7 cells, {found} active candidates in central Nanchang")
    for row in plan:
        print("           " + " ".join(str(v) for v in row))


async def search(
    client: httpx.AsyncClient, point: tuple[float, float], args: argparse.Namespace, headers: Any
) -> tuple[float, int]:
    params = {"lon": point[0], "lat": point[1], "minutes": args.minutes, "amenity": args.amenity}
    started = time.perf_counter()
    response = await client.get("/v1/stations/nearby", params=params, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, len(response.json()["items"])


async def run(url: str, folder: Path, args: argparse.Namespace) -> bool:
    await migrate(ALEMBIC_INI, url)
    settings = StationsSettings(
        database_url=url,
        data_dir=folder,
        # No NATS needed: the bus reconnects in the background and searches never publish.
        nats_url="nats://127.0.0.1:1",
        log_level="WARNING",
    )
    app = create_app(settings)
    logging.getLogger("gonghui_shared.bus").setLevel(logging.CRITICAL)
    rng = random.Random(args.seed)
    headers = auth_header(token_for(settings, Role.member, member_no="360102202600001"))
    async with app.router.lifespan_context(app):
        load_seconds = await load(app, args, rng)
        if args.explain:
            await explain(app.state.runtime.db, args)
        points = query_points(args.warmup + args.queries, rng)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://stations") as client:
            for point in points[: args.warmup]:
                await search(client, point, args, headers)
            results = [await search(client, p, args, headers) for p in points[args.warmup :]]
    timings = [ms for ms, _ in results]
    found = [n for _, n in results]
    p50, p99 = percentile(timings, 50), percentile(timings, 99)
    print(f"database   {app.state.runtime.db.dialect}  ({url.split('@')[-1]})")
    print(f"loaded     {args.stations:,} stations in {load_seconds:.1f} s")
    print(
        f"query      {args.minutes:g} minutes at {settings.walking_speed_kmh} km/h, "
        f"amenity={args.amenity}, first page of 20"
    )
    print(
        f"results    mean {statistics.mean(found):.1f} per page, "
        f"{sum(n == 20 for n in found)} of {len(found)} pages full"
    )
    print(
        f"latency    p50 {p50:.1f} ms  p99 {p99:.1f} ms  max {max(timings):.1f} ms  "
        f"({args.queries} searches)"
    )
    return p99 <= BUDGET_P99_MS


async def main() -> int:
    args = parse_args()
    folder = Path(tempfile.mkdtemp(prefix="stations-bench-"))
    if args.postgres:
        url = await create_postgres_database(
            normalise_url(args.postgres_admin_url), "gonghui_stations_bench"
        )
        try:
            ok = await run(url, folder, args)
        finally:
            await drop_postgres_database(normalise_url(args.postgres_admin_url), url)
    else:
        url = normalise_url(args.database_url or f"sqlite+aiosqlite:///{folder / 'bench.db'}")
        ok = await run(url, folder, args)
    if not ok:
        print(f"p99 above the {BUDGET_P99_MS:.0f} ms budget", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
