"""Key rotation for personal data: re-encrypt with the newest key, recompute lookup hashes.

A column holding a value encrypted with `PiiCipher` is named `<what>_encrypted`, and its
lookup hash, where it has one, `<what>_hash` in the same table (`phone_encrypted`,
`phone_hash`). `encrypted_tables` finds them in a service's metadata by that convention,
so a new encrypted column is rotated without anyone having to remember to list it.

The procedure (README, Configuration): prepend the new Fernet key to GONGHUI_PII_KEYS,
restart the services (they write with the new key and still read with the old), run
`rotate-pii-keys` of every service that stores personal data, then drop the old key.
Each batch is its own transaction, and a value the newest key already opens is left as
it is, so the command can be stopped and run again: it carries on where it stopped, and a
second run over rotated data changes nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from cryptography.fernet import InvalidToken
from sqlalchemy import Column, MetaData, Table, bindparam, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from gonghui_shared.db import Database
from gonghui_shared.keys import DevKeyInProduction
from gonghui_shared.pii import PiiCipher
from gonghui_shared.runtime import load_pii_cipher
from gonghui_shared.settings import ServiceSettings

ENCRYPTED_SUFFIX = "_encrypted"
HASH_SUFFIX = "_hash"

EXIT_OK = 0
EXIT_UNREADABLE = 1  # some rows open with none of the configured keys (named in the output)
EXIT_USAGE = 2  # settings, keys or database trouble


@dataclass(frozen=True)
class EncryptedTable:
    """A table's encrypted columns, and the lookup hashes computed from them."""

    table: Table
    encrypted: tuple[Column[Any], ...]
    # (hash column, the encrypted column whose plain value it hashes)
    hashes: tuple[tuple[Column[Any], Column[Any]], ...]

    @property
    def key(self) -> Column[Any]:
        [column] = self.table.primary_key.columns
        return column


def encrypted_tables(metadata: MetaData) -> list[EncryptedTable]:
    """Every table of `metadata` with a `*_encrypted` column, in dependency order."""
    found = []
    for table in metadata.sorted_tables:
        encrypted = tuple(c for c in table.columns if c.name.endswith(ENCRYPTED_SUFFIX))
        if not encrypted:
            continue
        hashes = []
        for column in encrypted:
            hash_name = column.name.removesuffix(ENCRYPTED_SUFFIX) + HASH_SUFFIX
            if hash_name in table.columns:
                hashes.append((table.columns[hash_name], column))
        found.append(EncryptedTable(table, encrypted, tuple(hashes)))
    return found


@dataclass
class TableReport:
    """What a rotation did to one table; `unreadable` holds the keys of rows no key opens."""

    table: str
    total: int
    read: int = 0
    reencrypted: int = 0  # rows with at least one value re-encrypted
    rehashed: int = 0  # rows with at least one lookup hash recomputed
    unreadable: list[str] = field(default_factory=list)

    @property
    def current(self) -> int:
        """Rows that needed nothing: the newest key already opened every value."""
        return self.read - self.reencrypted - len(self.unreadable)


Progress = Callable[[TableReport], None]


class _Unreadable(Exception):
    pass


def _rotated_row(
    spec: EncryptedTable, row: Any, pii: PiiCipher, *, rehash: bool
) -> tuple[dict[str, Any], bool, bool]:
    """The row's new values (as bind parameters), whether a value was re-encrypted, whether
    a hash was recomputed. Raises `_Unreadable` if no configured key opens a value."""
    values: dict[str, Any] = {}
    reencrypted = rehashed = False
    try:
        for column in spec.encrypted:
            token = row._mapping[column.name]
            if token is not None and not pii.is_current(token):
                token, reencrypted = pii.rotate(token), True
            values[f"new_{column.name}"] = token
        if rehash:
            for hash_column, source in spec.hashes:
                stored = row._mapping[hash_column.name]
                token = row._mapping[source.name]
                fresh = stored if token is None else pii.lookup_hash(pii.decrypt(token))
                rehashed = rehashed or fresh != stored
                values[f"new_{hash_column.name}"] = fresh
    except InvalidToken:
        raise _Unreadable from None
    return values, reencrypted, rehashed


async def _rotate_table(
    db: Database,
    spec: EncryptedTable,
    pii: PiiCipher,
    *,
    rehash: bool,
    batch: int,
    progress: Progress | None,
) -> TableReport:
    table, key = spec.table, spec.key
    written = list(spec.encrypted) + ([h for h, _ in spec.hashes] if rehash else [])
    async with db.transaction() as session:
        total = await session.scalar(select(func.count()).select_from(table)) or 0
    report = TableReport(table.name, total)
    # Re-encryption changes no fact about the row: its update time stays as it was.
    kept = {c.name: c for c in table.columns if c.onupdate is not None and c not in written}
    statement = (
        update(table)
        .where(key == bindparam("row_key"))
        .values({c.name: bindparam(f"new_{c.name}") for c in written} | kept)
    )
    last: Any = None
    while True:
        async with db.transaction() as session:
            query = select(key, *written).order_by(key).limit(batch)
            if last is not None:
                query = query.where(key > last)
            # Locked until the batch commits, so a write by the running service in
            # between is never overwritten with an older value (SQLite locks the
            # database for the whole transaction anyway).
            rows = (await session.execute(query.with_for_update())).all()
            updates = []
            for row in rows:
                try:
                    values, reencrypted, rehashed = _rotated_row(spec, row, pii, rehash=rehash)
                except _Unreadable:
                    report.unreadable.append(str(row[0]))
                    continue
                report.reencrypted += reencrypted
                report.rehashed += rehashed
                if reencrypted or rehashed:
                    updates.append(values | {"row_key": row[0]})
            if updates:
                await session.execute(statement, updates)
        if not rows:
            break
        last = rows[-1][0]
        report.read += len(rows)
        if progress is not None:
            progress(report)
    return report


async def rotate_personal_data(
    db: Database,
    metadata: MetaData,
    pii: PiiCipher,
    *,
    rehash: bool = False,
    batch: int = 500,
    progress: Progress | None = None,
) -> list[TableReport]:
    """Re-encrypt every encrypted value of `metadata`'s tables that the newest key does not
    open; with `rehash`, also recompute every lookup hash with the current hash key.

    One transaction per `batch` rows; `progress` is called after each."""
    if batch < 1:
        raise ValueError("the batch size must be at least 1")
    return [
        await _rotate_table(db, spec, pii, rehash=rehash, batch=batch, progress=progress)
        for spec in encrypted_tables(metadata)
    ]


# ---------------------------------------------------------------- the command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every service's `rotate-pii-keys`."""
    parser.add_argument("--batch", type=int, default=500, help="rows per transaction (default 500)")
    parser.add_argument(
        "--rehash",
        action="store_true",
        help="also recompute every lookup hash with the current GONGHUI_PII_HASH_KEY",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


DESCRIPTION = (
    "Re-encrypts every encrypted ID number and phone with the newest key of GONGHUI_PII_KEYS "
    "(the first), so that the older keys can then be removed; with --rehash it also "
    "recomputes the lookup hashes with the current GONGHUI_PII_HASH_KEY. One transaction per "
    "batch: safe while the service runs, and safe to stop and run again. Run it after the "
    "new key was prepended and the services restarted. Exit codes: 0 done, 1 some rows open "
    "with none of the configured keys (listed), 2 settings, key or database errors."
)


def _print_progress(report: TableReport, err: TextIO) -> None:
    share = f"{report.read / report.total:.0%}" if report.total else "-"
    print(
        f"  {report.table:<24} {report.read:>9,} / {report.total:,} rows ({share})",
        file=err,
        flush=True,
    )


def print_summary(reports: list[TableReport], *, rehash: bool, seconds: float, out: TextIO) -> None:
    for r in reports:
        hashes = f", lookup hashes recomputed {r.rehashed:,}" if rehash else ""
        print(
            f"{r.table:<24} read {r.read:,}: re-encrypted {r.reencrypted:,}, "
            f"already current {r.current:,}{hashes}, unreadable {len(r.unreadable):,}",
            file=out,
        )
    unreadable = [(r.table, key) for r in reports for key in r.unreadable]
    reencrypted = sum(r.reencrypted for r in reports)
    print(
        f"re-encrypted {reencrypted:,} rows of {sum(r.read for r in reports):,} "
        f"in {len(reports)} tables in {seconds:.1f} s",
        file=out,
    )
    if unreadable:
        shown = ", ".join(f"{table}/{key}" for table, key in unreadable[:20])
        more = f" and {len(unreadable) - 20} more" if len(unreadable) > 20 else ""
        print(
            f"{len(unreadable)} rows open with none of the configured keys ({shown}{more}): "
            "keep the old keys until they are dealt with",
            file=out,
        )
    else:
        print("every value opens with the newest key: the older keys may be removed", file=out)


async def run_command(
    settings: ServiceSettings,
    metadata: MetaData,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """`rotate-pii-keys` against `settings`' database; returns the exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        pii = load_pii_cipher(settings)
    except (DevKeyInProduction, ValueError, OSError) as exc:
        print(f"error: personal-data keys: {exc}", file=err)
        return EXIT_USAGE
    if args.batch < 1:
        print("error: --batch must be at least 1", file=err)
        return EXIT_USAGE
    db = Database(settings.database_url)
    started = time.perf_counter()
    try:
        reports = await rotate_personal_data(
            db,
            metadata,
            pii,
            rehash=args.rehash,
            batch=args.batch,
            progress=None if args.quiet else lambda report: _print_progress(report, err),
        )
    except (SQLAlchemyError, OSError) as exc:
        # The first line only: SQLAlchemy appends the statement and its parameters.
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        print(
            f"error: database error ({type(exc).__name__}): {detail}; is the database "
            f"migrated and {settings.service_name.upper()}_DATABASE_URL right?",
            file=err,
        )
        return EXIT_USAGE
    finally:
        await db.dispose()
    print_summary(reports, rehash=args.rehash, seconds=time.perf_counter() - started, out=out)
    return EXIT_UNREADABLE if any(r.unreadable for r in reports) else EXIT_OK
