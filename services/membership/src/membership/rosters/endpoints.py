"""`/v1/rosters/template|import|export`: roster (花名册) files in and out.

These fixed paths are routed before the admissions module's `/v1/rosters/{roster_id}`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute
from starlette.types import Message

from gonghui_shared.deps import PrincipalDep, RuntimeDep, SessionDep
from gonghui_shared.errors import ERROR_RESPONSES, ErrorResponse
from gonghui_shared.permissions import Action
from gonghui_shared.settings import ServiceSettings
from membership.config import MembershipSettings
from membership.deps import PiiDep
from membership.orgs import service as orgs
from membership.rosters import service
from membership.rosters.schemas import ExportFormat, ExportStatus, RosterImportReport, TemplateRead
from membership.rosters.service import RosterTooLarge

# Room for the multipart boundaries, part headers and small fields around the file itself.
_MULTIPART_SLACK = 64 * 1024
_UPLOAD_READ_BYTES = 256 * 1024


def _max_bytes(settings: ServiceSettings) -> int:
    assert isinstance(settings, MembershipSettings)
    return settings.roster_max_bytes


class LimitedBodyRoute(APIRoute):
    """Refuses a request body over the roster limit while it arrives, not after spooling it all.

    FastAPI parses a multipart body before any dependency runs, so the limit has to sit
    here: a declared Content-Length over the limit is refused unread, and a chunked body
    is cut off at the first chunk past it.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            max_bytes = _max_bytes(request.app.state.runtime.settings)
            limit = max_bytes + _MULTIPART_SLACK
            too_large = RosterTooLarge(details={"field": "file", "max_bytes": max_bytes})
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise too_large
            received = 0
            receive = request.receive

            async def counting_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise too_large
                return message

            try:
                return await handler(Request(request.scope, counting_receive))
            except Exception:
                # FastAPI turns any failure while parsing the form into a 400.
                if received > limit:
                    raise too_large from None
                raise

        return limited


router = APIRouter(
    prefix="/v1/rosters",
    tags=["rosters"],
    responses=ERROR_RESPONSES,
    route_class=LimitedBodyRoute,
)

_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            service.XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
        },
        "description": "the roster file, as a download",
    }
}


async def _read_upload(upload: UploadFile, max_bytes: int) -> bytes:
    """The uploaded file's bytes, read in chunks; stops as soon as it passes the limit."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await upload.read(_UPLOAD_READ_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise RosterTooLarge(details={"field": "file", "max_bytes": max_bytes})
        chunks.append(chunk)
    return b"".join(chunks)


@router.get("/template")
async def get_template(principal: PrincipalDep, runtime: RuntimeDep) -> TemplateRead:
    """The roster template's columns: codes, Chinese headers, which ones are required."""
    service.require_roster_access(principal)
    return service.template(_max_bytes(runtime.settings))


@router.get("/template.xlsx", response_class=Response, responses=_FILE_RESPONSES)
async def download_template(principal: PrincipalDep) -> Response:
    """The blank roster template as an Excel workbook (ID and phone columns formatted as text)."""
    service.require_roster_access(principal)
    return Response(
        service.blank_template(ExportFormat.xlsx),
        media_type=service.XLSX_MEDIA_TYPE,
        headers={
            "Content-Disposition": service.content_disposition(
                "花名册模板.xlsx", "roster-template.xlsx"
            )
        },
    )


@router.get("/template.csv", response_class=Response, responses=_FILE_RESPONSES)
async def download_template_csv(principal: PrincipalDep) -> Response:
    """The blank roster template as UTF-8 CSV (with a BOM, so Excel opens it correctly)."""
    service.require_roster_access(principal)
    return Response(
        service.blank_template(ExportFormat.csv),
        media_type=service.CSV_MEDIA_TYPE,
        headers={
            "Content-Disposition": service.content_disposition(
                "花名册模板.csv", "roster-template.csv"
            )
        },
    )


@router.post(
    "/import",
    responses={413: {"model": ErrorResponse, "description": "The file is over the upload limit"}},
)
async def import_roster(
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
    pii: PiiDep,
    file: Annotated[UploadFile, File(description="the roster, .xlsx (first sheet) or .csv")],
    org_id: Annotated[str, Query(description="the org the workers apply to")],
    dry_run: Annotated[bool, Query(description="check only; write nothing")] = False,
    skip_invalid: Annotated[
        bool, Query(description="import the good rows even if others have errors")
    ] = False,
    title: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description='default "<filename> 导入"'),
    ] = None,
) -> RosterImportReport:
    """Import a roster file: every row checked; one pending application per good row."""
    org = await orgs.get_in_scope(session, principal, org_id, Action.rosters_import)
    data = await _read_upload(file, _max_bytes(runtime.settings))
    return await service.import_roster(
        session,
        principal,
        org,
        pii,
        data,
        file.filename,
        dry_run=dry_run,
        skip_invalid=skip_invalid,
        title=title,
    )


@router.get("/export", response_class=StreamingResponse, responses=_FILE_RESPONSES)
async def export_roster(
    principal: PrincipalDep,
    session: SessionDep,
    pii: PiiDep,
    org_id: Annotated[str, Query(description="members of this org and every org below it")],
    format: ExportFormat = ExportFormat.xlsx,
    status: ExportStatus = ExportStatus.active,
) -> StreamingResponse:
    """Members of an org's subtree as a roster file in the import template's layout."""
    org = await orgs.get_in_scope(session, principal, org_id, Action.rosters_export)
    exported = await service.export_roster(session, principal, org, pii, fmt=format, status=status)
    return StreamingResponse(
        exported.chunks(),
        media_type=exported.media_type,
        headers={
            "Content-Disposition": service.content_disposition(
                exported.filename, exported.ascii_filename
            ),
            "X-Roster-Rows": str(exported.rows),
        },
    )
