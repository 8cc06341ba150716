"""`python -m tests.faults`: the long fault run (`make faults`); prints the table."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from pathlib import Path

from tests.faults.faults import FAULTS
from tests.faults.report import render
from tests.faults.runner import BASELINE, RunConfig, default_backend, plan, quiet_logs, run

REPO = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgres"],
        default=default_backend(),
        help="default: postgres when TEST_POSTGRES_URL is set",
    )
    parser.add_argument(
        "--faults",
        type=lambda text: [f.strip() for f in text.split(",") if f.strip()],
        help=f"comma-separated, in order, from {BASELINE},{','.join(FAULTS)} (default: all)",
    )
    parser.add_argument("--rate", type=float, default=10.0, help="flows started per second")
    parser.add_argument("--before", type=float, default=5.0, help="seconds of load before a fault")
    parser.add_argument("--down", type=float, default=3.0, help="seconds a fault lasts")
    parser.add_argument("--after", type=float, default=12.0, help="seconds of load after it")
    parser.add_argument("--max-flows", type=int, default=1000, help="flows per fault, at most")
    parser.add_argument("--kill", default="membership", help="the service SIGKILLed")
    parser.add_argument(
        "--settle-once",
        action="store_true",
        help="settle only after the last fault (shorter; in-flight work counts in the next window)",
    )
    parser.add_argument("--report", type=Path, default=REPO / ".faults" / "report.md")
    parser.add_argument(
        "--keep", type=Path, help="run in this folder and keep it (service logs, NATS store)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_logs()
    chosen = plan(args.backend, args.faults)
    unknown = set(chosen) - {BASELINE, *FAULTS}
    if unknown:
        sys.exit(f"unknown faults: {', '.join(sorted(unknown))}")
    with contextlib.ExitStack() as stack:
        folder = args.keep or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="gonghui-faults-"))
        )
        config = RunConfig(
            backend=args.backend,
            faults=chosen,
            folder=folder,
            rate=args.rate,
            before=args.before,
            down=args.down,
            after=args.after,
            max_flows=args.max_flows,
            killed_service=args.kill,
            settle_between=not args.settle_once,
            report_path=args.report,
        )
        report = asyncio.run(run(config))
    print(render(report))
    print(f"written to {args.report}")
    return 1 if report.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
