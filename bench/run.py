"""`make bench`: load a generated province into the platform, then measure it on loopback.

    .venv/bin/python -m bench                       # scale 1: a million members, long
    .venv/bin/python -m bench --scale 0.05 --duration 20
    make bench ARGS="--scale 0.01 --duration 10"

In order: fresh databases (PostgreSQL at --postgres-url, else TEST_POSTGRES_URL; SQLite
with --backend sqlite), migrated; the four services and a bare Starlette app as uvicorn
processes on one NATS; the province loaded in-process through the services' own write code
(bench/dataset.py), its events relayed and consumed until every outbox and consumer is
idle; then the measurements (bench/measure.py), each from a load generator in a process
of its own (wrk where it is installed, bench/wrk.py; else the httpx client, bench/load.py),
the member lookup also under granian (bench/servers.py) and the relay drain
(bench/drain.py) where they are there; last the results, as .bench/results.json and
.bench/results.md, naming the generator and how every process was served. Everything
the run made is removed at the end; --keep leaves its folder (logs, specs) in place.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import nats
from sqlalchemy import text

from bench import dataset, measure, report, servers, wrk
from bench.dataset import Loading, Sizes
from bench.measure import Result, Runner
from bench.stack import (
    BARE,
    REFERENCE,
    REPO,
    SERVICES,
    Stack,
    StolenTime,
    running_stack,
    wait_until_quiet,
)
from gonghui_shared.db import normalise_url
from gonghui_shared.permissions import Role

DEFAULT_OUT = REPO / ".bench"


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="share of the full province (default 1.0)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder (.bench/)")
    parser.add_argument(
        "--duration", type=float, default=20.0, help="measured seconds per measurement"
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument("--concurrency", type=int, default=16, help="clients in flight at once")
    parser.add_argument(
        "--generator",
        choices=["auto", "wrk", "httpx"],
        default="auto",
        help="the load generator: wrk (Debian's wrk, on PATH), the bounded httpx client "
        "(bench/load.py), or auto: wrk when installed (default)",
    )
    parser.add_argument(
        "--server-compare",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also measure the member lookup on membership under granian "
        "(default: when granian is installed)",
    )
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL"),
        help="a server where bench_* databases may be made and dropped "
        "(default BENCH_POSTGRES_URL, else TEST_POSTGRES_URL)",
    )
    parser.add_argument(
        "--load-workers",
        type=int,
        default=4,
        help="in-process loaders running at once (each with its database connection): "
        "while one waits for PostgreSQL, another uses the CPU",
    )
    parser.add_argument(
        "--roster-rows", type=int, help="rows of the roster file (default 100,000 × scale)"
    )
    parser.add_argument(
        "--stations",
        type=int,
        help="stations to open (default 100,000 × scale): the nearby search's target is "
        "set with 100,000, which a smaller --scale can still load",
    )
    parser.add_argument(
        "--pool-size",
        type=int,
        default=10,
        help="each service's database pool, without overflow: SQLAlchemy closes an overflow "
        "connection when it comes back, and reopening one per request (with asyncpg's TLS "
        "attempt) cost a third of the member lookup's throughput",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (logs, specs)")
    parser.add_argument(
        "--only",
        type=lambda text: text.split(","),
        metavar="KEY,KEY",
        help=f"only these measurements (and the bare one): {', '.join(measure.KEYS)}",
    )
    parser.add_argument(
        "--profile",
        metavar="KEY",
        choices=sorted(measure.KEYS),
        help="sample that measurement's service with py-spy (installed separately) into "
        "--out/profile-KEY.md",
    )
    args = parser.parse_args(argv)
    unknown = set(args.only or ()) - set(measure.KEYS)
    if unknown:
        parser.error(f"no such measurement: {', '.join(sorted(unknown))}")
    if not 0 < args.scale <= 1:
        parser.error("--scale is a share of the full province: more than 0, at most 1")
    if args.backend == "postgres" and not args.postgres_url:
        parser.error(
            "no PostgreSQL: pass --postgres-url or set TEST_POSTGRES_URL (or use --backend sqlite)"
        )
    args.wrk_path = wrk.find()
    if args.generator == "auto":
        args.generator = "wrk" if args.wrk_path else "httpx"
    elif args.generator == "wrk" and not args.wrk_path:
        parser.error("--generator wrk: no wrk on PATH (Debian: apt-get install wrk)")
    if args.server_compare is None:
        args.server_compare = servers.granian_available()
    elif args.server_compare and not servers.granian_available():
        parser.error("--server-compare needs granian: make install (requirements-dev.txt)")
    return args


def generator_name(args: argparse.Namespace) -> str:
    if args.generator == "wrk":
        return f"wrk {wrk.version(args.wrk_path)} (1 thread, {args.concurrency} connections)"
    return f"httpx {metadata.version('httpx')} (bench/load.py, {args.concurrency} clients)"


def events_timeout(sizes: Sizes) -> float:
    """Bounded, however slow the machine: ~20 ms an event, at least five minutes."""
    events = sizes.members * 2 + sizes.person_times * 2 + sizes.stations
    return max(300.0, events * 0.02)


async def database_version(stack: Stack) -> str:
    if stack.backend == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    db = stack.database("membership")
    try:
        async with db.engine.connect() as conn:
            version = str(await conn.scalar(text("SHOW server_version")))
    finally:
        await db.dispose()
    return f"PostgreSQL {version.split()[0]}"


async def nats_version(stack: Stack) -> str:
    nc = await nats.connect(stack.nats_url, connect_timeout=2)
    try:
        version = nc.connected_server_version
        return f"{version.major}.{version.minor}.{version.patch}"
    finally:
        await nc.close()


async def analyse(stack: Stack) -> None:
    """What autovacuum does soon after a bulk load: planner statistics, the visibility map."""
    if stack.backend != "postgres":
        return
    for name in SERVICES:
        db = stack.database(name)
        try:
            async with db.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("VACUUM ANALYZE"))
        finally:
            await db.dispose()


# How often planner statistics are refreshed while loading, as autovacuum would.
ANALYSE_EVERY = 15.0


@contextlib.asynccontextmanager
async def analysing_while_loading(stack: Stack) -> AsyncIterator[None]:
    """ANALYZE every service database every `ANALYSE_EVERY` seconds while the block runs
    (and VACUUM every fourth time).

    Autovacuum would, where it is on (it is off on some test servers): tables that grow
    from empty to a million rows are otherwise planned as if they were still empty, and
    a lookup by key becomes a scan that grows with the table (the duplicate check of a
    roster import, the consumers' positions).
    """
    if stack.backend != "postgres":
        yield
        return

    async def keep_analysing() -> None:
        dbs = [stack.database(name) for name in SERVICES]
        try:
            rounds = 0
            while True:
                await asyncio.sleep(ANALYSE_EVERY)
                rounds += 1
                # Every minute a VACUUM as well: the outbox's sent rows leave dead index
                # entries that each claim of the relay would otherwise step over.
                statement = "VACUUM ANALYZE" if rounds % 4 == 0 else "ANALYZE"
                for db in dbs:
                    async with db.engine.connect() as conn:
                        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                        await conn.execute(text(statement))
        finally:
            for db in dbs:
                await db.dispose()

    task = asyncio.create_task(keep_analysing())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def timed(loading: Loading, what: str, path: str, rows: int, work: Any) -> Any:
    started = time.perf_counter()
    result = await work
    seconds = time.perf_counter() - started
    loading.add(what, path, rows, seconds)
    say(f"{what}: {rows:,} in {seconds:,.1f} s")
    return result


async def load(
    stack: Stack, sizes: Sizes, args: argparse.Namespace, loading: Loading
) -> tuple[dataset.Province, dataset.WriteFixtures, dataset.MembershipLoader]:
    say(f"loading {sizes.describe()}")
    async with analysing_while_loading(stack):
        return await _load(stack, sizes, args, loading)


async def _load(
    stack: Stack, sizes: Sizes, args: argparse.Namespace, loading: Loading
) -> tuple[dataset.Province, dataset.WriteFixtures, dataset.MembershipLoader]:
    members = dataset.MembershipLoader(stack, sizes, say, args.load_workers)
    province = await timed(
        loading,
        "membership: province, counties, townships, villages; a roster per village, "
        "imported and approved",
        "in-process units.import_units, orgs.create, rosters.import_roster (csv), "
        "admissions.approve_roster",
        sizes.members,
        members.load(args.load_workers),
    )
    timeout = events_timeout(sizes)
    await timed(
        loading,
        "events: membership's → training's and stations' replicas, the gateway's read model",
        "outbox relays, NATS, the running services' consumers",
        sizes.members,
        wait_until_quiet(stack, say, timeout),
    )
    stations = dataset.StationsLoader(stack, sizes, say, args.load_workers)
    try:
        await timed(
            loading,
            "stations: opened across the villages",
            "in-process stations.create",
            sizes.stations,
            stations.load(province, args.load_workers),
        )
    finally:
        await stations.close()
    training = dataset.TrainingLoader(stack, sizes, say, args.load_workers)
    try:
        await timed(
            loading,
            "training: sessions of 25 people over 2 days, every day attended (person-times)",
            "in-process courses.create, sessions.schedule/open/start, enrolments.enrol, "
            "attendance.check_in",
            sizes.person_times,
            training.load(province, args.load_workers),
        )
        needed = measure.write_plan_size(args.concurrency, args.warmup, args.duration)
        fixtures = await timed(
            loading,
            "training: sessions for the write measurements (enrolling, in progress)",
            "in-process, as above",
            2 * args.concurrency,
            training.write_fixtures(province.counties[0], args.concurrency, needed),
        )
    finally:
        await training.close()
    await timed(
        loading,
        "events: stations' and training's → the gateway's read model",
        "outbox relays, NATS, the running services' consumers",
        sizes.stations + 2 * sizes.person_times,
        wait_until_quiet(stack, say, timeout),
    )
    if stack.backend == "postgres":
        await timed(loading, "VACUUM ANALYZE every database", "SQL", 0, analyse(stack))
    return province, fixtures, members


async def verify(stack: Stack, province: dataset.Province, sizes: Sizes) -> dict[str, int]:
    """The gateway's read model holds everything loaded, before anything is measured."""
    headers = measure.Callers.of(stack, Role.platform_admin, None, 1).headers[0]
    async with httpx.AsyncClient(base_url=stack.base("gateway"), timeout=120) as client:
        response = await client.get(
            "/v1/dashboard/overview", params={"org_id": province.org.id}, headers=headers
        )
    response.raise_for_status()
    figures = response.json()["figures"]
    shown = {
        "members": figures["members"]["active"],
        "stations": figures["stations"]["total"],
        "person_times": figures["training"]["person_times"],
    }
    loaded = {"members": sizes.members, "stations": sizes.stations}
    loaded["person_times"] = sizes.person_times
    if any(shown[key] < loaded[key] for key in loaded):
        raise RuntimeError(f"the gateway's read model shows {shown}, loaded {loaded}")
    say(
        f"the gateway's province overview shows {shown['members']:,} members, "
        f"{shown['stations']:,} stations, {shown['person_times']:,} person-times"
    )
    return shown


# Events the relay drain publishes in a quick run (below scale 0.01); bench/drain.py's own
# default otherwise.
QUICK_DRAIN_EVENTS = 2000


async def relay_drain(stack: Stack, scale: float) -> Result | None:
    """How fast an outbox relay publishes a backlog (bench/drain.py); skipped without it."""
    try:
        from bench import drain
    except ModuleNotFoundError as exc:
        if exc.name != "bench.drain":
            raise
        say("relay drain: skipped (bench/drain.py is not there)")
        return None
    if scale < 0.01:
        quick: Result = await drain.relay_drain(stack, say, events=QUICK_DRAIN_EVENTS)
        return quick
    result: Result = await drain.relay_drain(stack, say)
    return result


async def measure_all(
    stack: Stack,
    province: dataset.Province,
    fixtures: dataset.WriteFixtures,
    members: dataset.MembershipLoader,
    sizes: Sizes,
    args: argparse.Namespace,
    folder: Path,
) -> list[Result]:
    runner = Runner(
        stack,
        folder,
        args.concurrency,
        args.duration,
        args.warmup,
        say,
        profile=args.profile,
        out=args.out,
        generator=args.generator,
        wrk_path=args.wrk_path,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    county = province.counties[0]
    village = county.villages[0]
    say("measuring")
    reads = [
        ("member_gateway", "GET /v1/members/{member_no} through the gateway", "gateway",
         lambda: measure.member_lookups(stack, county, via_gateway=True)),
        ("member_direct", "GET /v1/members/{member_no} on membership directly", "membership",
         lambda: measure.member_lookups(stack, county, via_gateway=False)),
        ("dashboard_province", f"dashboard overview: province ({sizes.members:,} members)",
         "gateway", lambda: measure.overviews(stack, province.org, Role.county_admin)),
        ("dashboard_county", f"dashboard overview: county ({len(county.member_nos):,} members)",
         "gateway", lambda: measure.overviews(stack, county.org, Role.county_admin)),
        ("dashboard_village", "dashboard overview: village", "gateway",
         lambda: measure.overviews(stack, village, Role.org_chair)),
        ("nearby", f"nearby stations, 15 min walk, amenity {measure.NEARBY_AMENITY}, via gateway",
         "gateway", lambda: measure.nearby_searches(stack, province)),
    ]  # fmt: skip
    writes = [
        ("enrolment", "POST enrolment (training directly)", fixtures.enrolments),
        ("attendance", "POST attendance check-in (training directly)", fixtures.check_ins),
    ]
    wanted = set(args.only or measure.KEYS)
    bare_plan = [{"path": "/json"}]
    results = [await runner.http(BARE, "bare Starlette JSON endpoint (ceiling)", BARE, bare_plan)]

    async def beside_bare(measurement: Awaitable[Result]) -> Result:
        """The measurement, with the bare endpoint measured again just before it: a
        machine's speed can wander by half within minutes (seen here), so each ratio is
        read against its neighbour (`measure.with_ratios`)."""
        bare = await runner.http(BARE, "bare, beside", BARE, bare_plan)
        result = await measurement
        result.details["bare_beside_per_s"] = bare.requests_per_s
        return result

    # The floors the member lookup is read against: FastAPI alone, then with one read.
    floors = [("fastapi_minimal", "minimal", "FastAPI floor: path parameter, pydantic answer")]
    if stack.backend == "postgres":
        floors.append(
            ("fastapi_lookup", "lookup", "FastAPI floor: the same, plus one asyncpg lookup")
        )
    for key, endpoint, name in floors:
        if key in wanted:
            requests = measure.floor_requests(county, endpoint)
            results.append(await beside_bare(runner.http(key, name, REFERENCE, requests)))
    for key, name, service, plan in reads:
        if key in wanted:
            results.append(await beside_bare(runner.http(key, name, service, plan())))
        if key == "member_direct" and args.server_compare and key in wanted:
            async with servers.under_granian(stack, "membership", "membership_granian", say):
                granian = await runner.http(
                    "member_direct_granian",
                    "GET /v1/members/{member_no} on membership directly, under granian",
                    "membership_granian",
                    plan(),
                )
                # The verdict rests on pairs measured back to back, in alternating order: one
                # run of each, minutes apart, said 0.85 and 1.20 of uvicorn on the same code.
                pairs = []
                for round_ in range(measure.SERVER_PAIRS):
                    order = ["membership", "membership_granian"]
                    if round_ % 2:
                        order.reverse()
                    found = {
                        service: await runner.http(f"{key}_pair", "pair", service, plan())
                        for service in order
                    }
                    pairs.append(
                        [
                            found["membership"].requests_per_s,
                            found["membership_granian"].requests_per_s,
                        ]
                    )
                granian.details["paired_per_s"] = pairs
                results.append(granian)
    for key, name, bodies in writes:
        if key in wanted:
            requests = measure.writes(stack, county, bodies)
            results.append(await runner.http(key, name, "training", requests, once=True))
    if "event_latency" in wanted:
        await runner.settle()
        # The issue asks for the latency under the write load: check-ins (from the half of
        # the prepared ones the attendance measurement cannot have reached) go in beside the
        # probes, and their rate is reported with the latency.
        load = measure.writes(stack, county, fixtures.check_ins[len(fixtures.check_ins) // 2 :])
        writing = asyncio.create_task(
            runner.http(
                "event_latency_load", "check-ins beside the probes", "training", load, once=True
            )
        )
        await asyncio.sleep(args.warmup)
        latency = await measure.event_latency(stack, county, args.duration, say)
        background = await writing
        latency.details["write_load_per_s"] = background.requests_per_s
        latency.details["write_load_failed"] = background.details.get("failed")
        latency.name += f" (beside {background.requests_per_s or 0:,.0f} check-ins/s)"
        results.append(latency)
    if "relay_drain" in wanted:
        await runner.settle()
        drained = await relay_drain(stack, args.scale)
        if drained is not None:
            results.append(drained)
    if "roster_import" in wanted:
        await runner.settle()
        rows = [dataset.person(n, county.org.region_code) for n in dataset.roster_people(sizes)]
        stolen = StolenTime()
        imported, seconds, cpu_seconds = await members.import_xlsx(village, rows)
        results.append(measure.roster_result(imported, seconds, cpu_seconds, stolen.share(), say))
    return measure.with_ratios(results)


def server_settings(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """How the services were served: uvicorn's loop and HTTP parser (and granian's)."""
    found = {
        name: servers.uvicorn_settings(process.argv) for name, process in stack.processes.items()
    }
    if args.server_compare:
        argv = servers.granian_argv("membership.main:create_app", 0)
        found["membership_granian"] = servers.granian_settings(argv)
    return found


async def run(args: argparse.Namespace, folder: Path) -> tuple[Path, Path]:
    # Stopped (SIGTERM) as by Ctrl-C: the run is cancelled, so the stack's services, NATS
    # and databases go with it instead of running on, orphaned, into the next run.
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    started_at = datetime.now(UTC)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    sizes = Sizes.at(args.scale, args.roster_rows, args.stations)
    loading = Loading()
    admin_url = normalise_url(args.postgres_url) if args.backend == "postgres" else None
    async with running_stack(
        args.backend, admin_url, folder, say, pool_size=args.pool_size, max_overflow=0
    ) as stack:
        province, fixtures, members = await load(stack, sizes, args, loading)
        await verify(stack, province, sizes)
        try:
            results = await measure_all(stack, province, fixtures, members, sizes, args, folder)
        finally:
            await members.close()
        doc = report.document(
            sizes=sizes,
            loading=loading,
            results=results,
            database=await database_version(stack),
            nats_server=await nats_version(stack),
            settings={
                "concurrency": args.concurrency,
                "duration": args.duration,
                "warmup": args.warmup,
                "pool_size": stack.pool_size,
                "max_overflow": stack.max_overflow,
                "load_workers": args.load_workers,
                "backend": args.backend,
                "generator": generator_name(args),
                "servers": server_settings(stack, args),
            },
            started=started_at,
        )
        doc["machine"]["load_average_at_start"] = load_at_start
    return report.write(args.out, doc)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The dev keys are expected here, and the services' own warnings go to their logs.
    logging.basicConfig(level=logging.ERROR)
    folder = Path(tempfile.mkdtemp(prefix="gonghui-bench-"))
    ok = False
    try:
        json_path, md_path = asyncio.run(run(args, folder))
        ok = True
    finally:
        if ok and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            say(f"logs and specs kept in {folder}")
    print(md_path.read_text())
    say(f"wrote {json_path} and {md_path}")
    return 0
