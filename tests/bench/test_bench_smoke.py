"""`make bench` at a tiny scale: the harness runs end to end and writes a complete table.

Speeds are not checked (a shared test machine says nothing about them), only that every
measurement is there with numbers where it has them, in both results.json and results.md.
PostgreSQL when TEST_POSTGRES_URL is set, else SQLite, so a fresh machine runs it too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MEASUREMENTS = {
    "bare": "bare Starlette JSON endpoint",
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
# Every HTTP measurement has all three figures; the event latency no ratio to bare (it is
# one write at a time), the roster import only its rows per second.
NOT_APPLICABLE = {
    "event_latency": {"ratio_to_bare"},
    "roster_import": {"p50_ms", "p99_ms", "ratio_to_bare"},
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
    found = {m["key"]: m for m in doc["measurements"]}
    assert set(found) == set(MEASUREMENTS)
    for key, measurement in found.items():
        assert measurement["name"].startswith(MEASUREMENTS[key])
        for figure in ("requests_per_s", "p50_ms", "p99_ms", "ratio_to_bare"):
            value = measurement[figure]
            if figure in NOT_APPLICABLE.get(key, set()):
                assert value is None, (key, figure)
            else:
                assert isinstance(value, int | float) and value >= 0, (key, figure, value)
        assert measurement["details"]["failed"] == 0, (key, measurement["details"])
        if key != "bare":
            assert measurement["target"] and isinstance(measurement["met"], bool), key

    table = (out / "results.md").read_text().splitlines()
    header = table.index(COLUMNS)
    rows = table[header + 2 : header + 2 + len(MEASUREMENTS)]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == [
        found[key]["name"] for key in MEASUREMENTS
    ]
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert len(cells) == 7, row
        assert cells[1].split()[0].replace(",", "").replace(".", "").isdigit(), row
