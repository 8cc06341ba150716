"""A focused probe of `GET /v1/dashboard/overview` at province scale (not in `make test`).

Loads straight into a scratch PostgreSQL database what the gateway's dashboard handlers
would have built for a province: 100 counties of 10 townships of 19 villages (19,000
village unions with coordinates), `--members` members spread over the villages (counters
from the handlers' own `member_counts`), training at the townships with the persons-seen
rows behind unique persons, `--stations` stations near villages with a year of visits,
cadres and the administrative units. Whatever the handlers derive beyond that (the
village coverage of the 15-minute circle, subtree rollups) is filled by the read model's
own `rebuild_derived` when the code has one, exactly as a rebuild would leave it.

Then it serves the gateway with uvicorn (one worker, no NATS) and hits the province's, a
county's and a village's overview with wrk as the platform admin, printing p50/p99 and
requests/s for each.

    .venv/bin/python bench/dashboards_probe.py                     # build, measure, drop
    .venv/bin/python bench/dashboards_probe.py --keep gw_probe     # keep the database
    .venv/bin/python bench/dashboards_probe.py --reuse gw_probe    # measure it again
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url

from gateway.config import GatewaySettings
from gateway.dashboards import repository
from gateway.dashboards.handlers import member_counts
from gateway.dashboards.models import (
    DashCadre,
    DashCadreTrained,
    DashCounter,
    DashMember,
    DashOrg,
    DashPersonSeen,
    DashSource,
    DashStation,
    DashUnit,
)
from gateway.dashboards.repository import periods_of, rolled_up
from gonghui_shared.db import Database
from gonghui_shared.ids import new_id
from gonghui_shared.permissions import Role
from gonghui_shared.testing import migrate, token_for

ROOT = Path(__file__).resolve().parents[1]
ALEMBIC_INI = ROOT / "services" / "gateway" / "alembic.ini"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
COUNTIES, TOWNSHIPS, VILLAGES = 100, 10, 19
MONTHS = [f"{y}-{m:02d}" for y in (2024, 2025, 2026) for m in range(1, 13)]
CATEGORIES = [("migrant_worker", 0.6), ("new_employment", 0.1), ("employee", 0.25), ("other", 0.05)]
COURSES = ["welding_trades", "planting_breeding", "ecommerce", "cadre_training", "safety"]
SERVICES = ["drinking_water", "phone_charging", "rest", "heating_food", "toilet"]
STATION_TYPES = ["village_service_point", "outdoor_worker_station", "worker_home"]
LOADED = datetime(2024, 1, 1, tzinfo=UTC)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--stations", type=int, default=10_000)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--keep", metavar="DB", help="build into this database and keep it")
    parser.add_argument("--reuse", metavar="DB", help="measure an existing database again")
    parser.add_argument("--seconds", type=int, default=8, help="wrk run per org")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--port", type=int, default=8765)
    return parser.parse_args()


def _org(parent: dict[str, Any] | None, org_type: str, name: str, code: str) -> dict[str, Any]:
    rnd = random.Random(code)
    org_id = new_id()
    return {
        "id": org_id,
        "parent_id": parent["id"] if parent else None,
        "path": f"{parent['path'] if parent else '/'}{org_id}/",
        "org_type": org_type,
        "name": name,
        "region_code": code,
        # A province about 8° by 8°: villages of a county within about 40 km of each other.
        "lon": 98.0 + int(code[4:6] or 0) % 10 * 0.8 + rnd.uniform(0, 0.8),
        "lat": 22.0 + int(code[2:4] or 0) % 10 * 0.8 + rnd.uniform(0, 0.8),
        "status": "active",
        "last_event_at": LOADED,
    }


def build(args: argparse.Namespace) -> tuple[dict[Any, list[dict[str, Any]]], dict[str, str]]:
    rnd = random.Random(20261127)
    rows: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    counters: dict[tuple[str, str, str, str], int] = defaultdict(int)
    province = _org(None, "provincial_federation", "云南省总工会", "530000000000")
    units: list[tuple[dict[str, Any], str, str | None]] = [(province, "province", None)]
    counties, townships, villages = [], [], []
    for c in range(1, COUNTIES + 1):
        code = f"53{(c - 1) // 10 + 1:02d}{(c - 1) % 10 + 1:02d}000000"
        county = _org(province, "county_federation", f"第{c}县总工会", code)
        counties.append(county)
        units.append((county, "county", province["region_code"]))
        for t in range(1, TOWNSHIPS + 1):
            tcode = f"{code[:6]}{t:03d}000"
            township = _org(county, "township_union", f"第{c}县{t}镇工会", tcode)
            townships.append(township)
            units.append((township, "township", code))
            for v in range(1, VILLAGES + 1):
                village = _org(
                    township, "village_union", f"第{c}县{t}镇{v}村", tcode[:9] + f"{v:03d}"
                )
                villages.append(village)
                units.append((village, "village", tcode))
    rows[DashOrg] = [province, *counties, *townships, *villages]
    rows[DashUnit] = [
        {"code": o["region_code"], "name": o["name"], "level": level, "parent_code": parent,
         "lon": o["lon"], "lat": o["lat"], "last_event_at": LOADED}
        for o, level, parent in units
    ]  # fmt: skip

    names, weights = [c for c, _ in CATEGORIES], [w for _, w in CATEGORIES]
    for i in range(args.members):
        village = villages[i % len(villages)]
        member = DashMember(
            member_no=f"53{i:014d}",
            member_id=new_id(),
            category=rnd.choices(names, weights)[0],
            approved_org_id=village["id"],
            approved_month=MONTHS[rnd.randrange(len(MONTHS))],
        )
        if rnd.random() < 0.04:
            member.ended_status, member.ended_org_id = "withdrawn", village["id"]
            member.ended_at, member.ended_month = datetime(2026, 6, 1, tzinfo=UTC), "2026-06"
        for key, n in member_counts(member, []).items():
            counters[key] += n
        rows[DashMember].append(
            {c.key: getattr(member, c.key) for c in DashMember.__table__.columns}
        )

    for org in [*townships, *villages[::4]]:
        member_no = f"9{rnd.randrange(10**15):015d}"
        rows[DashCadre].append(
            {"cadre_id": new_id(), "member_no": member_no, "org_id": org["id"], "role": "chair"}
        )
        if rnd.random() < 0.85:
            rows[DashCadreTrained].append({"member_no": member_no, "first_day": date(2025, 3, 1)})

    people = [f"m:53{i:014d}" for i in range(args.members)]
    seen: set[tuple[str, str, str]] = set()
    for month in MONTHS[-12:]:
        for host in rnd.sample(townships, 100):
            course = rnd.choice(COURSES)
            counters[(host["id"], "sessions_completed", month, course)] += 1
            counters[(host["id"], "budget_spent_fen", month, course)] += 100_000
            counters[(host["id"], "certificates_issued", month, "")] += 20
            for person in rnd.sample(people, 20):
                counters[(host["id"], "person_times", month, "migrant_worker")] += 2
                seen.add((host["id"], month, person))
    rows[DashPersonSeen] = [
        {"org_id": o, "period": period, "person_key": p}
        for o, p, period in {(o, p, period) for o, m, p in seen for period in periods_of(m)}
    ]

    for n in range(args.stations):
        host = villages[rnd.randrange(len(villages))]
        station_type = rnd.choice(STATION_TYPES)
        rows[DashStation].append(
            {"station_id": new_id(), "host_org_id": host["id"], "station_type": station_type,
             "name": f"驿站{n}", "lon": host["lon"] + rnd.uniform(-0.02, 0.02),
             "lat": host["lat"] + rnd.uniform(-0.02, 0.02),
             "status": "active" if rnd.random() < 0.9 else "closed",
             "place_at": LOADED, "status_at": LOADED}
        )  # fmt: skip
        for month in MONTHS[-12:]:
            counters[(host["id"], "visits", month, station_type)] += 30
            counters[(host["id"], "services_used", month, rnd.choice(SERVICES))] += 20
    rows[DashCounter] = [
        {"org_id": o, "period": p, "metric": m, "dimension": d, "value": v}
        for (o, p, m, d), v in rolled_up(counters).items()
    ]
    rows[DashSource] = [
        {"source": s, "last_event_at": LOADED, "applied_at": LOADED, "events_applied": 1}
        for s in ("membership", "training", "stations")
    ]
    return rows, {
        "province": province["id"],
        "county": counties[0]["id"],
        "village": villages[0]["id"],
    }


async def load(url: str, rows: dict[Any, list[dict[str, Any]]]) -> None:
    db = Database(url)
    try:
        async with db.transaction() as session:
            for model, items in rows.items():
                for start in range(0, len(items), 5000):
                    await session.execute(insert(model), items[start : start + 5000])
        rebuild_derived = getattr(repository, "rebuild_derived", None)
        if rebuild_derived is not None:  # what the handlers derive from the rows above
            started = time.perf_counter()
            async with db.transaction() as session:
                await rebuild_derived(session)
            print(f"derived read models rebuilt in {time.perf_counter() - started:.1f}s")
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
    finally:
        await db.dispose()


async def sample_orgs(url: str) -> dict[str, str]:
    db = Database(url)
    try:
        async with db.sessions() as session:
            found: dict[str, str] = {}
            for name, org_type in (
                ("province", "provincial_federation"),
                ("county", "county_federation"),
                ("village", "village_union"),
            ):
                org_id = await session.scalar(
                    select(DashOrg.id)
                    .where(DashOrg.org_type == org_type)
                    .order_by(DashOrg.region_code)
                    .limit(1)
                )
                assert org_id is not None, f"no {org_type} in the read model"
                found[name] = org_id
            return found
    finally:
        await db.dispose()


def wrk(url: str, token: str, seconds: int, connections: int) -> tuple[str, str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "60s",
         "-H", f"Authorization: Bearer {token}", url],
        capture_output=True, text=True, check=True, timeout=seconds + 30,
    ).stdout  # fmt: skip
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    rps = re.search(r"Requests/sec:\s+(\S+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{errors.group(1)} failed responses:\n{out}")
    assert p50 and p99 and rps, out
    return p50.group(1), p99.group(1), float(rps.group(1))


def bare_ceiling(args: argparse.Namespace) -> float:
    """requests/s of the bare Starlette endpoint (bench/bare.py), measured the same way."""
    with tempfile.TemporaryDirectory(prefix="gw-probe-bare-") as folder:
        log = open(Path(folder) / "bare.log", "ab")  # noqa: SIM115 - the child keeps it
        server = subprocess.Popen(
            [str(VENV_PYTHON), "-m", "uvicorn", "--factory", "bench.bare:create_app",
             "--port", str(args.port), "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, start_new_session=True, stderr=log, stdout=log,
        )  # fmt: skip
        try:
            time.sleep(2)
            p50, p99, rps = wrk(
                f"http://127.0.0.1:{args.port}/json", "-", args.seconds, args.connections
            )
        finally:
            stop_server(server)
    print(f"bare      p50 {p50:>9}  p99 {p99:>9}  {rps:8.1f} req/s", flush=True)
    return rps


def start_server(folder: str, url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GATEWAY_DATABASE_URL": url,
        "GONGHUI_DATA_DIR": folder,
        "GONGHUI_ENVIRONMENT": "test",
        "GONGHUI_NATS_URL": "nats://127.0.0.1:9",
        # One principal makes every call: the per-principal limit would answer 429s.
        "GATEWAY_RATE_LIMIT_PER_PRINCIPAL": "1000000000",
    }
    log = open(Path(folder) / "server.log", "ab")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(
        [str(VENV_PYTHON), "-m", "uvicorn", "--factory", "gateway.main:create_app",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        env=env, start_new_session=True, stderr=log, stdout=log,
    )  # fmt: skip


def stop_server(server: subprocess.Popen[bytes]) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=5)
    except subprocess.TimeoutExpired:  # still answering requests wrk gave up on
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=5)


async def serve_and_measure(url: str, orgs: dict[str, str], args: argparse.Namespace) -> None:
    """Per org, a fresh server: one untimed call, then wrk (no queue left from the last)."""
    bare = await asyncio.to_thread(bare_ceiling, args)
    with tempfile.TemporaryDirectory(prefix="gw-probe-") as folder:
        settings = GatewaySettings(
            database_url=url, data_dir=Path(folder), environment="test",
            nats_url="nats://127.0.0.1:9",
        )  # fmt: skip
        token = token_for(settings, Role.platform_admin)
        headers = {"Authorization": f"Bearer {token}"}
        base = f"http://127.0.0.1:{args.port}"
        for name, org_id in orgs.items():
            server = start_server(folder, url, args.port)
            try:
                async with httpx.AsyncClient(base_url=base, timeout=120) as client:
                    for _ in range(300):
                        try:
                            await client.get("/health")
                            break
                        except httpx.TransportError:
                            await asyncio.sleep(0.2)
                    started = time.perf_counter()
                    response = await client.get(
                        "/v1/dashboard/overview", params={"org_id": org_id}, headers=headers
                    )
                    first_ms = (time.perf_counter() - started) * 1000
                    assert response.status_code == 200, response.text
                    figures = response.json()["figures"]
                p50, p99, rps = await asyncio.to_thread(
                    wrk, f"{base}/v1/dashboard/overview?org_id={org_id}", token,
                    args.seconds, args.connections,
                )  # fmt: skip
                print(
                    f"{name:<9} first {first_ms:7.1f} ms  p50 {p50:>9}  p99 {p99:>9}  "
                    f"{rps:8.1f} req/s ({rps / bare:6.1%} of bare)   "
                    f"(active {figures['members']['active']:,}, circle "
                    f"{figures['stations']['circle']['covered']:,}/"
                    f"{figures['stations']['circle']['units_located']:,}, stations "
                    f"{figures['stations']['total']:,}, unique persons "
                    f"{figures['training']['unique_persons']:,})",
                    flush=True,
                )
            finally:
                stop_server(server)


def database_url(base: str, name: str) -> str:
    return make_url(base).set(database=name).render_as_string(hide_password=False)


async def main() -> int:
    args = parse_args()
    if args.reuse:
        url = database_url(args.postgres_url, args.reuse)
        await serve_and_measure(url, await sample_orgs(url), args)
        return 0
    name = args.keep or f"gw_probe_{os.getpid()}"
    admin = Database(args.postgres_url)
    async with admin.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = database_url(args.postgres_url, name)
    try:
        await migrate(ALEMBIC_INI, url)
        started = time.perf_counter()
        rows, orgs = build(args)
        print(f"built {sum(len(r) for r in rows.values()):,} rows", file=sys.stderr)
        await load(url, rows)
        print(f"loaded in {time.perf_counter() - started:.0f}s")
        await serve_and_measure(url, orgs, args)
    finally:
        if not args.keep:
            async with admin.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
