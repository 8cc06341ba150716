"""Roster (花名册) import and export: the rules the API and the CLI share.

An import reads the file, validates every row against the template, flags people
listed twice in the file, already active members and people whose application is
still pending, and then (unless it is a dry run, and only if the file is clean or
the caller skips bad rows) creates one roster with one `on_roster` application per
good row, its transition and its `ApplicationSubmitted` event, all in the caller's
transaction and with bulk inserts, so a 10,000-row file takes seconds.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import tempfile
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, BinaryIO, Protocol, TypeVar, cast
from urllib.parse import quote

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.audit import mark_personal_data_read
from gonghui_shared.auth import Principal
from gonghui_shared.bus.outbox import OutboxItem, record_events
from gonghui_shared.clock import today_in_china
from gonghui_shared.contracts.membership import ApplicationSubmitted
from gonghui_shared.errors import AppError, Conflict, Forbidden, PayloadTooLarge, Unprocessable
from gonghui_shared.ids import new_id
from gonghui_shared.logging import request_id_var
from gonghui_shared.permissions import Action
from gonghui_shared.pii import PiiCipher, mask_id_number, mask_phone
from gonghui_shared.vocabulary import (
    HouseholdType,
    LabelledEnum,
    MemberCategory,
    NewEmploymentSubtype,
)
from membership.admissions.models import ApplicationStatus, Roster
from membership.admissions.person import protect
from membership.base import outbox
from membership.orgs.models import Org, OrgStatus
from membership.rosters import repository
from membership.rosters.schemas import (
    ExportFormat,
    ExportStatus,
    FileWarning,
    PreviewRow,
    RosterImportReport,
    RowIssue,
    TemplateColumnRead,
    TemplateRead,
)
from membership.rosters.template import (
    ApplicantData,
    RosterFile,
    RosterFileError,
    RosterRow,
    RowError,
    read_roster,
    template_description,
    validate_rows,
    write_roster_csv,
    write_roster_xlsx,
)

log = logging.getLogger(__name__)

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"

# Rows per bulk insert, and per progress step.
CHUNK_ROWS = 1_000
# Chunks prepared (encrypted, made rows) ahead of the one being written.
PREPARED_AHEAD = 2
PREVIEW_ROWS = 20
# The report lists this many errors; a wholly wrong 10,000-row file would otherwise send megabytes.
MAX_REPORTED_ERRORS = 1_000
EXPORT_PAGE = 2_000
# Row error codes that mean "this person is already known", counted apart from invalid rows.
DUPLICATE_CODES = frozenset({"duplicate", "already_member", "duplicate_application"})


# ---------------------------------------------------------------- errors


class RosterHasErrors(Unprocessable):
    code = "roster_has_errors"
    message = "Some rows have errors; nothing was imported (fix them, or skip invalid rows)"
    message_zh = "部分行有错误，未导入任何数据（请修正，或选择跳过错误行）"


class RosterTooLarge(PayloadTooLarge):
    message = "The roster file is larger than the upload limit"
    message_zh = "花名册文件超过上传大小限制"


class OrgDissolved(Conflict):
    code = "org_dissolved"  # the code admissions uses for the same refusal
    message = "The organisation is dissolved and admits no members"
    message_zh = "该工会组织已撤销，不再接收入会申请"


class ImportConflict(Conflict):
    code = "roster_import_conflict"
    message = "Someone on the roster applied or was admitted meanwhile; run the import again"
    message_zh = "导入期间名单中有人员已提交申请或已入会，请重新导入"


class UnsupportedFileType(Unprocessable):
    code = "unsupported_file_type"
    message = "Upload an .xlsx or .csv file"
    message_zh = "不支持的文件类型，请上传 .xlsx 或 .csv 文件"


class UnreadableFile(Unprocessable):
    code = "unreadable_file"
    message = "The file cannot be read"
    message_zh = "无法读取文件，文件可能已损坏"


class EmptyFile(Unprocessable):
    code = "empty_file"
    message = "The file has no header row"
    message_zh = "文件中没有表头行"


class MissingColumns(Unprocessable):
    code = "missing_columns"
    message = "Required columns are missing"
    message_zh = "缺少必填列"


class DuplicateColumns(Unprocessable):
    code = "duplicate_columns"
    message = "Some columns appear more than once"
    message_zh = "存在重复的列"


_FILE_ERRORS: dict[str, type[AppError]] = {
    error.code: error
    for error in (UnsupportedFileType, UnreadableFile, EmptyFile, MissingColumns, DuplicateColumns)
}


def file_error(exc: RosterFileError) -> AppError:
    """The API error for a file that cannot be read as a roster; its code is the file error's."""
    details: dict[str, Any] = {"field": "file"}
    if exc.columns:
        details["columns"] = exc.columns
    return _FILE_ERRORS.get(exc.code, UnreadableFile)(exc.message, exc.message_zh, details=details)


# ---------------------------------------------------------------- progress


class Progress(Protocol):
    """What the import reports progress to (a tqdm bar fits)."""

    def update(self, n: int = 1) -> object: ...

    def close(self) -> None: ...


ProgressFactory = Callable[[str, int], Progress]
"""Makes a progress bar for a stage ("validating", "writing") and its total of rows."""


class _Silent:
    def update(self, n: int = 1) -> None:
        return None

    def close(self) -> None:
        return None


def silent(stage: str, total: int) -> Progress:
    """No progress reporting (the API)."""
    return _Silent()


# ---------------------------------------------------------------- template


def require_roster_access(principal: Principal) -> None:
    """Anyone who may import or export rosters may see the template."""
    if not (principal.may(Action.rosters_import) or principal.may(Action.rosters_export)):
        raise Forbidden(
            f"Role {principal.role.value} may not import or export rosters",
            f"角色 {principal.role.value} 无权导入或导出花名册",
        )


def template(max_bytes: int) -> TemplateRead:
    return TemplateRead(
        columns=[TemplateColumnRead.model_validate(c) for c in template_description()],
        max_bytes=max_bytes,
        file_types=["xlsx", "csv"],
    )


def blank_template(fmt: ExportFormat) -> bytes:
    """The empty template, with the header row, text-formatted ID and phone columns, drop-downs."""
    out = io.BytesIO()
    if fmt is ExportFormat.xlsx:
        write_roster_xlsx([], out)
    else:
        text = io.TextIOWrapper(out, encoding="utf-8", newline="")
        write_roster_csv([], text)
        text.flush()
        text.detach()
    return out.getvalue()


def content_disposition(filename: str, ascii_filename: str) -> str:
    """`attachment` with an ASCII name for old clients and the real one in RFC 5987 form."""
    return f"attachment; filename=\"{ascii_filename}\"; filename*=UTF-8''{quote(filename, safe='')}"


# ---------------------------------------------------------------- import


@dataclass
class RosterCheck:
    """A roster file validated against the template and against the database.

    The file's rows are not kept: a 100,000-row file's rows are 200,000 objects that
    every full collection during the writes would walk again (and memory held)."""

    rows_total: int
    importable: list[tuple[int, ApplicantData]]
    errors: list[RowError]
    rows_invalid: int
    rows_duplicate: int
    warnings: list[FileWarning] = field(default_factory=list)
    # The importable people's ID number lookup hashes, in the same order: computed for
    # the duplicate check, stored with the applications.
    id_hashes: list[str] = field(default_factory=list)


def clean_filename(name: str | None) -> str:
    """The file's own name: no directories (some browsers send them), no control characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    if len(base) > 255:
        stem, dot, extension = base.rpartition(".")
        base = stem[: 254 - len(extension)] + dot + extension if dot else base[:255]
    return base or "roster"


def read_file(data: bytes, filename: str) -> RosterFile:
    """Parse the file; a file that is no roster at all is a 422 with the file error's code."""
    try:
        return read_roster(data, filename)
    except RosterFileError as exc:
        raise file_error(exc) from exc


def _counted(rows: Sequence[RosterRow], bar: Progress) -> Iterator[RosterRow]:
    for index, row in enumerate(rows, start=1):
        yield row
        if index % CHUNK_ROWS == 0:
            bar.update(CHUNK_ROWS)
    bar.update(len(rows) % CHUNK_ROWS)


def _validate(
    rows: Sequence[RosterRow], bar: Progress
) -> tuple[list[tuple[int, ApplicantData]], list[RowError]]:
    try:
        return validate_rows(_counted(rows, bar))
    finally:
        bar.close()


async def check(
    session: AsyncSession,
    pii: PiiCipher,
    roster: RosterFile,
    progress: ProgressFactory = silent,
) -> RosterCheck:
    """Validate every row, then look each valid person up among members and pending applications."""
    # Parsing ID numbers and phones is CPU work: off the event loop, so other requests go on.
    applicants, errors = await asyncio.to_thread(
        _validate, roster.rows, progress("validating", len(roster.rows))
    )
    hashes = [pii.lookup_hash(applicant.id.number) for _, applicant in applicants]
    await repository.refresh_statistics(session)
    members = await repository.active_member_hashes(session, hashes)
    pending = await repository.pending_application_hashes(
        session, [h for h in hashes if h not in members]
    )
    importable: list[tuple[int, ApplicantData]] = []
    id_hashes: list[str] = []
    for (row, applicant), lookup_hash in zip(applicants, hashes, strict=True):
        if lookup_hash in members:
            errors.append(
                RowError(
                    row,
                    "id_number",
                    "already_member",
                    "this person is already an active union member",
                    "此人已是在册工会会员，无需重复入会",
                )
            )
        elif lookup_hash in pending:
            errors.append(
                RowError(
                    row,
                    "id_number",
                    "duplicate_application",
                    "this person already has an application waiting for approval",
                    "此人已有待审批的入会申请",
                )
            )
        else:
            importable.append((row, applicant))
            id_hashes.append(lookup_hash)
    errors.sort(key=lambda error: error.row)  # stable: a row's errors keep their column order
    duplicate_rows = {e.row for e in errors if e.code in DUPLICATE_CODES}
    invalid_rows = {e.row for e in errors} - duplicate_rows
    return RosterCheck(
        rows_total=len(roster.rows),
        importable=importable,
        errors=errors,
        rows_invalid=len(invalid_rows),
        rows_duplicate=len(duplicate_rows),
        warnings=[
            FileWarning(code=w.code, header=w.header, message=w.message, message_zh=w.message_zh)
            for w in roster.warnings
        ],
        id_hashes=id_hashes,
    )


def _preview(row: int, applicant: ApplicantData) -> PreviewRow:
    return PreviewRow(
        row=row,
        name=applicant.name,
        id_number=mask_id_number(applicant.id.number),
        phone=mask_phone(applicant.phone),
        gender=applicant.id.gender.value,
        birth_date=applicant.id.birth_date,
        household_type=applicant.household_type.value,
        category=applicant.category.value,
        subtype=applicant.subtype.value if applicant.subtype else None,
        employer=applicant.employer,
        form_ref=applicant.form_ref,
    )


def report(
    checked: RosterCheck, *, dry_run: bool, roster_id: str | None = None, imported: int = 0
) -> RosterImportReport:
    return RosterImportReport(
        dry_run=dry_run,
        roster_id=roster_id,
        rows_total=checked.rows_total,
        rows_valid=len(checked.importable),
        rows_invalid=checked.rows_invalid,
        rows_duplicate=checked.rows_duplicate,
        rows_imported=imported,
        errors=[
            RowIssue(
                row=e.row,
                column=e.column,
                code=e.code,
                message=e.message,
                message_zh=e.message_zh or e.message,
            )
            for e in checked.errors[:MAX_REPORTED_ERRORS]
        ],
        errors_total=len(checked.errors),
        warnings=checked.warnings,
        preview=[_preview(row, applicant) for row, applicant in checked.importable[:PREVIEW_ROWS]],
    )


def _hashed_chunks(
    checked: RosterCheck, size: int
) -> Iterator[list[tuple[tuple[int, ApplicantData], str]]]:
    """The importable rows with their hashes, `size` at a time. Paired a chunk at a time:
    100,000 pairs made at once would live through the whole write, for every full
    collection to walk."""
    for start in range(0, len(checked.importable), size):
        end = start + size
        yield list(zip(checked.importable[start:end], checked.id_hashes[start:end], strict=True))


_ChunkRows = tuple[list[dict[str, Any]], list[dict[str, Any]], list[OutboxItem]]


def _chunk_rows(
    chunk: Iterable[tuple[tuple[int, ApplicantData], str]],
    *,
    pii: PiiCipher,
    principal: Principal,
    org: Org,
    roster_id: str,
    request_id: str | None,
) -> _ChunkRows:
    """Application rows (encrypting the person), transition rows and events for one chunk."""
    now = datetime.now(UTC)
    applications: list[dict[str, Any]] = []
    transitions: list[dict[str, Any]] = []
    events: list[OutboxItem] = []
    for (row, applicant), id_hash in chunk:
        application_id = new_id()
        category = applicant.category.value
        subtype = applicant.subtype.value if applicant.subtype else None
        applications.append(
            {
                "id": application_id,
                "org_id": org.id,
                "org_path": org.path,
                "roster_id": roster_id,
                "status": ApplicationStatus.on_roster.value,
                "name": applicant.name,
                **protect(pii, applicant.id, applicant.phone, id_number_hash=id_hash),
                "household_type": applicant.household_type.value,
                "category": category,
                "subtype": subtype,
                "employer": applicant.employer,
                "form_ref": applicant.form_ref,
                "submitted_by": principal.subject,
                "created_at": now,
                "updated_at": now,
            }
        )
        transitions.append(
            {
                "id": new_id(),
                "entity": "application",
                "entity_id": application_id,
                "from_state": None,
                "to_state": ApplicationStatus.on_roster.value,
                "actor": principal.subject,
                "actor_role": principal.role.value,
                "reason": None,
                "request_id": request_id,
                "details": {
                    "roster_id": roster_id,
                    "form_ref": applicant.form_ref,
                    "source": "import",
                    "row": row,
                },
                "at": now,
            }
        )
        events.append(
            OutboxItem(
                ApplicationSubmitted(
                    application_id=application_id,
                    org_id=org.id,
                    roster_id=roster_id,
                    category=category,
                    subtype=subtype,
                ),
                application_id,
                org.path,
            )
        )
    return applications, transitions, events


async def write(
    session: AsyncSession,
    principal: Principal,
    org: Org,
    pii: PiiCipher,
    checked: RosterCheck,
    *,
    title: str,
    filename: str,
    progress: ProgressFactory = silent,
) -> Roster:
    """Create the roster and its applications, transitions and events, chunk by chunk."""
    roster = Roster(
        id=new_id(),
        org_id=org.id,
        org_path=org.path,
        title=title,
        source="import",
        filename=filename,
        submitted_by=principal.subject,
    )
    session.add(roster)
    await session.flush()
    request_id = request_id_var.get()
    bar = progress("writing", len(checked.importable))

    # One thread of its own prepares the chunks (two Fernet encryptions a row: CPU work,
    # off the event loop), in order and up to PREPARED_AHEAD ahead of the writes, so it is
    # never idle while the database stores a chunk.
    loop = asyncio.get_running_loop()
    preparer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roster-import")
    waiting = _hashed_chunks(checked, CHUNK_ROWS)
    prepared: deque[asyncio.Future[_ChunkRows]] = deque()

    def prepare_ahead() -> None:
        while len(prepared) < PREPARED_AHEAD and (chunk := next(waiting, None)) is not None:
            rows = partial(
                _chunk_rows,
                chunk,
                pii=pii,
                principal=principal,
                org=org,
                roster_id=roster.id,
                request_id=request_id,
            )
            prepared.append(loop.run_in_executor(preparer, rows))

    try:
        prepare_ahead()
        while prepared:
            applications, transitions, events = await prepared.popleft()
            prepare_ahead()
            await repository.insert_applications(session, applications)
            await repository.insert_transitions(session, transitions)
            await record_events(session, outbox, events, new_aggregates=True)
            bar.update(len(applications))
    except IntegrityError as exc:
        # Only the one-pending-application-per-person index can fire: a concurrent
        # application for someone on this roster committed after our duplicate check.
        raise ImportConflict() from exc
    finally:
        preparer.shutdown(wait=False, cancel_futures=True)
        if running := [future for future in prepared if not future.done()]:
            # A chunk's thread runs on regardless: wait for it, so nothing outlives the import.
            await asyncio.wait(running)
        bar.close()
    return roster


async def import_roster(
    session: AsyncSession,
    principal: Principal,
    org: Org,
    pii: PiiCipher,
    data: bytes,
    filename: str | None,
    *,
    dry_run: bool,
    skip_invalid: bool = False,
    title: str | None = None,
    progress: ProgressFactory = silent,
) -> RosterImportReport:
    """Check a roster file and, unless a dry run, import its good rows as one roster."""
    principal.require(Action.rosters_import, org.path)
    if org.status != OrgStatus.active:
        raise OrgDissolved(details={"field": "org_id"})
    name = clean_filename(filename)
    checked = await check(session, pii, await asyncio.to_thread(read_file, data, name), progress)
    if dry_run:
        return report(checked, dry_run=True)
    if checked.errors and not skip_invalid:
        raise RosterHasErrors(details=report(checked, dry_run=False).model_dump(mode="json"))
    if not checked.importable:
        return report(checked, dry_run=False)
    roster = await write(
        session,
        principal,
        org,
        pii,
        checked,
        title=(title or f"{name} 导入")[:200],
        filename=name,
        progress=progress,
    )
    log.info(
        "roster imported",
        extra={
            "roster_id": roster.id,
            "org_id": org.id,
            "rows": len(checked.importable),
            "skipped": checked.rows_total - len(checked.importable),
        },
    )
    return report(checked, dry_run=False, roster_id=roster.id, imported=len(checked.importable))


# ---------------------------------------------------------------- export


@dataclass
class ExportedRoster:
    """An export written to a temporary file, rewound; the caller streams and closes it."""

    file: BinaryIO
    filename: str
    ascii_filename: str
    media_type: str
    rows: int

    def chunks(self, size: int = 64 * 1024) -> Iterator[bytes]:
        try:
            while chunk := self.file.read(size):
                yield chunk
        finally:
            self.file.close()


E = TypeVar("E", bound=LabelledEnum)


def _label(enum: type[E], value: str | None) -> str:
    """The Chinese label of a stored code, which is what the template's readers type."""
    if not value:
        return ""
    try:
        return enum.parse(value).label_zh
    except ValueError:
        return value


def _display_phone(phone: str) -> str:
    """Mainland mobiles as the 11 digits people write; anything else stays E.164."""
    if phone.startswith("+861") and len(phone) == 14:
        return phone[3:]
    return phone


def _export_rows(
    rows: Sequence[Any], *, start: int, full: bool, pii: PiiCipher, org_names: dict[str, str]
) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for seq, member in enumerate(rows, start=start):
        out.append(
            {
                "seq": str(seq),
                "name": member.name,
                "id_number": pii.decrypt(member.id_number_encrypted)
                if full
                else member.id_number_masked,
                "phone": _display_phone(pii.decrypt(member.phone_encrypted))
                if full
                else member.phone_masked,
                "household_type": _label(HouseholdType, member.household_type),
                "category": _label(MemberCategory, member.category),
                "subtype": _label(NewEmploymentSubtype, member.subtype),
                "employer": member.employer or "",
                "form_ref": member.form_ref,
                "member_no": member.member_no,
                "org_name": org_names.get(member.org_id, ""),
            }
        )
    return out


def _write_file(rows: list[dict[str, str]], fmt: ExportFormat) -> BinaryIO:
    # Small exports stay in memory; a county-wide one spills to disk.
    out = cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024))  # noqa: SIM115
    if fmt is ExportFormat.xlsx:
        write_roster_xlsx(rows, out)
    else:
        text = io.TextIOWrapper(out, encoding="utf-8", newline="")
        write_roster_csv(rows, text)
        text.flush()
        text.detach()
    out.seek(0)
    return out


def export_filenames(org: Org, fmt: ExportFormat) -> tuple[str, str]:
    """The download's name (花名册-<org>-<date>) and its ASCII fallback."""
    name = re.sub(r'[\\/:*?"<>|\s]+', "_", org.name).strip("_") or "org"
    day = today_in_china().strftime("%Y%m%d")
    return f"花名册-{name}-{day}.{fmt.value}", f"roster-{day}.{fmt.value}"


async def export_roster(
    session: AsyncSession,
    principal: Principal,
    org: Org,
    pii: PiiCipher,
    *,
    fmt: ExportFormat = ExportFormat.xlsx,
    status: ExportStatus = ExportStatus.active,
    masked: bool = False,
) -> ExportedRoster:
    """The members of the org's subtree as a roster file in the import template's layout.

    ID numbers and phones are in full only for a principal who may read personal data
    (and did not ask for `masked`).
    """
    principal.require(Action.rosters_export, org.path)
    full = principal.may(Action.members_read_personal) and not masked
    org_names = await repository.org_names_within(session, org.path)
    rows: list[dict[str, str]] = []
    after: str | None = None
    while True:
        page = await repository.members_for_export(
            session,
            within_path=org.path,
            status=None if status is ExportStatus.all else status.value,
            after_member_no=after,
            limit=EXPORT_PAGE,
        )
        if not page:
            break
        # Decrypting is CPU work: off the event loop, a page at a time.
        rows.extend(
            await asyncio.to_thread(
                _export_rows, page, start=len(rows) + 1, full=full, pii=pii, org_names=org_names
            )
        )
        after = page[-1].member_no
        if len(page) < EXPORT_PAGE:
            break
    if full and rows:
        mark_personal_data_read(org.path)
    file = await asyncio.to_thread(_write_file, rows, fmt)
    log.info(
        "roster exported",
        extra={
            "org_id": org.id,
            "rows": len(rows),
            "personal_data": "full" if full else "masked",
            "actor": principal.subject,
        },
    )
    filename, ascii_filename = export_filenames(org, fmt)
    return ExportedRoster(
        file=file,
        filename=filename,
        ascii_filename=ascii_filename,
        media_type=XLSX_MEDIA_TYPE if fmt is ExportFormat.xlsx else CSV_MEDIA_TYPE,
        rows=len(rows),
    )
