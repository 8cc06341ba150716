"""The load generator: a bounded async httpx client, run as its own process by the harness.

    .venv/bin/python -m bench.load SPEC.json

The spec (JSON) names a base URL, the common headers, the requests (method, path, query
parameters, JSON body, headers of their own) and how to use them: `cycle` repeats the list
for reads, `once` sends each request once for writes (stopping early when the list runs
out). `concurrency` clients send back to back over one pooled client for `warmup` seconds
(not counted) and then `duration` seconds; nothing is sent after that, and every request
has a timeout, so a run ends within `warmup + duration + timeout` seconds. It prints one
JSON object: requests counted, requests/s, p50/p90/p99/max latency in ms, statuses and
transport errors.

A separate process keeps the generator's own CPU off the server's event loop; on a small
machine they still share the cores, which is why every figure is also given as a ratio to
the bare endpoint measured the same way.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

REQUEST_TIMEOUT_SECONDS = 30.0


def percentiles(latencies_ms: list[float]) -> dict[str, float | None]:
    """p50, p90, p99 and the maximum of `latencies_ms` (None when there are none)."""
    ordered = sorted(latencies_ms)
    if not ordered:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    if len(ordered) == 1:
        cuts = [ordered[0]] * 99
    else:
        cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49], 2),
        "p90_ms": round(cuts[89], 2),
        "p99_ms": round(cuts[98], 2),
        "max_ms": round(ordered[-1], 2),
    }


def _requests(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    requests: list[dict[str, Any]] = spec["requests"]
    return iter(requests) if spec.get("mode") == "once" else itertools.cycle(requests)


async def generate(spec: dict[str, Any]) -> dict[str, Any]:
    """Send the spec's requests for its warm-up and duration; the counted answers' figures."""
    concurrency = int(spec["concurrency"])
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    pending = _requests(spec)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    transport_errors = 0
    started = time.perf_counter()
    measure_from = started + float(spec.get("warmup", 0.0))
    stop_at = measure_from + float(spec["duration"])

    async with httpx.AsyncClient(
        base_url=spec["base_url"],
        headers=spec.get("headers", {}),
        limits=limits,
        timeout=REQUEST_TIMEOUT_SECONDS,
    ) as client:

        async def client_loop() -> None:
            nonlocal transport_errors
            while (sent_at := time.perf_counter()) < stop_at:
                request = next(pending, None)
                if request is None:
                    return
                try:
                    response = await client.request(
                        request.get("method", "GET"),
                        request["path"],
                        params=request.get("params"),
                        json=request.get("json"),
                        headers=request.get("headers"),
                    )
                except httpx.HTTPError:
                    transport_errors += 1
                    continue
                if sent_at >= measure_from:
                    latencies.append((time.perf_counter() - sent_at) * 1000)
                    key = str(response.status_code)
                    statuses[key] = statuses.get(key, 0) + 1

        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    measured = max(min(time.perf_counter(), stop_at) - measure_from, 1e-9)
    ok = sum(n for status, n in statuses.items() if status.startswith("2"))
    return {
        "requests": len(latencies),
        "ok": ok,
        "seconds": round(measured, 3),
        "requests_per_s": round(len(latencies) / measured, 1),
        **percentiles(latencies),
        "statuses": statuses,
        "transport_errors": transport_errors,
        "concurrency": concurrency,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text())
    try:
        import uvloop
    except ImportError:  # the standard loop only costs the generator some speed
        result = asyncio.run(generate(spec))
    else:
        result = uvloop.run(generate(spec))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
