"""The measurements: what is asked of which process, by whom, and the targets it is held to.

HTTP measurements run the load generator (`bench.load`) as a separate process against a
service on loopback; the event latency and the roster import are timed by the harness.
The targets are issue 8's, mostly as a share of the bare endpoint measured in the same run
(so a slower machine moves both sides); enrolment and attendance have none there, and
carry the harness's proposal: what a worker's phone at a busy session should not notice.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from bench import profile, wrk
from bench.dataset import County, OrgRef, Province
from bench.load import percentiles
from bench.stack import BARE, REPO, Say, Stack, StolenTime, wait_until_quiet
from gonghui_shared.permissions import Role
from gonghui_shared.settings import ServiceSettings
from gonghui_shared.testing import token_for

# Distinct callers per measurement: the gateway limits calls per principal (600 a minute by
# default), and real load comes from many people, each with a token of their own. 1,000 may
# make 10,000 calls a second for a minute; fewer than the verified tokens a process keeps
# (`gonghui_shared.auth.VERIFIED_TOKENS_KEPT`), or each call would verify its token again.
CALLERS = 1000
# Extra seconds a load-generator process may take beyond its warm-up and duration.
GENERATOR_GRACE_SECONDS = 60.0
NEARBY_AMENITY = "drinking_water"
SWITCH_RATIO = 1.15  # issue 8: switch to granian only if it serves 15% more member lookups
# Back-to-back pairs (uvicorn, granian) the server comparison's verdict is the median of.
SERVER_PAIRS = 3
# A measurement under granian -> the same one under uvicorn.
SERVER_COMPARISONS = {"member_direct_granian": "member_direct"}


@dataclass(frozen=True)
class Target:
    p99_ms: float | None = None  # below this
    per_s: float | None = None  # requests (or rows) per second, at least
    ratio: float | None = None  # throughput as a share of the bare endpoint's, at least
    # Throughput as a multiple of the same measurement under uvicorn, at least: the
    # server comparison, where "met" means switching would pay.
    over_uvicorn: float | None = None

    def describe(self, unit: str = "req/s") -> str:
        parts = []
        if self.over_uvicorn is not None:
            parts.append(f"≥ {self.over_uvicorn:.2f} × uvicorn's (switch if met)")
        if self.ratio is not None:
            parts.append(f"≥ {self.ratio:.0%} of bare")
        if self.p99_ms is not None:
            parts.append(f"p99 < {self.p99_ms:,.0f} ms")
        if self.per_s is not None:
            parts.append(f"≥ {self.per_s:,.0f} {unit}")
        return ", ".join(parts)

    def met(self, result: dict[str, Any]) -> bool:
        p99 = result.get("p99_ms")
        if self.p99_ms is not None and (p99 is None or p99 >= self.p99_ms):
            return False
        if self.ratio is not None and (result.get("ratio_to_bare") or 0) < self.ratio:
            return False
        if self.over_uvicorn is not None:
            found = (result.get("details") or {}).get("ratio_to_uvicorn")
            if found is None or found < self.over_uvicorn:
                return False
        return self.per_s is None or (result.get("requests_per_s") or 0) >= self.per_s


TARGETS: dict[str, Target] = {
    "member_gateway": Target(ratio=0.20),
    "member_direct": Target(ratio=0.30),
    "dashboard_province": Target(ratio=0.30, p99_ms=20),
    "dashboard_county": Target(ratio=0.30, p99_ms=20),
    "dashboard_village": Target(ratio=0.30, p99_ms=20),
    "nearby": Target(p99_ms=10),
    "enrolment": Target(p99_ms=200, per_s=100),  # the harness's proposal
    "attendance": Target(p99_ms=200, per_s=200),  # the harness's proposal
    "member_direct_granian": Target(over_uvicorn=SWITCH_RATIO),
    "event_latency": Target(p99_ms=100),
    "relay_drain": Target(per_s=2000),  # events/s, with sync_interval: always
    "roster_import": Target(per_s=5000),
}
# Measured for reference, with no target of their own: FastAPI's floors (bench/reference.py).
FLOORS = ("fastapi_minimal", "fastapi_lookup")
KEYS = (*FLOORS, *TARGETS)


@dataclass
class Result:
    key: str
    name: str
    requests_per_s: float | None
    p50_ms: float | None
    p99_ms: float | None
    unit: str = "req/s"
    ratio_to_bare: float | None = None
    target: str = ""
    met: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def judge(self) -> None:
        target = TARGETS.get(self.key)
        if target is None:
            return
        self.target = target.describe(self.unit)
        failed = self.details.get("failed", 0)
        cut_short = self.details.get("plan_exhausted", False)
        self.met = target.met(vars(self)) and not failed and not cut_short


_PLANS = itertools.count(1)


@dataclass
class Callers:
    """Tokens for many people of one role and org: the requests' own headers."""

    headers: list[dict[str, str]]

    @classmethod
    def of(cls, stack: Stack, role: Role, org: OrgRef | None, n: int = CALLERS) -> Callers:
        """`n` people of their own: no two plans share a caller, so a measurement never
        starts with its callers' rate limits half spent by the one before (the province's
        overviews at 9,600 a second once left the county's a third refused)."""
        settings = ServiceSettings(data_dir=stack.folder)
        plan = next(_PLANS)
        return cls(
            [
                {
                    "Authorization": "Bearer "
                    + token_for(
                        settings,
                        role,
                        org_id=org.id if org else None,
                        org_path=org.path if org else None,
                        subject=f"bench-{plan}-{role.value}-{i}",
                    )
                }
                for i in range(n)
            ]
        )

    def spread(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each request with a caller's token, callers taking turns."""
        count = max(len(requests), len(self.headers))
        return [
            {**requests[i % len(requests)], "headers": self.headers[i % len(self.headers)]}
            for i in range(count)
        ]


@dataclass
class Runner:
    stack: Stack
    folder: Path
    concurrency: int
    duration: float
    warmup: float
    say: Say
    settle_timeout: float = 600.0
    profile: str | None = None  # the measurement whose service py-spy samples
    out: Path | None = None  # where the profile goes
    generator: str = "httpx"  # "wrk" (bench/wrk.py) or "httpx" (bench/load.py)
    wrk_path: str | None = None

    async def settle(self) -> None:
        """Let the previous measurement's events drain, so none is measured in another's
        wake (writes leave the gateway's consumers a backlog)."""
        await wait_until_quiet(self.stack, self.say, self.settle_timeout, pause=0.3)

    async def http(
        self,
        key: str,
        name: str,
        service: str,
        requests: list[dict[str, Any]],
        *,
        once: bool = False,
    ) -> Result:
        """`requests` from the load generator; reads are checked to answer 2xx first.

        `service` names the process in `stack.processes` that answers (and that a
        `--profile` samples).
        """
        base = self.stack.base(service)
        await self.settle()
        if not once:
            await self._check(base, requests[0])
        sampler = None
        if self.profile == key:
            assert self.out is not None
            pid = self.stack.processes[service].process.pid
            raw = self.out / f"profile-{key}.txt"
            sampler = await profile.record(pid, self.warmup + self.duration, raw)
        cpu_before = self.stack.cpu_seconds()
        children_before = _children_cpu()
        stolen = StolenTime()
        started = time.perf_counter()
        if self.generator == "wrk":
            assert self.wrk_path is not None
            plan = self.folder / "plans" / f"{key}.tsv"
            wrk.write_plan(requests, plan)
            found = await wrk.generate(
                self.wrk_path,
                base,
                plan,
                concurrency=self.concurrency,
                warmup=self.warmup,
                duration=self.duration,
                once=once,
                log=self.folder / "wrk.log",
            )
        else:
            found = await self._httpx(key, base, requests, once)
        wall = time.perf_counter() - started
        if sampler is not None:
            await self._profiled(key, service, sampler)
        cpu_after = self.stack.cpu_seconds()
        # Cores each process kept busy over the whole run (warm-up included).
        found["cores_busy"] = {
            name: round((cpu_after[name] - cpu_before[name]) / wall, 2)
            for name in cpu_after
            if name in cpu_before and cpu_after[name] - cpu_before[name] > 0.05
        }
        found["cores_busy"][f"load generator ({self.generator})"] = round(
            (_children_cpu() - children_before) / wall, 2
        )
        found["cpu_stolen"] = stolen.share()
        failed = found["requests"] - found["ok"] + found["transport_errors"]
        result = Result(
            key,
            name,
            found["requests_per_s"],
            found["p50_ms"],
            found["p99_ms"],
            details={
                **found,
                "generator": self.generator,
                "failed": failed,
                "service": service,
                "requests_planned": len(requests),
            },
        )
        self.say(
            f"  {name}: {result.requests_per_s:,} req/s, p50 {result.p50_ms} ms, "
            f"p99 {result.p99_ms} ms" + (f", {failed} failed {found['statuses']}" if failed else "")
        )
        if found.get("plan_exhausted"):
            self.say(
                f"  {key}: every planned request was sent before the time was up "
                f"({len(requests):,}): the figures cover less than the duration"
            )
        return result

    async def _httpx(
        self, key: str, base: str, requests: list[dict[str, Any]], once: bool
    ) -> dict[str, Any]:
        """bench.load in a process of its own: the fallback where wrk is not installed."""
        spec = {
            "base_url": base,
            "concurrency": self.concurrency,
            "duration": self.duration,
            "warmup": self.warmup,
            "mode": "once" if once else "cycle",
            "requests": requests,
        }
        path = self.folder / "specs" / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(spec))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.load",
            str(path),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(
                process.communicate(), self.warmup + self.duration + GENERATOR_GRACE_SECONDS
            )
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        if process.returncode != 0:
            raise RuntimeError(f"load generator failed for {key}: {err.decode()[-2000:]}")
        found: dict[str, Any] = json.loads(out)
        return found

    async def _profiled(self, key: str, service: str, sampler: asyncio.subprocess.Process) -> None:
        await asyncio.wait_for(sampler.wait(), 60)
        assert self.out is not None
        raw = self.out / f"profile-{key}.txt"
        if not raw.exists():
            self.say(f"  py-spy wrote no profile (exit {sampler.returncode})")
            return
        summary = self.out / f"profile-{key}.md"
        summary.write_text(
            f"# Where {service} spends its CPU time: {key}\n\n{profile.summary(raw)}"
        )
        self.say(f"  {service} profiled: {summary} (collapsed stacks: {raw})")

    async def _check(self, base: str, request: dict[str, Any]) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            response = await client.request(
                request.get("method", "GET"),
                request["path"],
                params=request.get("params"),
                json=request.get("json"),
                headers=request.get("headers"),
            )
        if not response.is_success:
            raise RuntimeError(
                f"{request['path']} answered {response.status_code}: {response.text[:500]}"
            )


def _children_cpu() -> float:
    """CPU seconds of this process's finished children: the load generators."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ------------------------------------------------------------------------------ the plans


def member_lookups(stack: Stack, county: County, via_gateway: bool) -> list[dict[str, Any]]:
    """A county official looking up the county's members, one member number after another."""
    rnd = random.Random(8)
    numbers = rnd.sample(county.member_nos, min(len(county.member_nos), 2000))
    prefix = "/v1/membership" if via_gateway else "/v1"
    requests = [{"path": f"{prefix}/members/{number}"} for number in numbers]
    return Callers.of(stack, Role.county_admin, county.org).spread(requests)


def floor_requests(county: County, endpoint: str) -> list[dict[str, Any]]:
    """The member lookup's numbers, asked of a FastAPI floor (`bench/reference.py`)."""
    rnd = random.Random(8)
    numbers = rnd.sample(county.member_nos, min(len(county.member_nos), 2000))
    return [{"path": f"/{endpoint}/{number}"} for number in numbers]


def overviews(stack: Stack, org: OrgRef, role: Role) -> list[dict[str, Any]]:
    request = {"path": "/v1/dashboard/overview", "params": {"org_id": org.id}}
    return Callers.of(stack, role, org).spread([request])


def nearby_searches(stack: Stack, province: Province) -> list[dict[str, Any]]:
    """Members searching from near a village anywhere in the province, 15 minutes' walk."""
    rnd = random.Random(15)
    villages = province.villages
    requests = []
    for _ in range(2000):
        village = rnd.choice(villages)
        assert village.lon is not None and village.lat is not None
        requests.append(
            {
                "path": "/v1/stations/stations/nearby",
                "params": {
                    "lon": round(village.lon + rnd.uniform(-0.01, 0.01), 6),
                    "lat": round(village.lat + rnd.uniform(-0.01, 0.01), 6),
                    "minutes": 15,
                    "amenity": NEARBY_AMENITY,
                },
            }
        )
    return Callers.of(stack, Role.member, None).spread(requests)


def writes(stack: Stack, county: County, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    callers = Callers.of(stack, Role.county_admin, county.org)
    return [
        {**body, "headers": callers.headers[i % len(callers.headers)]}
        for i, body in enumerate(bodies)
    ]


def write_plan_size(concurrency: int, warmup: float, duration: float) -> int:
    """Writes to prepare: more than the generator can send in the time (~1,500/s here)."""
    return max(2000, int((warmup + duration) * 1500)) + concurrency


# ------------------------------------------------------------------------------ not HTTP load


async def event_latency(stack: Stack, county: County, duration: float, say: Say) -> Result:
    """From a station's opening (its POST answered, so committed) to the gateway's row for it.

    One write at a time, so each probe meets an idle pipeline: stations' relay, NATS,
    the gateway's consumer, its transaction. The gateway's database is polled every 2 ms.
    """
    village = county.villages[0]
    headers = Callers.of(stack, Role.county_admin, county.org, 1).headers[0]
    db = stack.database("gateway")
    latencies: list[float] = []
    deadline = time.perf_counter() + duration
    try:
        async with (
            db.engine.connect() as conn,
            httpx.AsyncClient(base_url=stack.base("stations"), timeout=30) as client,
        ):
            n = 0
            while time.perf_counter() < deadline or n < 5:
                n += 1
                assert village.lon is not None and village.lat is not None
                response = await client.post(
                    "/v1/stations",
                    headers=headers,
                    json={
                        "station_type": "outdoor_worker_station",
                        "name": f"{village.name}探针驿站{n}",
                        "host_org_id": village.id,
                        "lon": village.lon,
                        "lat": village.lat,
                        "amenities": [NEARBY_AMENITY],
                    },
                )
                committed = time.perf_counter()
                if response.status_code != 201:
                    raise RuntimeError(f"station not opened: {response.text[:500]}")
                station_id = response.json()["id"]
                while True:
                    found = await conn.scalar(
                        text("SELECT 1 FROM dash_stations WHERE station_id = :id"),
                        {"id": station_id},
                    )
                    await conn.rollback()  # a fresh snapshot for the next look
                    if found:
                        break
                    if time.perf_counter() - committed > 30:
                        raise TimeoutError("the gateway did not show a station within 30 s")
                    await asyncio.sleep(0.002)
                latencies.append((time.perf_counter() - committed) * 1000)
    finally:
        await db.dispose()
    figures = percentiles(latencies)
    seconds = sum(latencies) / 1000
    result = Result(
        "event_latency",
        "event latency: station opened → gateway read model",
        round(len(latencies) / seconds, 1) if seconds else None,
        figures["p50_ms"],
        figures["p99_ms"],
        unit="probes/s",
        details={"probes": len(latencies), **figures, "failed": 0},
    )
    say(f"  {result.name}: {len(latencies)} probes, p50 {result.p50_ms} ms, p99 {result.p99_ms} ms")
    return result


def roster_result(
    rows: int, seconds: float, cpu_seconds: float, stolen: float | None, say: Say
) -> Result:
    result = Result(
        "roster_import",
        f"roster import: {rows:,}-row xlsx, in-process",
        round(rows / seconds, 1),
        None,
        None,
        unit="rows/s",
        details={
            "rows": rows,
            "seconds": round(seconds, 2),
            # The harness's process does nothing else meanwhile: the import's own CPU.
            "cpu_seconds": round(cpu_seconds, 2),
            "cpu_stolen": stolen,
            "failed": 0,
        },
    )
    say(
        f"  {result.name}: {result.requests_per_s:,} rows/s ({seconds:.1f} s, "
        f"{cpu_seconds:.1f} s of CPU)"
    )
    return result


def with_ratios(results: list[Result]) -> list[Result]:
    """Each HTTP result's throughput as a share of the bare endpoint's (and granian's as a
    multiple of uvicorn's); targets judged."""
    bare = next((r for r in results if r.key == BARE), None)
    by_key = {r.key: r for r in results}
    for key, uvicorn_key in SERVER_COMPARISONS.items():
        granian, uvicorn = by_key.get(key), by_key.get(uvicorn_key)
        if granian is None:
            continue
        # The median of the pairs' ratios where there are pairs; else the two runs'.
        pairs = [
            (u, g) for u, g in granian.details.get("paired_per_s") or [] if u and g is not None
        ]
        if pairs:
            granian.details["ratio_to_uvicorn"] = round(
                statistics.median(g / u for u, g in pairs), 3
            )
        elif uvicorn and granian.requests_per_s and uvicorn.requests_per_s:
            granian.details["ratio_to_uvicorn"] = round(
                granian.requests_per_s / uvicorn.requests_per_s, 3
            )
    if bare is not None and bare.requests_per_s:
        bare.ratio_to_bare = 1.0
    for result in results:
        if (
            bare
            and bare.requests_per_s
            and result.unit == "req/s"
            and result.key != BARE
            and result.requests_per_s is not None
        ):
            # Against the bare endpoint measured just before it, where it was (see run.py).
            ceiling = result.details.get("bare_beside_per_s") or bare.requests_per_s
            result.ratio_to_bare = round(result.requests_per_s / ceiling, 3)
        result.judge()
    return results
