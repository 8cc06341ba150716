"""`/v1/members` and `/v1/transfers`: members after admission."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status

from gonghui_shared.deps import PageDep, Principal, PrincipalDep, SessionDep, current_principal
from gonghui_shared.errors import ERROR_RESPONSES, Forbidden, Unprocessable
from gonghui_shared.hot_routes import HotRoute
from gonghui_shared.pagination import PageOut, page_of
from gonghui_shared.permissions import Action, Role
from gonghui_shared.runtime import ServiceRuntime
from gonghui_shared.vocabulary import MemberCategory
from membership.audit import service as audit
from membership.deps import PiiDep
from membership.members import repository, service
from membership.members.models import Member, MemberStatus
from membership.members.schemas import (
    MemberLookup,
    MemberLookupRead,
    MemberRead,
    MembershipEnd,
    TransferCreate,
    TransferDecline,
    TransferRead,
    TransitionRead,
)
from membership.orgs import service as orgs

router = APIRouter(prefix="/v1", tags=["members"], responses=ERROR_RESPONSES)


async def _read(
    session: SessionDep, member: Member, principal: PrincipalDep, pii: PiiDep
) -> MemberRead:
    names = await repository.org_names(session, {member.org_id})
    return service.to_read(member, names.get(member.org_id, ""), principal, pii)


@router.get("/members")
async def list_members(
    principal: PrincipalDep,
    session: SessionDep,
    pii: PiiDep,
    page: PageDep,
    org_id: Annotated[str | None, Query(description="members of this org's whole subtree")] = None,
    category: Annotated[
        str | None, Query(description="migrant_worker, new_employment, employee, other")
    ] = None,
    status: MemberStatus | None = None,
    q: Annotated[
        str | None, Query(max_length=50, description="text in the name, or a member number prefix")
    ] = None,
) -> PageOut[MemberRead]:
    """List members in your scope, by org subtree, category, status and text."""
    principal.require(Action.members_read)
    if principal.role is Role.member:
        raise Forbidden("Members see only their own membership", "会员只能查看本人的会籍")
    within = principal.subtree
    if org_id:
        within = (await orgs.get_in_scope(session, principal, org_id, Action.members_read)).path
    if category:
        try:
            category = MemberCategory.parse(category).value
        except ValueError as exc:
            raise Unprocessable(str(exc), "会员类别无效", details={"field": "category"}) from exc
    rows = await repository.list_members(
        session,
        within_path=within,
        category=category,
        status=status.value if status else None,
        q=q,
        cursor=page.cursor,
        limit=page.limit,
    )
    items, next_cursor = page_of(rows, page.limit)
    names = await repository.org_names(session, {m.org_id for m in items})
    return PageOut(
        items=[service.to_read(m, names.get(m.org_id, ""), principal, pii) for m in items],
        next_cursor=next_cursor,
    )


@router.post("/members/lookup")
async def lookup_members(
    body: MemberLookup, principal: PrincipalDep, session: SessionDep, pii: PiiDep
) -> MemberLookupRead:
    """Active members with this phone number (only the gateway's login by code may ask)."""
    return await service.lookup_by_phone(session, principal, pii, body.phone)


async def _member(request: Request, principal: Principal, member_no: str) -> Response:
    # The service's busiest read: through the runtime's read pool (asyncpg directly, see
    # `gonghui_shared.reads`) rather than a session, and serialised once here rather than
    # validated again against `MemberRead` by FastAPI.
    runtime: ServiceRuntime = request.app.state.runtime
    member = await runtime.reads.run(
        partial(
            service.get_visible_record,
            principal=principal,
            member_no=member_no,
            action=Action.members_read,
        )
    )
    read = service.to_read(member, member.org_name, principal, runtime.pii)
    return Response(read.model_dump_json(), media_type="application/json")


class MemberLookupRoute(HotRoute):
    """`GET /v1/members/{member_no}`: documented from `get_member`'s signature as any route
    is, but served ahead of FastAPI's router and dependency solving (`HotRoute`), which
    cost a third of the lookup's CPU time. Its inputs need neither: the member number is
    any text of the path, and the caller is resolved by `current_principal` itself, as
    `PrincipalDep` resolves it."""

    async def serve(self, request: Request, inputs: dict[str, Any]) -> Response:
        principal = await current_principal(request)
        return await _member(request, principal, inputs["member_no"])


async def get_member(member_no: str, principal: PrincipalDep, request: Request) -> Response:
    """One member by member number (会员编号)."""
    return await _member(request, principal, member_no)


router.add_api_route(
    "/members/{member_no}",
    get_member,
    methods=["GET"],
    response_model=MemberRead,
    route_class_override=MemberLookupRoute,
)


@router.get("/members/{member_no}/history")
async def member_history(
    member_no: str, principal: PrincipalDep, session: SessionDep
) -> list[TransitionRead]:
    """Every step of the membership: application, approval, transfers, end."""
    member = await service.get_visible(session, principal, member_no, Action.members_read)
    steps = await audit.history(session, "application", member.application_id)
    steps += await audit.history(session, "member", member.id)
    return [TransitionRead.model_validate(s) for s in sorted(steps, key=lambda s: (s.at, s.id))]


@router.post("/members/{member_no}/transfer", status_code=status.HTTP_201_CREATED)
async def request_transfer(
    member_no: str, body: TransferCreate, principal: PrincipalDep, session: SessionDep
) -> TransferRead:
    """Ask to move the membership to another union; the receiving union accepts or declines."""
    return TransferRead.model_validate(
        await service.request_transfer(session, principal, member_no, body)
    )


@router.get("/transfers")
async def list_transfers(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    direction: Annotated[Literal["incoming", "outgoing"], Query()] = "incoming",
    status: Annotated[str | None, Query(description="requested, accepted or declined")] = None,
) -> PageOut[TransferRead]:
    """Transfers into (or out of) the unions in your scope."""
    principal.require(Action.members_transfer)
    if principal.role is Role.member:
        raise Forbidden(
            "Members see transfers through their membership", "会员请通过本人会籍查看转会"
        )
    path = principal.subtree or ""
    rows = await repository.list_transfers(
        session,
        incoming_path=path if direction == "incoming" else None,
        outgoing_path=path if direction == "outgoing" else None,
        status=status,
        cursor=page.cursor,
        limit=page.limit,
    )
    items, next_cursor = page_of(rows, page.limit)
    return PageOut(items=[TransferRead.model_validate(t) for t in items], next_cursor=next_cursor)


@router.post("/transfers/{transfer_id}/accept")
async def accept_transfer(
    transfer_id: str, principal: PrincipalDep, session: SessionDep
) -> TransferRead:
    """The receiving union accepts: the member moves, keeping number, years and history."""
    return TransferRead.model_validate(
        await service.accept_transfer(session, principal, transfer_id)
    )


@router.post("/transfers/{transfer_id}/decline")
async def decline_transfer(
    transfer_id: str, body: TransferDecline, principal: PrincipalDep, session: SessionDep
) -> TransferRead:
    """The receiving union declines, with a reason."""
    return TransferRead.model_validate(
        await service.decline_transfer(session, principal, transfer_id, body.reason)
    )


async def _end(
    how: MemberStatus,
    member_no: str,
    body: MembershipEnd,
    principal: PrincipalDep,
    session: SessionDep,
    pii: PiiDep,
) -> MemberRead:
    member = await service.end_membership(session, principal, member_no, how, body)
    return await _read(session, member, principal, pii)


@router.post("/members/{member_no}/withdraw")
async def withdraw_member(
    member_no: str, body: MembershipEnd, principal: PrincipalDep, session: SessionDep, pii: PiiDep
) -> MemberRead:
    """The member leaves of their own will (退会), with a reason."""
    return await _end(MemberStatus.withdrawn, member_no, body, principal, session, pii)


@router.post("/members/{member_no}/lapse")
async def lapse_member(
    member_no: str, body: MembershipEnd, principal: PrincipalDep, session: SessionDep, pii: PiiDep
) -> MemberRead:
    """The membership lapses, with a reason."""
    return await _end(MemberStatus.lapsed, member_no, body, principal, session, pii)


@router.post("/members/{member_no}/expel")
async def expel_member(
    member_no: str, body: MembershipEnd, principal: PrincipalDep, session: SessionDep, pii: PiiDep
) -> MemberRead:
    """The member is expelled (除名), with a reason."""
    return await _end(MemberStatus.expelled, member_no, body, principal, session, pii)
