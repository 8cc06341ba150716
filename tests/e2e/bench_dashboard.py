"""Dashboard overview throughput and p99 through the real gateway process (not run by pytest).

The gateway runs as `make run` runs it (one uvicorn process, its own database, a real NATS);
its read models are filled for a county of `--members` members by the dashboards' own loader
(`services/gateway/bench/dashboard_overview.py`: what the event handlers would have built
for 200 villages over three years). A separate process generates the load: `--concurrency`
clients on one pooled httpx client ask for the county's overview as a county admin, back to
back, for `--seconds` after `--warmup` seconds; it reports requests/s and latency
percentiles, and this process adds the CPU seconds each side used.

    .venv/bin/python tests/e2e/bench_dashboard.py
    TEST_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python tests/e2e/bench_dashboard.py --backend postgres

NATS: `NATS_URL` if it answers, else a nats-server of our own. Databases made here are
removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
GATEWAY = REPO / "services" / "gateway"
LOADER = GATEWAY / "bench" / "dashboard_overview.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16, help="clients in flight at once")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured run length")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    # The load generator's own entry point (the parent starts it with these).
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--org", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ---------------------------------------------------------------- the load generator process


async def generate_load(args: argparse.Namespace) -> dict[str, Any]:
    """`concurrency` clients back to back; latencies of the answers after the warm-up."""
    headers = {"Authorization": f"Bearer {args.token}"}
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    started = time.perf_counter()
    measure_from = started + args.warmup
    stop_at = measure_from + args.seconds

    async with httpx.AsyncClient(base_url=args.load, limits=limits, timeout=30.0) as client:

        async def worker() -> None:
            nonlocal errors
            while (now := time.perf_counter()) < stop_at:
                try:
                    response = await client.get(
                        "/v1/dashboard/overview", params={"org_id": args.org}, headers=headers
                    )
                    await response.aread()
                except httpx.HTTPError:
                    errors += 1
                    continue
                if now >= measure_from:
                    latencies.append(time.perf_counter() - now)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    measured = time.perf_counter() - measure_from
    ms = sorted(x * 1000 for x in latencies)
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else [0.0] * 99
    return {
        "requests": len(ms),
        "seconds": round(measured, 2),
        "requests_per_s": round(len(ms) / measured, 1),
        "p50_ms": round(cuts[49], 1),
        "p90_ms": round(cuts[89], 1),
        "p99_ms": round(cuts[98], 1),
        "max_ms": round(ms[-1], 1) if ms else None,
        "statuses": statuses,
        "transport_errors": errors,
    }


# ---------------------------------------------------------------- the gateway and its data


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dashboards_loader() -> ModuleType:
    """The dashboards engineer's read-model loader (its `build` and `load`)."""
    if not LOADER.exists():
        raise SystemExit(f"{LOADER} is missing: nothing to fill the read models with")
    spec = importlib.util.spec_from_file_location("dashboard_overview_bench", LOADER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def run(args: argparse.Namespace, folder: Path, nats_url: str) -> dict[str, Any]:
    from gonghui_shared.db import Database
    from gonghui_shared.permissions import Role
    from gonghui_shared.settings import ServiceSettings
    from gonghui_shared.testing import (
        create_postgres_database,
        drop_postgres_database,
        migrate,
        postgres_url_or_skip,
        token_for,
    )
    from gonghui_shared.testing.nats_server import free_port
    from gonghui_shared.testing.processes import ServiceProcess

    loader = dashboards_loader()
    admin_url = None
    if args.backend == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / 'gateway.db'}"
    else:
        admin_url = os.environ.get("TEST_POSTGRES_URL") or postgres_url_or_skip()
        url = await create_postgres_database(admin_url, "gateway_bench_e2e")
    gateway: ServiceProcess | None = None
    try:
        await migrate(GATEWAY / "alembic.ini", url)
        print(f"filling the read models for {args.members:,} members…", file=sys.stderr)
        rows, orgs = loader.build(args.members)
        db = Database(url)
        try:
            loaded = await loader.load(db, rows)
        finally:
            await db.dispose()
        county = orgs["county"]

        port = free_port()
        env = os.environ | {
            "GATEWAY_DATABASE_URL": url,
            "GONGHUI_NATS_URL": nats_url,
            "GONGHUI_SUBJECT_ROOT": f"gwbench{uuid.uuid4().hex[:8]}",
            "GONGHUI_DATA_DIR": str(folder),
        }
        gateway = ServiceProcess.launch(
            "gateway", "gateway.main:create_app", port, env, folder / "gateway.log"
        )
        await gateway.wait_ready(60)
        token = token_for(
            ServiceSettings(data_dir=folder),
            Role.county_admin,
            org_id=county.id,
            org_path=county.path,
            subject="bench",
        )
        async with httpx.AsyncClient(base_url=gateway.base, timeout=30) as client:
            first = await client.get(
                "/v1/dashboard/overview",
                params={"org_id": county.id},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert first.status_code == 200, first.text
        members = first.json()["figures"]["members"]
        assert members["active"] > 0.9 * args.members, members

        gateway_cpu = cpu_seconds(gateway.process.pid)
        generator = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--load",
            gateway.base,
            "--org",
            county.id,
            "--token",
            token,
            "--concurrency",
            str(args.concurrency),
            "--seconds",
            str(args.seconds),
            "--warmup",
            str(args.warmup),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(generator.communicate(), args.seconds + args.warmup + 60)
        assert generator.returncode == 0, out
        result: dict[str, Any] = json.loads(out)
        result["gateway_cpu_s"] = round(cpu_seconds(gateway.process.pid) - gateway_cpu, 1)
        result.update(
            backend=args.backend,
            members=args.members,
            active_members=members["active"],
            concurrency=args.concurrency,
            load_seconds=round(loaded, 1),
            load_average=os.getloadavg(),
            cpus=os.cpu_count(),
        )
        return result
    finally:
        if gateway is not None:
            await gateway.stop()
        if admin_url is not None:
            await drop_postgres_database(admin_url, url)


async def main(args: argparse.Namespace) -> int:
    if args.load:
        print(json.dumps(await generate_load(args)))
        return 0
    from gonghui_shared.testing.nats_server import NatsServer, reachable

    with tempfile.TemporaryDirectory(prefix="gw-bench-e2e-") as tmp:
        folder = Path(tmp)
        nats_url = os.environ.get("NATS_URL") or os.environ.get("GONGHUI_NATS_URL") or ""
        server = None
        if not (nats_url and reachable(nats_url)):
            server = NatsServer(folder / "nats")
            server.start()
            nats_url = server.url
        try:
            result = await run(args, folder, nats_url)
        finally:
            if server is not None:
                server.stop()
    print(json.dumps(result, indent=2))
    print(
        f"\n{args.backend}: county of {result['active_members']:,} active members, "
        f"{args.concurrency} clients: {result['requests_per_s']} overviews/s, "
        f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms "
        f"(gateway CPU {result['gateway_cpu_s']} s in {args.warmup + args.seconds:.0f} s "
        f"of load, load average {result['load_average'][0]:.1f} on {result['cpus']} CPUs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
