"""`gonghui-membership`: operator commands that run in-process against the service's database.

They call the same service functions as the API, so the rules are identical, and act
as a platform administrator named by `--actor` (default `cli:<os user>`) in the audit
trail. They need no NATS: events go into the outbox table in the same transaction,
and the running service's outbox relay publishes them.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from tqdm import tqdm

from gonghui_shared import pii_rotation
from gonghui_shared.auth import Principal
from gonghui_shared.db import Database
from gonghui_shared.errors import AppError
from gonghui_shared.keys import DevKeyInProduction
from gonghui_shared.permissions import Action, Role
from gonghui_shared.pii import PiiCipher
from gonghui_shared.runtime import load_pii_cipher, startup_frozen
from membership.config import MembershipSettings
from membership.models import Base
from membership.orgs import service as orgs
from membership.rosters import service as rosters
from membership.rosters.schemas import ExportFormat, ExportStatus, RosterImportReport
from membership.units import service as units

EXIT_OK = 0
EXIT_ROW_ERRORS = 1  # the file has rows with errors (nothing written unless --skip-invalid)
EXIT_USAGE = 2  # bad arguments, unreadable or malformed file, unknown org, database trouble
EXIT_INTERRUPTED = 130

_NO_NATS = (
    "Runs against the service's database (MEMBERSHIP_DATABASE_URL, GONGHUI_DATA_DIR for the "
    "dev keys, GONGHUI_PII_KEYS/GONGHUI_PII_HASH_KEY in production). It needs no NATS: "
    "events are written to the outbox and the running membership service's relay "
    "publishes them."
)


class CommandFailed(Exception):
    """An expected failure: printed as one message, exit code 2."""


def _default_actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = "unknown"
    return f"cli:{user}"


def _principal(actor: str) -> Principal:
    return Principal(subject=actor[:100], role=Role.platform_admin)


def _progress_factory(enabled: bool) -> rosters.ProgressFactory:
    def bar(stage: str, total: int) -> rosters.Progress:
        progress: rosters.Progress = tqdm(
            total=total, desc=f"{stage:<10}", unit="row", file=sys.stderr, disable=not enabled
        )
        return progress

    return bar


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CommandFailed(f"cannot read {path}: {exc.strerror or exc}") from None


class _Context:
    """Settings, database and cipher for one command; the database is disposed at the end."""

    def __init__(self) -> None:
        try:
            self.settings = MembershipSettings()
        except ValidationError as exc:
            raise CommandFailed(f"invalid settings: {exc}") from None
        try:
            self.pii: PiiCipher = load_pii_cipher(self.settings)
        except (DevKeyInProduction, ValueError, OSError) as exc:
            raise CommandFailed(f"personal-data keys: {exc}") from None
        self.db = Database(self.settings.database_url)


async def _in_transaction(work: Callable[[Any, PiiCipher], Awaitable[Any]]) -> Any:
    """Run `work(session, pii)` in one transaction: committed if it returns, else rolled back."""
    context = _Context()
    try:
        async with context.db.transaction() as session:
            return await work(session, context.pii)
    except (SQLAlchemyError, OSError) as exc:
        # The first line only: SQLAlchemy appends the statement and its parameters.
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise CommandFailed(
            f"database error ({type(exc).__name__}): {detail}; is the database migrated "
            "(`make migrate`) and MEMBERSHIP_DATABASE_URL right?"
        ) from None
    finally:
        await context.db.dispose()


# ---------------------------------------------------------------- import-roster


def _print_report(
    report: RosterImportReport, *, name: str, max_errors: int, seconds: float, out: TextIO
) -> None:
    print(
        f"{name}: {report.rows_total} rows: {report.rows_valid} valid, "
        f"{report.rows_invalid} invalid, {report.rows_duplicate} duplicate",
        file=out,
    )
    for warning in report.warnings:
        print(f"warning: {warning.message} / {warning.message_zh}", file=out)
    if report.errors:
        print(f"errors ({report.errors_total}):", file=out)
        for error in report.errors[:max_errors]:
            print(
                f"  row {error.row:>6}  {error.column:<15} {error.code:<22} "
                f"{error.message} / {error.message_zh}",
                file=out,
            )
        if report.errors_total > max_errors:
            print(f"  … and {report.errors_total - max_errors} more", file=out)
    rate = f" in {seconds:.1f} s ({report.rows_total / seconds:,.0f} rows/s)" if seconds else ""
    if report.dry_run:
        print(f"dry run: nothing written{rate}", file=out)
    elif report.roster_id:
        print(
            f"imported {report.rows_imported} applications onto roster {report.roster_id}{rate}",
            file=out,
        )
    else:
        print("nothing to import", file=out)


async def _import_roster(args: argparse.Namespace) -> int:
    path = Path(args.file)
    data = _read(path)
    principal = _principal(args.actor)
    started = time.perf_counter()

    async def work(session: Any, pii: PiiCipher) -> RosterImportReport:
        org = await orgs.get_in_scope(session, principal, args.org_id, Action.rosters_import)
        return await rosters.import_roster(
            session,
            principal,
            org,
            pii,
            data,
            path.name,
            dry_run=args.dry_run,
            skip_invalid=args.skip_invalid,
            title=args.title,
            progress=_progress_factory(not args.no_progress),
        )

    try:
        report: RosterImportReport = await _in_transaction(work)
        refused = False
    except rosters.RosterHasErrors as exc:
        report = RosterImportReport.model_validate(exc.details)
        refused = True
    seconds = time.perf_counter() - started
    _print_report(
        report, name=path.name, max_errors=args.max_errors, seconds=seconds, out=sys.stdout
    )
    if refused:
        print(
            "refused: nothing written; fix the rows above, or pass --skip-invalid to import "
            "the good rows only",
            file=sys.stdout,
        )
        return EXIT_ROW_ERRORS
    if report.errors_total and not args.skip_invalid:
        return EXIT_ROW_ERRORS
    return EXIT_OK


# ---------------------------------------------------------------- export-roster


def _save(exported: rosters.ExportedRoster, out: Path) -> None:
    try:
        with exported.file as source, out.open("wb") as target:
            shutil.copyfileobj(source, target)
    except OSError as exc:
        raise CommandFailed(f"cannot write {out}: {exc.strerror or exc}") from None


async def _export_roster(args: argparse.Namespace) -> int:
    out = Path(args.out)
    fmt = ExportFormat(args.format or ("csv" if out.suffix.lower() == ".csv" else "xlsx"))
    principal = _principal(args.actor)

    async def work(session: Any, pii: PiiCipher) -> rosters.ExportedRoster:
        org = await orgs.get_in_scope(session, principal, args.org_id, Action.rosters_export)
        return await rosters.export_roster(
            session,
            principal,
            org,
            pii,
            fmt=fmt,
            status=ExportStatus(args.status),
            masked=args.masked,
        )

    exported: rosters.ExportedRoster = await _in_transaction(work)
    _save(exported, out)
    print(f"wrote {exported.rows} members to {out} ({fmt.value})")
    return EXIT_OK


# ---------------------------------------------------------------- import-units


async def _import_units(args: argparse.Namespace) -> int:
    path = Path(args.file)
    data = _read(path)
    principal = _principal(args.actor)

    async def work(session: Any, pii: PiiCipher) -> Any:
        return await units.import_units(session, principal, data)

    result = await _in_transaction(work)
    print(
        f"{path.name}: {result.total} units: {result.created} created, "
        f"{result.updated} updated, {result.unchanged} unchanged"
    )
    return EXIT_OK


# ---------------------------------------------------------------- rotate-pii-keys


async def _rotate_pii_keys(args: argparse.Namespace) -> int:
    try:
        settings = MembershipSettings()
    except ValidationError as exc:
        raise CommandFailed(f"invalid settings: {exc}") from None
    return await pii_rotation.run_command(settings, Base.metadata, args)


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gonghui-membership",
        description="Membership service operator commands. " + _NO_NATS,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def actor_option(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--actor",
            default=_default_actor(),
            help="who the audit trail names (role platform_admin); default cli:<os user>",
        )

    imp = commands.add_parser(
        "import-roster",
        help="import a roster (花名册) file, with the API's rules",
        description=(
            "Check a roster file (.xlsx or .csv, the /v1/rosters/template layout) and import "
            "its rows as applications on a new roster of the org, all in one transaction: "
            "all or nothing. Rows with errors stop the import unless --skip-invalid. "
            + _NO_NATS
            + " Exit codes: 0 done, 1 the file has rows with errors, 2 usage or file errors."
        ),
    )
    imp.add_argument("file", help="the .xlsx or .csv roster")
    imp.add_argument("--org-id", required=True, help="the org the workers apply to")
    imp.add_argument("--dry-run", action="store_true", help="check only; write nothing")
    imp.add_argument(
        "--skip-invalid", action="store_true", help="import the good rows even if others are bad"
    )
    imp.add_argument("--title", help='roster title; default "<file name> 导入"')
    imp.add_argument(
        "--max-errors", type=int, default=20, help="how many row errors to print (default 20)"
    )
    imp.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    actor_option(imp)
    imp.set_defaults(run=_import_roster)

    exp = commands.add_parser(
        "export-roster",
        help="export an org subtree's members in the roster template layout",
        description="Write the members of an org and every org below it to a roster file. "
        + _NO_NATS,
    )
    exp.add_argument("--org-id", required=True, help="the org whose subtree is exported")
    exp.add_argument("--out", required=True, help="the file to write")
    exp.add_argument(
        "--format", choices=[f.value for f in ExportFormat], help="default from --out's suffix"
    )
    exp.add_argument(
        "--status",
        choices=[s.value for s in ExportStatus],
        default=ExportStatus.active.value,
        help="which members (default active)",
    )
    exp.add_argument("--masked", action="store_true", help="mask ID numbers and phones in the file")
    actor_option(exp)
    exp.set_defaults(run=_export_roster)

    units_command = commands.add_parser(
        "import-units",
        help="upsert administrative units from a statistical division code csv",
        description="Create or update administrative units (by code) from a csv in the "
        "national layout: 统计用区划代码,城乡分类代码,名称[,经度,纬度]. " + _NO_NATS,
    )
    units_command.add_argument("file", help="the units csv")
    actor_option(units_command)
    units_command.set_defaults(run=_import_units)

    rotate = commands.add_parser(
        "rotate-pii-keys",
        help="re-encrypt the ID numbers and phones of applications and members with the newest key",
        description=pii_rotation.DESCRIPTION + " Needs no NATS.",
    )
    pii_rotation.add_arguments(rotate)
    rotate.set_defaults(run=_rotate_pii_keys)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 rows with errors, 2 usage/file errors)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on a usage error, 0 after --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        with startup_frozen():  # as in a service: a big import's collections walk its own
            code: int = asyncio.run(args.run(args))
        return code
    except CommandFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AppError as exc:
        detail = f" {exc.details}" if isinstance(exc.details, dict) and exc.details else ""
        print(f"error: {exc.text} / {exc.text_zh} ({exc.code}){detail}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
