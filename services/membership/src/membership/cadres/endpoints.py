"""`/v1/cadres` and `/v1/orgs/{id}/cadres`: union cadres (工会干部)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from gonghui_shared.deps import PageDep, PrincipalDep, SessionDep
from gonghui_shared.errors import ERROR_RESPONSES
from gonghui_shared.pagination import PageOut, page_of
from membership.cadres import repository, service
from membership.cadres.models import CadreRole
from membership.cadres.schemas import CadreCreate, CadreEnd, CadreRead

router = APIRouter(tags=["cadres"], responses=ERROR_RESPONSES)


@router.post("/v1/orgs/{org_id}/cadres", status_code=status.HTTP_201_CREATED)
async def appoint_cadre(
    org_id: str, body: CadreCreate, principal: PrincipalDep, session: SessionDep
) -> CadreRead:
    """Appoint an active member of this org or one below it to a role in this org."""
    return await service.appoint(session, principal, org_id, body)


@router.get("/v1/cadres")
async def list_cadres(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    org_id: Annotated[
        str | None, Query(description="whose cadres; defaults to your own org")
    ] = None,
    subtree: Annotated[bool, Query(description="include the orgs below it")] = True,
    role: CadreRole | None = None,
    active: Annotated[bool, Query(description="current appointments, or ended ones")] = True,
) -> PageOut[CadreRead]:
    """List the cadres of an org (and those below it), by role and whether still serving."""
    org = await service.listing_scope(session, principal, org_id)
    rows = await repository.list_cadres(
        session,
        within_path=org.path if org and subtree else None,
        org_id=org.id if org and not subtree else None,
        role=role.value if role else None,
        active=active,
        cursor=page.cursor,
        limit=page.limit,
    )
    items, next_cursor = page_of(rows, page.limit, id_of=lambda row: row[0].id)
    return PageOut(
        items=[
            service.to_read(cadre, member_name, org_name) for cadre, member_name, org_name in items
        ],
        next_cursor=next_cursor,
    )


@router.post("/v1/cadres/{cadre_id}/end")
async def end_cadre(
    cadre_id: str, body: CadreEnd, principal: PrincipalDep, session: SessionDep
) -> CadreRead:
    """End an appointment (免职, re-election or resignation)."""
    return await service.end(session, principal, cadre_id, body)
