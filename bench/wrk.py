"""wrk as the load generator: the plan file, the command line, its figures read back.

wrk (Debian's `wrk`, C and LuaJIT) keeps up with a server on this machine where a Python
client cannot: the httpx generator topped out near 570 requests/s on the bare endpoint
that wrk drives at ~17,500. So it is used whenever it is on PATH (`--generator auto`);
`bench.load` remains for machines without it.

Every measurement's requests go into a plan file that bench/wrk_plan.lua reads and sends
in turn (see there for the format and the `cycle`/`once` modes). One wrk thread (`-t1`)
holds all the connections: on 2 cores the other core is the server's. The warm-up is a
wrk run of its own whose figures are dropped; the measured run continues the plan where
the warm-up stopped, so a write plan never sends a request twice.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

SCRIPT = Path(__file__).with_name("wrk_plan.lua")
# As long as the httpx generator's per-request timeout: a slow dashboard is measured, not
# counted as a timeout (wrk's default is 2 s).
TIMEOUT_SECONDS = 30
RESULT_MARK = "BENCH-RESULT "


def find() -> str | None:
    return shutil.which("wrk")


def version(path: str) -> str:
    """`wrk -v` prints "wrk debian/4.1.0-3+b2 [epoll] Copyright ..." (and exits 1)."""
    run = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=10)
    words = (run.stdout or run.stderr).split()
    return words[1] if len(words) > 1 and words[0] == "wrk" else "unknown"


def _field(value: str, what: str) -> str:
    if "\t" in value or "\n" in value or "\r" in value:
        raise ValueError(f"a request's {what} holds a tab or a line break: {value[:80]!r}")
    return value


def plan_line(request: dict[str, Any]) -> str:
    """One request (the harness's dict: method, path, params, json, headers) as a plan line."""
    path = request["path"]
    if request.get("params"):
        path += "?" + urlencode(request["params"])
    headers = dict(request.get("headers") or {})
    body = ""
    if request.get("json") is not None:
        # Compact JSON escapes every control character, so the body is one field.
        body = json.dumps(request["json"], separators=(",", ":"), ensure_ascii=False)
        headers.setdefault("Content-Type", "application/json")
    fields = [
        _field(request.get("method", "GET"), "method"),
        _field(path, "path"),
        _field(body, "body"),
        *(_field(f"{name}: {value}", "header") for name, value in headers.items()),
    ]
    return "\t".join(fields)


def write_plan(requests: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(plan_line(r) + "\n" for r in requests), encoding="utf-8")


def whole_seconds(seconds: float) -> int:
    """wrk sleeps whole seconds (`-d 0.5s` would send nothing): round up, at least one."""
    return max(1, math.ceil(seconds))


async def _run_once(
    wrk: str,
    base_url: str,
    plan: Path,
    *,
    concurrency: int,
    seconds: int,
    once: bool,
    start: int,
    log: Path,
) -> dict[str, Any]:
    env = os.environ | {
        "BENCH_PLAN": str(plan),
        "BENCH_PLAN_MODE": "once" if once else "cycle",
        "BENCH_PLAN_START": str(start),
    }
    argv = [
        wrk,
        "-t1",
        f"-c{concurrency}",
        f"-d{seconds}s",
        f"--timeout={TIMEOUT_SECONDS}s",
        "-s",
        str(SCRIPT),
        base_url,
    ]
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), seconds + TIMEOUT_SECONDS + 30)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = out.decode(errors="replace")
    with log.open("a") as file:
        file.write(f"$ {' '.join(argv)}  (start {start})\n{text}{err.decode(errors='replace')}\n")
    found = [line for line in text.splitlines() if line.startswith(RESULT_MARK)]
    if process.returncode != 0 or not found:
        raise RuntimeError(
            f"wrk failed (exit {process.returncode}): {err.decode(errors='replace')[-2000:]}"
        )
    result: dict[str, Any] = json.loads(found[-1].removeprefix(RESULT_MARK))
    return result


async def generate(
    wrk: str,
    base_url: str,
    plan: Path,
    *,
    concurrency: int,
    warmup: float,
    duration: float,
    once: bool,
    log: Path,
) -> dict[str, Any]:
    """A warm-up run (dropped), then the measured one; figures as `bench.load` gives them."""
    start = 0
    if warmup > 0:
        warm = await _run_once(
            wrk,
            base_url,
            plan,
            concurrency=concurrency,
            seconds=whole_seconds(warmup),
            once=once,
            start=0,
            log=log,
        )
        start = int(warm["sent"])
    seconds = whole_seconds(duration)
    raw = await _run_once(
        wrk,
        base_url,
        plan,
        concurrency=concurrency,
        seconds=seconds,
        once=once,
        start=start,
        log=log,
    )
    return figures(raw, concurrency, once=once, warmup_sent=start)


def figures(
    raw: dict[str, Any], concurrency: int, *, once: bool, warmup_sent: int = 0
) -> dict[str, Any]:
    """wrk's summary in the keys the harness reads (`bench.load.generate`'s)."""
    errors = raw["errors"]
    # After a once-plan ran out, wrk's last few requests went to /readyz: not measured.
    requests = max(int(raw["requests"]) - int(raw.get("after_plan", 0)), 0)
    seconds = max(raw["duration_us"] / 1e6, 1e-9)
    if once and raw.get("statuses"):
        statuses = {str(k): int(v) for k, v in raw["statuses"].items()}
        ok = sum(n for status, n in statuses.items() if status.startswith("2"))
        ok = min(ok, requests)
    else:
        # Reads: wrk counts statuses of 400 and above; the rest answered.
        refused = int(errors["status"])
        statuses = {"below 400": requests - refused, "400 and above": refused}
        ok = requests - refused
    return {
        "requests": requests,
        "ok": ok,
        "seconds": round(seconds, 3),
        "requests_per_s": round(requests / seconds, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2) if requests else None,
        "p90_ms": round(raw["p90_us"] / 1000, 2) if requests else None,
        "p99_ms": round(raw["p99_us"] / 1000, 2) if requests else None,
        "max_ms": round(raw["max_us"] / 1000, 2) if requests else None,
        "statuses": statuses,
        "transport_errors": sum(int(errors[k]) for k in ("connect", "read", "write", "timeout")),
        "concurrency": concurrency,
        "plan_exhausted": bool(raw.get("exhausted")),
        "warmup_requests": warmup_sent,
    }
