"""results.json and results.md: every measurement, the loading, the machine and the versions."""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.dataset import Loading, Sizes
from bench.measure import Result

PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "granian",
    "uvloop",
    "httptools",
    "pydantic",
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "nats-py",
    "httpx",
)
COLUMNS = ("measurement", "requests/s", "p50 ms", "p99 ms", "ratio to bare", "target", "met?")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def document(
    *,
    sizes: Sizes,
    loading: Loading,
    results: list[Result],
    database: str,
    nats_server: str,
    settings: dict[str, Any],
    started: datetime,
) -> dict[str, Any]:
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "started_at": started.isoformat(timespec="seconds"),
        "scale": sizes.scale,
        "sizes": asdict(sizes),
        "machine": machine(),
        "database": database,
        "nats_server": nats_server,
        "versions": versions(),
        "settings": settings,
        "loading": {
            "seconds": loading.seconds,
            "phases": [asdict(p) for p in loading.phases],
        },
        "measurements": [asdict(r) for r in results],
    }


def _loads(values: list[float] | None) -> str:
    return "?" if not values else "/".join(f"{x:.1f}" for x in values)


def _number(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _met(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "**no**")


def markdown(doc: dict[str, Any]) -> str:
    sizes = Sizes(**doc["sizes"])
    m, v, s = doc["machine"], doc["versions"], doc["settings"]
    lines = [
        "# Gonghui benchmark",
        "",
        f"- scale {doc['scale']}: {sizes.describe()}; a {sizes.roster_rows:,}-row roster file",
        f"- machine: {m['cores']} cores, {m['platform']}; load average (1, 5, 15 min) "
        f"{_loads(m.get('load_average_at_start'))} at the start, "
        f"{_loads(m['load_average_at_end'])} at the end",
        f"- database: {doc['database']}; NATS {doc['nats_server']}",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- load: {s.get('generator', 'httpx')} in one separate process, "
        f"{s['warmup']} s warm-up then {s['duration']} s per measurement; each service one "
        f"server process, database pool {s['pool_size']}+{s['max_overflow']}",
        *_servers(s.get("servers") or {}),
        f"- started {doc['started_at']}, finished {doc['generated_at']}; "
        f"loading took {doc['loading']['seconds']:,} s",
        *_busy_warning(m),
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join(["---", *["---:"] * 4, "---", "---"]) + "|",
    ]
    for r in doc["measurements"]:
        throughput = _number(r["requests_per_s"])
        if r["unit"] != "req/s" and r["requests_per_s"] is not None:
            throughput += f" {r['unit']}"
        lines.append(
            "| "
            + " | ".join(
                [
                    r["name"],
                    throughput,
                    _number(r["p50_ms"]),
                    _number(r["p99_ms"]),
                    _number(r["ratio_to_bare"], 3),
                    r["target"] or "—",
                    _met(r["met"]),
                ]
            )
            + " |"
        )
    lines += _comparisons(doc["measurements"])
    beside = [r for r in doc["measurements"] if r["details"].get("bare_beside_per_s")]
    if beside:
        lines += ["", "The bare endpoint, measured again just before each (its ratio's base):", ""]
        lines += [
            f"- {r['name']}: {_number(r['details']['bare_beside_per_s'])} req/s" for r in beside
        ]
    cut_short = [r for r in doc["measurements"] if r["details"].get("plan_exhausted")]
    if cut_short:
        lines += ["", "Write plans that ran out before the time was up (target not met):"]
        lines += [
            f"- {r['name']}: {r['details'].get('requests_planned')} planned" for r in cut_short
        ]
    failures = [r for r in doc["measurements"] if r["details"].get("failed")]
    if failures:
        lines += ["", "Requests that failed (counted in the figures, and the target not met):"]
        lines += [
            f"- {r['name']}: {r['details']['failed']} of {r['details'].get('requests')} "
            f"(statuses {r['details'].get('statuses')}, "
            f"transport errors {r['details'].get('transport_errors')})"
            for r in failures
        ]
    busy = [r for r in doc["measurements"] if r["details"].get("cores_busy")]
    if busy:
        lines += ["", "Cores each process kept busy during a measurement (CPU s / wall s):", ""]
        lines += [
            f"- {r['name']}: "
            + ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["details"]["cores_busy"].items()))
            for r in busy
        ]
    stolen = [r for r in doc["measurements"] if r["details"].get("cpu_stolen") is not None]
    if stolen:
        lines += [
            "",
            "The machine's CPU time its hypervisor gave to others during each measurement "
            "(the `st` of vmstat; a run with more of it is slower for that alone):",
            "",
        ]
        lines += [f"- {r['name']}: {r['details']['cpu_stolen']:.1%}" for r in stolen]
    imports = [r for r in doc["measurements"] if r["details"].get("cpu_seconds")]
    if imports:
        lines += [
            "",
            "The in-process import's own CPU (the harness's process, threads included):",
            "",
        ]
        lines += [
            f"- {r['name']}: {r['details']['cpu_seconds']:,.1f} s of CPU in "
            f"{r['details']['seconds']:,.1f} s, "
            f"{r['details']['rows'] / r['details']['cpu_seconds']:,.0f} rows a CPU second"
            for r in imports
        ]
    lines += [
        "",
        "## How the data was loaded",
        "",
        "| what | path | rows | seconds |",
        "|---|---|---:|---:|",
    ]
    for p in doc["loading"]["phases"]:
        lines.append(f"| {p['what']} | {p['path']} | {p['rows']:,} | {p['seconds']:,.1f} |")
    lines += [
        "",
        "Ratio to bare: the measurement's requests/s over the bare Starlette endpoint's, served "
        "and loaded the same way (the local ceiling); for the reads, over the bare endpoint "
        "measured again just before each (listed above), as a machine's speed can wander "
        "within a run. Targets are issue 8's (bench/measure.py); "
        "for enrolment and attendance, which it sets none for, the harness's proposal.",
        "",
    ]
    return "\n".join(lines)


def _servers(found: dict[str, dict[str, Any]]) -> list[str]:
    """One line per distinct server setting, naming the processes served that way."""
    groups: dict[str, list[str]] = {}
    for name, settings in found.items():
        if settings["server"].startswith("uvicorn"):
            access = "access log on" if settings.get("access_log") else "access log off"
            text = (
                f"{settings['server']}, loop {settings['loop']}, http {settings['http']}, "
                f"{settings['workers']} worker(s), {access}"
            )
        else:
            text = (
                f"{settings['server']}, interface {settings['interface']}, loop "
                f"{settings['loop']}, http {settings['http']}, {settings['workers']} worker(s)"
            )
        groups.setdefault(text, []).append(name)
    return [f"- served by {text}: {', '.join(names)}" for text, names in groups.items()]


def _comparisons(measurements: list[dict[str, Any]]) -> list[str]:
    """The server comparison's verdict, in words."""
    lines = []
    for r in measurements:
        ratio = r["details"].get("ratio_to_uvicorn")
        if ratio is None:
            continue
        verdict = "switching pays" if r["met"] else "stay on uvicorn"
        pairs = r["details"].get("paired_per_s") or []
        how = (
            f" (the median of {len(pairs)} back-to-back pairs, uvicorn / granian req/s: "
            + ", ".join(f"{_number(u)} / {_number(g)}" for u, g in pairs)
            + ")"
            if pairs
            else ""
        )
        lines.append(
            f"- {r['name']}: {ratio:.3f} × uvicorn's throughput{how} (switch at ≥ 1.15): {verdict}"
        )
    return ["", "Server comparison:", "", *lines] if lines else []


def _busy_warning(m: dict[str, Any]) -> list[str]:
    """Other work on the machine skews every figure: say so where the figures are read."""
    # The start only: by the end the run's own processes count too.
    at_start = (m.get("load_average_at_start") or [0.0])[0]
    if m["cores"] and at_start > m["cores"] / 2:
        return [
            "",
            f"**The machine was busy with other work when the run started (load average "
            f"{at_start:.1f} on {m['cores']} cores): the figures are lower and noisier than "
            "this code can do.**",
        ]
    return []


def write(out: Path, doc: dict[str, Any]) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "results.json", out / "results.md"
    json_path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    md_path.write_text(markdown(doc))
    return json_path, md_path
