"""The fault suite's table, in Markdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

RECOVERY_TARGET_SECONDS = 10.0
DETAILS_SHOWN = 30


@dataclass
class PhaseRow:
    fault: str
    target: str
    sent: int
    acknowledged: int
    lost: int  # acknowledged writes missing, plus events lost between outbox and consumers
    duplicated: int  # writes the owning service holds twice
    figures_off: int  # dashboard minus the services' own records, in absolute value
    dedup_outbox: int  # re-publishes JetStream recognised (Nats-Msg-Id)
    dedup_inbox: int  # redeliveries a consumer's inbox recognised
    idempotent_replays: int  # retries the gateway answered from its Idempotency-Key store
    held_back: int  # events that came before their predecessor and were held back
    stored_twice: int  # events the stream holds twice (its duplicate window missed them)
    stream_order: int
    applied_order: int
    recovery: float | None
    settled: bool = True  # nothing left in flight before the next fault (or the checks)
    poison: tuple[int, int] | None = None  # (published, dead-lettered)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def dedup_caught(self) -> int:
        return self.dedup_outbox + self.dedup_inbox

    @property
    def order_violations(self) -> int:
        return self.stream_order + self.applied_order


@dataclass
class Report:
    backend: str
    rows: list[PhaseRow]
    numbered: bool  # events carry per-aggregate sequence numbers
    dead_letters_source: str
    settle: Any  # verify.Quiescence
    details: list[str]
    seconds: float
    config: dict[str, Any]

    @property
    def faults(self) -> list[PhaseRow]:
        return [row for row in self.rows if row.fault != "baseline"]

    def row(self, fault: str) -> PhaseRow:
        return next(row for row in self.rows if row.fault == fault)

    def problems(self, *, timed: bool = True) -> list[str]:
        """Every way the run falls short of the suite's promises; empty if none.

        `timed=False` leaves out the recovery-time target (but not recovery itself): inside
        `make test` a busy machine must not turn a speed target into a failure.
        """
        found = []
        for row in self.rows:
            name = row.fault
            for what in ("lost", "duplicated", "figures_off", "order_violations"):
                if getattr(row, what):
                    found.append(f"{name}: {what.replace('_', ' ')} {getattr(row, what)}")
            if row.recovery is None:
                found.append(f"{name}: not recovered")
            elif timed and row.recovery >= RECOVERY_TARGET_SECONDS:
                found.append(f"{name}: recovery {row.recovery:.1f} s")
            if not row.settled:
                found.append(f"{name}: did not settle")
            if row.poison is not None and row.poison[0] != row.poison[1]:
                found.append(f"{name}: {row.poison[1]} of {row.poison[0]} dead-lettered")
        if self.faults and not sum(row.dedup_caught for row in self.rows):
            found.append("no duplicate caught: the faults did not exercise deduplication")
        return found


def _recovery(seconds: float | None) -> str:
    if seconds is None:
        return "**not recovered**"
    mark = "" if seconds < RECOVERY_TARGET_SECONDS else " **(over target)**"
    return f"{seconds:.1f}{mark}"


def render(report: Report) -> str:
    order_basis = "aggregate_seq" if report.numbered else "outbox position (events not numbered)"
    lines = [
        f"# Fault suite: {report.backend}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "| fault | writes sent | acknowledged | lost | duplicated | figures off "
        "| dedup caught (outbox + inbox) | idempotent replays | order violations "
        "(stream + applied) | recovery (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report.rows:
        label = row.fault if row.fault == "baseline" else f"{row.fault} ({row.target})"
        lines.append(
            f"| {label} | {row.sent} | {row.acknowledged} | {row.lost} | {row.duplicated} "
            f"| {row.figures_off} | {row.dedup_caught} ({row.dedup_outbox} + {row.dedup_inbox}) "
            f"| {row.idempotent_replays} | {row.order_violations} "
            f"({row.stream_order} + {row.applied_order}) | {_recovery(row.recovery)} |"
        )
    total = report.rows
    lines.append(
        f"| **all** | {sum(r.sent for r in total)} | {sum(r.acknowledged for r in total)} "
        f"| {sum(r.lost for r in total)} | {sum(r.duplicated for r in total)} "
        f"| {sum(r.figures_off for r in total)} | {sum(r.dedup_caught for r in total)} "
        f"| {sum(r.idempotent_replays for r in total)} "
        f"| {sum(r.order_violations for r in total)} | target < {RECOVERY_TARGET_SECONDS:.0f} |"
    )
    settle = report.settle
    lines += [
        "",
        "- **lost**: acknowledged writes the owning service does not hold, plus events "
        "committed to an outbox that never reached the stream or a consumer handling them.",
        "- **duplicated**: writes the owning service holds twice. **figures off**: the "
        "gateway's dashboard figures (new, active and withdrawn members, person-times, unique "
        "persons, visits of the fault's org) minus the services' own records, in absolute value.",
        "- **dedup caught**: re-publishes JetStream recognised by `Nats-Msg-Id` "
        "(`gonghui_outbox_duplicates_total`) plus redeliveries a consumer's inbox skipped "
        '(`gonghui_consumer_events_total{outcome="duplicate"}`), counted in the fault\'s '
        "window; lower bounds (a killed process's last increments are not scraped).",
        f"- **order**: per aggregate, by {order_basis}: events stored in the stream after a "
        "later one of their aggregate, plus events a consumer applied after a later one. "
        f"Held back as early: {sum(r.held_back for r in report.rows)}; stored twice in a "
        f"stream: {sum(r.stored_twice for r in report.rows)}.",
        "- **recovery**: from the end of the fault (NATS or the service started again, the "
        "database reachable again, the poison published) until a probe admission, attendance "
        "and visit are acknowledged and the dashboard shows them and everything acknowledged "
        "before them.",
        f"- settled after the load in {settle.seconds} s"
        + ("" if settle.reached else " (**did not settle**)")
        + f": unsent {settle.unsent}, pending {settle.pending}, awaiting ack "
        f"{settle.ack_pending}, figures differing {settle.figures_differ}. Dead letters read "
        f"from: {report.dead_letters_source}. Run took {report.seconds:.0f} s; "
        + ", ".join(f"{k} {v}" for k, v in report.config.items())
        + ".",
    ]
    problems = report.problems()
    lines.append(
        "- **verdict**: " + ("; ".join(problems) if problems else "every promise kept") + "."
    )
    notes = [
        f"  - {row.fault}: "
        + (f"dead-lettered {row.poison[1]} of {row.poison[0]}; " if row.poison else "")
        + str(row.notes)
        for row in report.rows
        if row.notes or row.poison
    ]
    if notes:
        lines += ["- notes:", *notes]
    if report.details:
        lines += ["", "Findings:", ""]
        lines += [f"- {line}" for line in report.details[:DETAILS_SHOWN]]
        if len(report.details) > DETAILS_SHOWN:
            lines.append(f"- … and {len(report.details) - DETAILS_SHOWN} more")
    return "\n".join(lines) + "\n"
