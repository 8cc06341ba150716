"""`gonghui-gateway`: operator commands that run against the gateway's database.

Each command is a subcommand with its own `_cmd_<name>` function and parser below;
`gonghui-gateway --help` lists them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from gateway.accounts.admin import ADMIN_USERNAME, create_first_admin
from gateway.base import inbox
from gateway.config import GatewaySettings
from gateway.dashboards.rebuild import RebuildReport, rebuild
from gateway.models import Base
from gonghui_shared import pii_rotation
from gonghui_shared.bus import Bus
from gonghui_shared.db import Database

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran, but something in it failed (named in the output)
EXIT_USAGE = 2  # bad arguments, settings, or NATS/database unreachable


class CommandFailed(Exception):
    """An expected failure: printed as one message, exit code 2."""


def _settings() -> GatewaySettings:
    try:
        return GatewaySettings()
    except ValidationError as exc:
        raise CommandFailed(f"invalid settings: {exc}") from None


# ---------------------------------------------------------------- rebuild-dashboards


def _print_progress(source: str, read: int, total: int) -> None:
    share = f"{read / total:.0%}" if total else "-"
    print(f"  {source:<10} {read:>9,} / {total:,} events ({share})", file=sys.stderr, flush=True)


def _print_report(report: RebuildReport) -> None:
    for s in report.sources:
        print(
            f"{s.source:<10} read {s.read:,} of {s.to_read:,}: applied {s.applied:,}, "
            f"already applied {s.duplicates:,}, not used {s.ignored:,}, failed {s.failed:,} "
            f"({s.seconds:.1f}s)"
        )


async def _rebuild_dashboards(args: argparse.Namespace) -> int:
    settings = _settings()
    db = Database(settings.database_url)
    bus = Bus(settings.nats_url, f"{settings.service_name}-rebuild", root=settings.subject_root)
    bus.start()
    try:
        if not await bus.connected(args.connect_timeout):
            raise CommandFailed(f"NATS at {settings.nats_url} did not answer")
        print("emptying the dashboards and replaying the streams…", file=sys.stderr)
        report = await rebuild(
            db,
            bus,
            inbox,
            batch=args.batch,
            idle_seconds=args.idle_seconds,
            progress=None if args.quiet else _print_progress,
        )
    finally:
        await bus.close()
        await db.dispose()
    _print_report(report)
    return EXIT_FAILED if report.failed else EXIT_OK


def _add_rebuild_dashboards(commands: Any) -> None:
    parser = commands.add_parser(
        "rebuild-dashboards",
        help="empty the dashboards' read models and replay the event history into them",
        description="Empties the dashboards' read models, then replays the JetStream history "
        "of membership's, training's and stations' streams into them with the live handlers. "
        "Safe while the gateway runs. Needs GATEWAY_DATABASE_URL (or GONGHUI_DATA_DIR) and "
        "GONGHUI_NATS_URL, GONGHUI_SUBJECT_ROOT as the gateway uses them.",
    )
    parser.add_argument("--batch", type=int, default=500, help="events per transaction")
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=5.0,
        help="stop a stream's replay when no message comes for this long",
    )
    parser.add_argument("--connect-timeout", type=float, default=10.0, help="seconds for NATS")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(run=_rebuild_dashboards)


# ---------------------------------------------------------------- create-admin


async def _create_admin(args: argparse.Namespace) -> int:
    settings = _settings()
    db = Database(settings.database_url)
    try:
        outcome = await create_first_admin(db, settings)
    except ValueError as exc:
        raise CommandFailed(str(exc)) from None
    except SQLAlchemyError as exc:
        # The driver's own message ("no such table", "database is locked"), never the
        # statement and its parameters that SQLAlchemy's message would add.
        reason = getattr(exc, "orig", None) or type(exc).__name__
        raise CommandFailed(
            f"cannot use the gateway's database ({reason}); migrated yet?"
        ) from None
    finally:
        await db.dispose()
    if not outcome.created:
        print(f"the account `{ADMIN_USERNAME}` exists; nothing changed")
    elif outcome.generated_password is None:
        print(f"created `{ADMIN_USERNAME}` (platform_admin) with GONGHUI_ADMIN_PASSWORD")
    else:
        # Printed this once, to the terminal only: it is stored nowhere but as a hash.
        print(
            f"created `{ADMIN_USERNAME}` (platform_admin) with a generated password, "
            f"shown only now:\n\n    {outcome.generated_password}\n",
            flush=True,
        )
    return EXIT_OK


def _add_create_admin(commands: Any) -> None:
    parser = commands.add_parser(
        "create-admin",
        help="create the first account `admin` (a platform admin) if it does not exist",
        description="Creates the account `admin`, a platform admin (no county exists yet on a "
        "fresh installation), with the password in GONGHUI_ADMIN_PASSWORD, or a generated one "
        "printed once. Does nothing if `admin` exists. Run after migrating the gateway.",
    )
    parser.set_defaults(run=_create_admin)


# ---------------------------------------------------------------- rotate-pii-keys


async def _rotate_pii_keys(args: argparse.Namespace) -> int:
    return await pii_rotation.run_command(_settings(), Base.metadata, args)


def _add_rotate_pii_keys(commands: Any) -> None:
    parser = commands.add_parser(
        "rotate-pii-keys",
        help="re-encrypt the phones of mobile and staff accounts with the newest key",
        description=pii_rotation.DESCRIPTION
        + " Pending one-time codes are not rehashed: they expire within minutes, and a code "
        "requested again is hashed with the new key. Needs GATEWAY_DATABASE_URL (or "
        "GONGHUI_DATA_DIR) as the gateway uses it; no NATS.",
    )
    pii_rotation.add_arguments(parser)
    parser.set_defaults(run=_rotate_pii_keys)


# ---------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gonghui-gateway", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    _add_rebuild_dashboards(commands)
    _add_create_admin(commands)
    _add_rotate_pii_keys(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(asyncio.run(args.run(args)))
    except CommandFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
