"""`make bench` at a tiny scale: the harness runs end to end and writes a complete table.

Speeds are not checked (a shared test machine says nothing about them), only that every
measurement is there with numbers where it has them, in both results.json and results.md.
PostgreSQL when TEST_POSTGRES_URL is set, else SQLite, so a fresh machine runs it too.
The load generator is wrk where it is installed (else the httpx client: both are tested
on their own in test_generators.py); the granian comparison runs where granian is
installed, the relay drain where bench/drain.py exists.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from bench.measure import SERVER_PAIRS

REPO = Path(__file__).resolve().parents[2]
MEASUREMENTS = {
    "bare": "bare Starlette JSON endpoint",
    "fastapi_minimal": "FastAPI floor: path parameter, pydantic answer",
    "fastapi_lookup": "FastAPI floor: the same, plus one asyncpg lookup",
    "member_gateway": "GET /v1/members/{member_no} through the gateway",
    "member_direct": "GET /v1/members/{member_no} on membership directly",
    "dashboard_province": "dashboard overview: province",
    "dashboard_county": "dashboard overview: county",
    "dashboard_village": "dashboard overview: village",
    "nearby": "nearby stations, 15 min walk",
    "enrolment": "POST enrolment",
    "attendance": "POST attendance check-in",
    "event_latency": "event latency",
    "roster_import": "roster import",
}
# Measured for reference, without a target; the lookup floor reads PostgreSQL with asyncpg.
FLOORS = {"fastapi_minimal", "fastapi_lookup"}
POSTGRES_ONLY = {"fastapi_lookup"}
GRANIAN = {"member_direct_granian": "GET /v1/members/{member_no} on membership directly, under"}
DRAIN = {"relay_drain": "outbox relay drain"}
# Every HTTP measurement has all three figures; the event latency no ratio to bare (it is
# one write at a time), the roster import only its rows per second.
NOT_APPLICABLE = {
    "event_latency": {"ratio_to_bare"},
    "relay_drain": {"p50_ms", "p99_ms", "ratio_to_bare"},
    "roster_import": {"p50_ms", "p99_ms", "ratio_to_bare"},
}
# A write's answers can take longer than this run's one measured second on a busy machine;
# wrk counts only requests answered within the duration, so those may have no latency.
SLOW_WRITES = {"enrolment", "attendance"}


def expected_measurements(backend: str) -> dict[str, str]:
    """In the table's order: granian's row after uvicorn's, the drain before the import."""
    expected = {}
    for key, name in MEASUREMENTS.items():
        if key in POSTGRES_ONLY and backend != "postgres":
            continue
        if key == "roster_import" and (REPO / "bench" / "drain.py").exists():
            expected |= DRAIN
        expected[key] = name
        if key == "member_direct" and importlib.util.find_spec("granian"):
            expected |= GRANIAN
    return expected


# The reads whose ratio has a bare endpoint of its own, measured just before them.
READS_BESIDE_BARE = {
    *FLOORS,
    "member_gateway",
    "member_direct",
    "dashboard_province",
    "dashboard_county",
    "dashboard_village",
    "nearby",
}
COLUMNS = "| measurement | requests/s | p50 ms | p99 ms | ratio to bare | target | met? |"


def test_a_tiny_run_writes_every_measurement(tmp_path: Path, nats_url: str) -> None:
    backend = "postgres" if os.environ.get("TEST_POSTGRES_URL") else "sqlite"
    out = tmp_path / "results"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            *("--scale", "0.0002", "--duration", "1", "--warmup", "0.2"),
            *("--concurrency", "4", "--backend", backend, "--out", str(out)),
            *("--stations", "40"),  # more than the scale's 20: the nearby target's override
        ],
        cwd=REPO,
        env=os.environ | {"NATS_URL": nats_url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-5000:]

    doc = json.loads((out / "results.json").read_text())
    assert doc["machine"]["cores"] == os.cpu_count()
    assert doc["database"].startswith("PostgreSQL" if backend == "postgres" else "SQLite")
    assert {"python", "fastapi", "sqlalchemy", "uvicorn"} <= set(doc["versions"])
    assert doc["loading"]["phases"] and doc["sizes"]["members"] == 200
    assert doc["sizes"]["stations"] == 40
    generator = "wrk" if shutil.which("wrk") else "httpx"
    assert doc["settings"]["generator"].startswith(generator)
    # How each process was served: uvicorn's loop and HTTP parser are on the record.
    servers = doc["settings"]["servers"]
    assert {"membership", "training", "stations", "gateway", "bare"} <= set(servers)
    assert all(servers[name]["loop"] and servers[name]["http"] for name in servers)
    expected = expected_measurements(backend)
    found = {m["key"]: m for m in doc["measurements"]}
    assert list(found) == list(expected)
    for key, measurement in found.items():
        assert measurement["name"].startswith(expected[key])
        unanswered = key in SLOW_WRITES and measurement["details"].get("requests") == 0
        for figure in ("requests_per_s", "p50_ms", "p99_ms", "ratio_to_bare"):
            value = measurement[figure]
            latency = figure in ("p50_ms", "p99_ms")
            if figure in NOT_APPLICABLE.get(key, set()) or (unanswered and latency):
                assert value is None, (key, figure)
            else:
                assert isinstance(value, int | float) and value >= 0, (key, figure, value)
        assert measurement["details"]["failed"] == 0, (key, measurement["details"])
        if key in found.keys() - {"bare", "event_latency", "relay_drain", "roster_import"}:
            assert measurement["details"]["generator"] == generator, key
        if key in FLOORS:
            assert measurement["target"] == "" and measurement["met"] is None, key
        elif key != "bare":
            assert measurement["target"] and isinstance(measurement["met"], bool), key
    for key in ("bare", "fastapi_minimal", "member_direct"):  # reads answer within the second
        assert found[key]["details"]["requests"] > 0, key
    if "member_direct_granian" in found:
        details = found["member_direct_granian"]["details"]
        pairs = details["paired_per_s"]
        assert len(pairs) == SERVER_PAIRS and all(u > 0 and g > 0 for u, g in pairs)
        assert details["ratio_to_uvicorn"] == round(statistics.median(g / u for u, g in pairs), 3)
    # Each read's ratio is to the bare endpoint measured again just before it.
    reads = [key for key in found if key in READS_BESIDE_BARE]
    assert reads, "no read measured"
    for key in reads:
        measurement = found[key]
        beside = measurement["details"]["bare_beside_per_s"]
        assert beside > 0, key
        assert measurement["ratio_to_bare"] == round(measurement["requests_per_s"] / beside, 3)

    # Each load says what share of the machine its hypervisor took meanwhile (Linux).
    for key, measurement in found.items():
        if key not in {"event_latency", "relay_drain"}:
            stolen = measurement["details"]["cpu_stolen"]
            assert isinstance(stolen, float) and 0 <= stolen <= 1, (key, stolen)
    assert found["roster_import"]["details"]["cpu_seconds"] > 0

    table = (out / "results.md").read_text().splitlines()
    header = table.index(COLUMNS)
    rows = table[header + 2 : header + 2 + len(expected)]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == [
        found[key]["name"] for key in expected
    ]
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert len(cells) == 7, row
        assert cells[1].split()[0].replace(",", "").replace(".", "").isdigit(), row
    assert any(line.startswith("- served by uvicorn") for line in table)
    assert any(line.endswith("rows a CPU second") for line in table)
