"""`/v1/orgs`: union organisations and their tree."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from gonghui_shared.deps import PageDep, PrincipalDep, SessionDep
from gonghui_shared.errors import ERROR_RESPONSES
from gonghui_shared.pagination import PageOut, page_of
from gonghui_shared.permissions import Action
from membership.orgs import repository, service
from membership.orgs.models import OrgType
from membership.orgs.schemas import OrgCreate, OrgRead, OrgUpdate

router = APIRouter(prefix="/v1/orgs", tags=["orgs"], responses=ERROR_RESPONSES)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_org(body: OrgCreate, principal: PrincipalDep, session: SessionDep) -> OrgRead:
    """Set up a union organisation (建会) under a parent in your scope."""
    return service.to_read(await service.create(session, principal, body))


@router.get("")
async def list_orgs(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    within: Annotated[str | None, Query(description="only this org's subtree (an org id)")] = None,
    parent_id: Annotated[str | None, Query(description="only direct children of this org")] = None,
    org_type: OrgType | None = None,
    q: Annotated[str | None, Query(max_length=100, description="text in the name")] = None,
) -> PageOut[OrgRead]:
    """List organisations in your scope, filtered by subtree, parent, type and name."""
    principal.require(Action.orgs_read)
    scope_path = principal.org_path if principal.org_path else None
    if within:
        scope_path = (await service.get_in_scope(session, principal, within, Action.orgs_read)).path
    rows = await repository.list_orgs(
        session,
        within_path=scope_path,
        parent_id=parent_id,
        org_type=org_type.value if org_type else None,
        q=q,
        cursor=page.cursor,
        limit=page.limit,
    )
    items, next_cursor = page_of(rows, page.limit)
    return PageOut(items=[service.to_read(o) for o in items], next_cursor=next_cursor)


@router.get("/{org_id}")
async def get_org(org_id: str, principal: PrincipalDep, session: SessionDep) -> OrgRead:
    """One organisation."""
    return service.to_read(await service.get_in_scope(session, principal, org_id, Action.orgs_read))


@router.patch("/{org_id}")
async def update_org(
    org_id: str, body: OrgUpdate, principal: PrincipalDep, session: SessionDep
) -> OrgRead:
    """Change an organisation's name, chair, founding date, location or status."""
    return service.to_read(await service.update(session, principal, org_id, body))


@router.get("/{org_id}/children")
async def list_children(
    org_id: str, principal: PrincipalDep, session: SessionDep, page: PageDep
) -> PageOut[OrgRead]:
    """The organisations directly under this one."""
    org = await service.get_in_scope(session, principal, org_id, Action.orgs_read)
    rows = await repository.list_orgs(
        session,
        within_path=None,
        parent_id=org.id,
        org_type=None,
        q=None,
        cursor=page.cursor,
        limit=page.limit,
    )
    items, next_cursor = page_of(rows, page.limit)
    return PageOut(items=[service.to_read(o) for o in items], next_cursor=next_cursor)
