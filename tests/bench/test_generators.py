"""The load generators against a recording HTTP server: what they send, and what they count.

wrk (bench/wrk.py with bench/wrk_plan.lua) must send a write plan's requests at most once
each, across its warm-up and measured runs, with their methods, bodies and headers, and
say when the plan ran out; a read plan cycles. The httpx generator (bench/load.py, the
fallback) is run the same way. No speed is asserted.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench import wrk

REPO = Path(__file__).resolve().parents[2]
needs_wrk = pytest.mark.skipif(wrk.find() is None, reason="wrk is not installed")


@dataclass
class Seen:
    """Every request the server answered: (method, target, body, authorization)."""

    requests: list[tuple[str, str, str, str]] = field(default_factory=list)


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Seen) -> None:
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            method, target, _ = line.decode().split(" ", 2)
            headers = {}
            while (header := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = header.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", 0)))
            seen.requests.append((method, target, body.decode(), headers.get("authorization", "")))
            status = b"201 Created" if method == "POST" else b"200 OK"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


@pytest.fixture
def server() -> Iterator[tuple[str, Seen]]:
    """A plain HTTP/1.1 server on loopback, in a thread of its own, answering 201 to POST."""
    seen = Seen()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    port: list[int] = []

    async def main() -> None:
        srv = await asyncio.start_server(lambda r, w: _serve(r, w, seen), "127.0.0.1", 0)
        port.append(srv.sockets[0].getsockname()[1])
        started.set()
        async with srv:
            await srv.serve_forever()

    task = loop.create_task(main())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    assert started.wait(10)
    yield f"http://127.0.0.1:{port[0]}", seen

    async def stop() -> None:
        # The server and every connection it still holds (wrk keeps them alive): each
        # closes its socket while the loop runs, not when the loop is gone.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for pending in tasks:
            pending.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    assert task.done()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def writes(n: int) -> list[dict[str, object]]:
    return [
        {
            "method": "POST",
            "path": f"/v1/sessions/s{i % 3}/attendance",
            "json": {"enrolment_id": f"e{i}", "day": "2026-11-27", "note": "签到\t"},
            "headers": {"Authorization": f"Bearer caller-{i % 5}"},
        }
        for i in range(n)
    ]


@needs_wrk
def test_wrk_sends_each_write_once_and_says_when_the_plan_ran_out(
    server: tuple[str, Seen], tmp_path: Path
) -> None:
    base, seen = server
    planned = writes(300)
    plan = tmp_path / "writes.tsv"
    wrk.write_plan(planned, plan)
    found = asyncio.run(
        wrk.generate(
            str(wrk.find()),
            base,
            plan,
            concurrency=4,
            warmup=1,
            duration=1,
            once=True,
            log=tmp_path / "wrk.log",
        )
    )

    bodies = Counter(body for method, _, body, _ in seen.requests if method == "POST")
    assert max(bodies.values()) == 1, bodies.most_common(3)
    expected = {json.dumps(r["json"], separators=(",", ":"), ensure_ascii=False) for r in planned}
    assert set(bodies) <= expected
    # wrk asks for one request before each run to inspect it: that line is never sent.
    assert len(bodies) >= len(planned) - 2
    assert found["plan_exhausted"] is True
    assert found["requests"] == found["ok"] == found["statuses"].get("201", 0)
    assert found["warmup_requests"] > 0
    # Every planned request went with its own caller's token and the JSON content type. A
    # connection that asked for one more after the plan ran out (a busy machine's timing)
    # got /readyz, which carries none and is not counted.
    planned_auth = {auth for _, target, _, auth in seen.requests if target != "/readyz"}
    assert planned_auth == {f"Bearer caller-{i}" for i in range(5)}


@needs_wrk
def test_wrk_cycles_a_read_plan_with_its_query_strings(
    server: tuple[str, Seen], tmp_path: Path
) -> None:
    base, seen = server
    reads = [
        {"path": "/v1/stations/nearby", "params": {"lon": 99.1 + i, "amenity": "饮用水"}}
        for i in range(3)
    ]
    plan = tmp_path / "reads.tsv"
    wrk.write_plan(reads, plan)
    found = asyncio.run(
        wrk.generate(
            str(wrk.find()),
            base,
            plan,
            concurrency=2,
            warmup=0,
            duration=1,
            once=False,
            log=tmp_path / "wrk.log",
        )
    )
    targets = Counter(target for _, target, _, _ in seen.requests)
    assert len(targets) == 3 and min(targets.values()) > 1  # cycled, not sent once
    assert "/v1/stations/nearby?lon=99.1&amenity=%E9%A5%AE%E7%94%A8%E6%B0%B4" in targets
    assert found["requests"] > 0 and found["ok"] == found["requests"]
    assert found["plan_exhausted"] is False
    assert found["p50_ms"] is not None and found["p99_ms"] >= found["p50_ms"]


def test_a_plan_line_refuses_a_field_that_would_split_it() -> None:
    with pytest.raises(ValueError, match="tab or a line break"):
        wrk.plan_line({"path": "/x", "headers": {"X-Evil": "a\nb"}})


def test_the_httpx_generator_sends_each_write_once(
    server: tuple[str, Seen], tmp_path: Path
) -> None:
    """The fallback where wrk is missing: `python -m bench.load SPEC`."""
    base, seen = server
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "base_url": base,
                "concurrency": 2,
                "duration": 0.5,
                "warmup": 0.1,
                "mode": "once",
                "requests": writes(40),
            }
        )
    )
    run = subprocess.run(
        [sys.executable, "-m", "bench.load", str(spec)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    found = json.loads(run.stdout)
    bodies = Counter(body for _, _, body, _ in seen.requests)
    assert len(bodies) == 40 and max(bodies.values()) == 1
    assert found["ok"] == found["requests"] and found["transport_errors"] == 0
