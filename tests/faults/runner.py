"""The fault suite: start everything, drive load, break things on a schedule, then check.

One phase per fault, one after the other: load on the fault's own org for `before`
seconds, the fault (down for `down` seconds), then load for `after` seconds more while
recovery is measured. Recovery is the time from the end of the fault until a probe (one
admission, one enrolment with attendance, one visit, through the gateway) is acknowledged
and the dashboard shows it, and everything acknowledged before it, for the fault's org.

    python -m tests.faults                      # all faults, PostgreSQL if TEST_POSTGRES_URL
    python -m tests.faults --faults nats_kill,service_kill --backend sqlite
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.faults import faults as fault_kinds
from tests.faults.faults import Injected
from tests.faults.harness import FaultPlatform, running_platform
from tests.faults.load import Load, Write, acked_figures, dashboard_figures
from tests.faults.metrics import Key, MetricsSampler, difference, total
from tests.faults.report import PhaseRow, Report, render
from tests.faults.verify import (
    Databases,
    Findings,
    Quiescence,
    Window,
    dashboard_of,
    explain_unapplied,
    figures_off,
    group_by_phase,
    judge_bus,
    judge_writes,
    poison_dead_lettered,
    quiesce,
    service_figures,
    snapshot,
)

log = logging.getLogger(__name__)

BASELINE = "baseline"  # a phase with load and no fault: the reference row


@dataclass
class RunConfig:
    backend: str
    faults: list[str]
    folder: Path
    rate: float = 10.0  # flows started per second (a flow is one to three writes)
    before: float = 3.0
    after: float = 5.0
    down: float = 2.0
    max_flows: int = 400  # per phase
    # Membership is killed while its relay publishes a roster import of `backlog` workers.
    killed_service: str = "membership"
    backlog: int = 40
    recovery_timeout: float = 30.0
    settle_timeout: float = 60.0
    # Wait for deliveries to killed processes to come back (up to the consumers' ack wait),
    # so the inbox's catches are counted.
    redeliveries: bool = True
    # Settle after every fault (each judged alone), or only after the last (shorter: what
    # one fault leaves in flight is then counted in the next one's window).
    settle_between: bool = True
    report_path: Path | None = None


@dataclass
class Phase:
    name: str
    fault: str
    injected: Injected
    metrics_before: dict[Key, float]
    started_at: datetime
    recovery: float | None = None
    settle: Quiescence | None = None


async def measure_recovery(
    load: Load, phase: str, since: float, timeout: float, notes: dict[str, Any]
) -> float | None:
    """Seconds from `since` until a probe is acknowledged and the dashboard shows it and
    everything acknowledged before it; None if that does not happen within `timeout`
    (and `notes` says what was missing)."""
    deadline = since + timeout
    probe = await load.probe(phase)
    if not all(write.acked for write in probe):
        notes["probe_failed"] = [
            (w.kind, w.outcome, w.error or w.status) for w in probe if not w.acked
        ]
        return None
    # Where the time went: the probe acknowledged, then each figure caught up.
    parts = notes["recovery_parts"] = {"probe_acked": round(time.monotonic() - since, 1)}
    want = acked_figures([w for w in load.ledger if w.phase == phase])
    org = load.world.phases[phase].org["id"]
    shown: dict[str, int] | None = None
    while time.monotonic() < deadline:
        figures = await load.dashboard(org)
        if figures is not None:
            shown = dashboard_figures(figures)
            for key, count in want.items():
                if shown[key] >= count:
                    parts.setdefault(key, round(time.monotonic() - since, 1))
            if all(shown[key] >= count for key, count in want.items()):
                return time.monotonic() - since
        await asyncio.sleep(0.1)
    notes["dashboard_behind"] = {"want": want, "shown": shown}
    return None


async def watch_readiness(platform: FaultPlatform, stop: asyncio.Event) -> dict[str, str]:
    """What each service's `/readyz` said while the fault lasted, if not always "ready":
    "down" (no answer) or the checks it failed."""
    seen: dict[str, set[str]] = {name: set() for name in platform.services}
    async with httpx.AsyncClient(timeout=1.0) as client:
        while not stop.is_set():
            for name, service in platform.services.items():
                try:
                    response = await client.get(f"{service.base}/readyz")
                except httpx.HTTPError:
                    seen[name].add("down")
                    continue
                if response.status_code != 200:
                    try:
                        checks = response.json().get("checks", {})
                    except ValueError:
                        checks = {}
                    failing = sorted(k for k, v in checks.items() if v != "ok")
                    seen[name].add(f"{response.status_code} " + ", ".join(failing))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.3)
    return {name: "; ".join(sorted(states)) for name, states in seen.items() if states}


async def inject(platform: FaultPlatform, load: Load, fault: str, config: RunConfig) -> Injected:
    if fault == BASELINE:
        injected = Injected(BASELINE, "nothing")
        injected.begin()
        injected.end()
        return injected
    if fault == "nats_kill":
        return await fault_kinds.nats_kill(platform, config.down)
    if fault == "service_kill":
        backlog = None
        if config.killed_service == "membership":  # the one with a bulk write: an import
            township = load.world.township["id"]
            backlog = fault_kinds.Backlog(
                functools.partial(load.import_roster, township, config.backlog),
                f"{platform.root}.membership.application.submitted.v1",
                "org_id",
                township,
            )
        return await fault_kinds.service_kill(platform, config.killed_service, config.down, backlog)
    if fault == "postgres_outage":
        return await fault_kinds.postgres_outage(platform, config.down)
    if fault == "poison":
        return await fault_kinds.poison(platform)
    raise ValueError(f"unknown fault {fault!r}")


async def run_phase(
    platform: FaultPlatform, load: Load, sampler: MetricsSampler, fault: str, config: RunConfig
) -> Phase:
    stop = asyncio.Event()
    await sampler.scrape()
    before, started_at = sampler.totals(), datetime.now(UTC)
    driving = asyncio.create_task(
        load.run(fault, stop, rate=config.rate, max_flows=config.max_flows)
    )
    recovered = asyncio.Event()
    try:
        await asyncio.sleep(config.before)
        log.info("%s: injecting", fault)
        readiness = asyncio.create_task(watch_readiness(platform, recovered))
        injected = await inject(platform, load, fault, config)
        log.info(
            "%s: over after %.1f s; measuring recovery", fault, injected.ended - injected.began
        )
        phase = Phase(fault, fault, injected, before, started_at)
        recovering = asyncio.create_task(
            measure_recovery(load, fault, injected.ended, config.recovery_timeout, injected.notes)
        )
        await asyncio.sleep(config.after)
        # Load goes on while recovery is still being measured (bounded by its timeout).
        phase.recovery = await recovering
        recovered.set()
        if not_ready := await readiness:
            injected.notes["readyz"] = not_ready
    finally:
        recovered.set()
        stop.set()
        await driving
    log.info("phase %s done: recovery %s", fault, phase.recovery)
    return phase


def rows(
    phases: list[Phase],
    ledger: list[Write],
    findings: Findings,
    off: dict[str, int],
    final: dict[Key, float],
    poison_caught: int,
) -> list[PhaseRow]:
    by_phase = group_by_phase(ledger)
    result = []
    for n, phase in enumerate(phases):
        after = phases[n + 1].metrics_before if n + 1 < len(phases) else final
        delta = difference(after, phase.metrics_before)
        writes = by_phase.get(phase.name, [])
        notes = dict(phase.injected.notes)
        if phase.settle is not None:
            notes["settled_in"] = phase.settle.seconds
            if not phase.settle.reached:
                notes["unsettled"] = phase.settle
        poison = None
        if phase.fault == "poison":
            poison = (int(notes.pop("published")), poison_caught)
        took = sorted(w.finished - w.started for w in writes if w.acked and w.finished)
        if took:
            notes["write_seconds_p50_p95"] = (
                round(took[len(took) // 2], 2),
                round(took[int(len(took) * 0.95)], 2),
            )
        if lags := sorted(findings.dashboard_lag.get(phase.name, [])):
            notes["event_to_dashboard_p50_max"] = (
                round(lags[len(lags) // 2], 2),
                round(lags[-1], 2),
            )
        failures = int(total(delta, "gonghui_consumer_failures_total"))
        if failures:  # handler failures, retried with the consumers' back-off
            notes["consumer_failures"] = failures
        retried: Counter[str] = sum((w.retried for w in writes), Counter())
        if retried:
            notes["retried"] = dict(retried.most_common())
        for outcome in ("refused", "gave_up"):
            # By the last answer seen: a code, an HTTP status, or a transport error.
            why = Counter(w.error or str(w.status) for w in writes if w.outcome == outcome)
            if why:
                notes[outcome] = dict(why)
        if findings.applied_unacked[phase.name]:
            notes["applied_unacked"] = findings.applied_unacked[phase.name]
        result.append(
            PhaseRow(
                fault=phase.fault,
                target=phase.injected.target,
                sent=len(writes),
                acknowledged=sum(w.acked for w in writes),
                lost=findings.lost(phase.name),
                duplicated=findings.duplicated_writes[phase.name],
                figures_off=off.get(phase.name, 0),
                dedup_outbox=int(total(delta, "gonghui_outbox_duplicates_total")),
                dedup_inbox=int(total(delta, "gonghui_consumer_events_total", outcome="duplicate")),
                idempotent_replays=sum(w.replayed for w in writes),
                held_back=int(total(delta, "gonghui_consumer_events_total", outcome="early")),
                stored_twice=findings.stored_twice[phase.name],
                stream_order=findings.stream_order[phase.name],
                applied_order=findings.applied_order[phase.name],
                recovery=phase.recovery,
                settled=phase.settle is None or phase.settle.reached,
                poison=poison,
                notes=notes,
            )
        )
    return result


async def run(config: RunConfig) -> Report:
    """The whole suite; the report is also written to `config.report_path` if set."""
    started = time.monotonic()
    async with running_platform(config.backend, config.folder) as platform:
        load = Load(platform)
        dbs = Databases(platform)
        try:
            async with MetricsSampler(
                {name: service.base for name, service in platform.services.items()}
            ) as sampler:
                await load.build_world(config.faults)
                phases = []
                for n, fault in enumerate(config.faults):
                    phase = await run_phase(platform, load, sampler, fault, config)
                    # Quiet before the next fault, so each is judged on its own: what it
                    # left in flight (redeliveries included) is counted in its window.
                    if config.settle_between or n + 1 == len(config.faults):
                        phase.settle = await quiesce(
                            platform,
                            dbs,
                            load,
                            timeout=config.settle_timeout,
                            redeliveries=config.redeliveries,
                        )
                    phases.append(phase)
                quiet = phases[-1].settle
                assert quiet is not None
                await sampler.scrape()
                final = sampler.totals()
            snap = await snapshot(platform, dbs, load)
            # A fault's events are those of its load, from the start of the phase until the
            # next one; the setup's are counted with the first.
            windows = [
                Window(
                    p.name,
                    p.started_at if n else datetime.min.replace(tzinfo=UTC),
                    phases[n + 1].started_at if n + 1 < len(phases) else None,
                )
                for n, p in enumerate(phases)
            ]
            findings = judge_writes(load.ledger, snap.records)
            judge_bus(findings, snap, windows)
            await explain_unapplied(dbs, snap, findings)
            off = figures_off(await service_figures(dbs, load), await dashboard_of(load))
            report = Report(
                backend=config.backend,
                rows=rows(
                    phases,
                    load.ledger,
                    findings,
                    off,
                    final,
                    poison_dead_lettered(snap, fault_kinds.POISONED_CONSUMER),
                ),
                numbered=snap.numbered,
                dead_letters_source=snap.dead_letters_source,
                settle=quiet,
                details=findings.details,
                seconds=time.monotonic() - started,
                config={
                    "rate": config.rate,
                    "before": config.before,
                    "down": config.down,
                    "after": config.after,
                    "killed_service": config.killed_service,
                    # Recovery times grow with the machine's load (the platform shares it).
                    "load_average": round(os.getloadavg()[0], 1),
                },
            )
        finally:
            await dbs.aclose()
            await load.aclose()
    if config.report_path is not None:
        config.report_path.parent.mkdir(parents=True, exist_ok=True)
        config.report_path.write_text(render(report))
    return report


def default_backend() -> str:
    return "postgres" if os.environ.get("TEST_POSTGRES_URL") else "sqlite"


def plan(backend: str, requested: list[str] | None) -> list[str]:
    """The faults to run, in order; the database outage needs PostgreSQL."""
    chosen = requested or [BASELINE, *fault_kinds.FAULTS]
    if backend != "postgres":
        with contextlib.suppress(ValueError):
            chosen.remove("postgres_outage")
    return chosen


def quiet_logs() -> None:
    """Our progress lines only: not one line per HTTP request."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
