"""`/v1/units`: administrative units (行政区划); `/v1/orgs/{id}/coverage`: union coverage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile

from gonghui_shared.deps import PageDep, PrincipalDep, SessionDep
from gonghui_shared.errors import ERROR_RESPONSES, PayloadTooLarge
from gonghui_shared.pagination import PageOut, page_of
from gonghui_shared.permissions import Action
from membership.units import repository, service
from membership.units.schemas import Coverage, UnitLevel, UnitRead, UnitsImported

router = APIRouter(tags=["units"], responses=ERROR_RESPONSES)

# The whole national list is about 40 MB; a county's is a few kB, a province's under 5 MB.
MAX_UNITS_FILE_BYTES = 5 * 1024 * 1024


@router.post(
    "/v1/units/import",
    responses={413: {"description": "The file is larger than 5 MB"}},
)
async def import_units(
    principal: PrincipalDep,
    session: SessionDep,
    file: Annotated[
        UploadFile,
        File(
            description="csv in the national layout: 统计用区划代码,城乡分类代码,名称[,经度,纬度]; "
            "UTF-8 or GB18030"
        ),
    ],
) -> UnitsImported:
    """Import or update units from a statistical division code list (a county: its own codes)."""
    data = await file.read(MAX_UNITS_FILE_BYTES + 1)
    if len(data) > MAX_UNITS_FILE_BYTES:
        raise PayloadTooLarge(
            f"The units file is larger than {MAX_UNITS_FILE_BYTES // (1024 * 1024)} MB",
            f"行政区划文件超过 {MAX_UNITS_FILE_BYTES // (1024 * 1024)} MB",
            details={"field": "file", "max_bytes": MAX_UNITS_FILE_BYTES},
        )
    return await service.import_units(session, principal, data)


@router.get("/v1/units")
async def list_units(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    parent_code: Annotated[
        str | None, Query(pattern=r"^\d{12}$", description="only units directly under this one")
    ] = None,
    level: UnitLevel | None = None,
    q: Annotated[str | None, Query(max_length=100, description="text in the name")] = None,
) -> PageOut[UnitRead]:
    """List administrative units by code, filtered by parent, level and name."""
    principal.require(Action.orgs_read)
    rows = await repository.list_units(
        session, parent_code=parent_code, level=level, q=q, cursor=page.cursor, limit=page.limit
    )
    items, next_cursor = page_of(rows, page.limit, id_of=lambda u: u.code)
    return PageOut(items=[UnitRead.model_validate(u) for u in items], next_cursor=next_cursor)


@router.get("/v1/units/{code}")
async def get_unit(code: str, principal: PrincipalDep, session: SessionDep) -> UnitRead:
    """One administrative unit."""
    principal.require(Action.orgs_read)
    return UnitRead.model_validate(await service.get(session, code))


@router.get("/v1/orgs/{org_id}/coverage")
async def org_coverage(
    org_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=0, le=1000, description="most uncovered units listed")] = 100,
) -> Coverage:
    """Union coverage (建会率) of the org's region: units with and without a union, per level."""
    return await service.coverage(session, principal, org_id, limit)
