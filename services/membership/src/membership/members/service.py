"""Members after admission: reading them, transfers between unions, and the end of membership."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.audit import mark_personal_data_read
from gonghui_shared.auth import Principal
from gonghui_shared.clock import today_in_china
from gonghui_shared.contracts.membership import (
    MemberExpelled,
    MemberLapsed,
    MembershipEnded,
    MemberTransferred,
    MemberWithdrawn,
)
from gonghui_shared.errors import Conflict, Forbidden, NotFound, Unprocessable
from gonghui_shared.identity import InvalidPhone, normalize_phone
from gonghui_shared.permissions import Action, Role
from gonghui_shared.pii import PiiCipher
from gonghui_shared.reads import Reader
from gonghui_shared.vocabulary import MemberCategory
from membership.audit import service as audit
from membership.events.publish import publish
from membership.members import repository
from membership.members.models import Member, MemberStatus, Transfer, TransferStatus
from membership.members.repository import MemberRecord
from membership.members.schemas import (
    MemberLookupRead,
    MemberMatch,
    MemberRead,
    MembershipEnd,
    TransferCreate,
)
from membership.orgs import service as orgs
from membership.orgs.models import Org, OrgStatus


class MemberNotFound(NotFound):
    code = "member_not_found"
    message = "Member not found"
    message_zh = "会员不存在"


class MembershipNotActive(Conflict):
    code = "membership_not_active"
    message = "The membership has ended"
    message_zh = "该会员资格已终止"


class TransferPending(Conflict):
    code = "transfer_pending"
    message = "The member already has a transfer waiting for the receiving union"
    message_zh = "该会员已有待接收的转会申请"


class TransferNotFound(NotFound):
    code = "transfer_not_found"
    message = "Transfer not found"
    message_zh = "转会申请不存在"


class TransferAlreadyDecided(Conflict):
    code = "transfer_already_decided"
    message = "The transfer was already accepted or declined"
    message_zh = "该转会申请已处理"


class InvalidTransferTarget(Unprocessable):
    code = "invalid_transfer_target"
    message = "The receiving union must be another active organisation"
    message_zh = "接收工会必须是另一个正常运行的工会组织"


def _whole_years(start: date, end: date) -> int:
    return max(0, end.year - start.year - ((end.month, end.day) < (start.month, start.day)))


def to_read(
    member: Member | MemberRecord, org_name: str, principal: Principal, pii: PiiCipher
) -> MemberRead:
    full = principal.may(Action.members_read_personal)
    if full:
        mark_personal_data_read(member.org_path)
    return MemberRead(
        member_no=member.member_no,
        name=member.name,
        org_id=member.org_id,
        org_name=org_name,
        status=MemberStatus(member.status),
        category=member.category,
        category_label_zh=MemberCategory.parse(member.category).label_zh,
        subtype=member.subtype,
        household_type=member.household_type,
        gender=member.gender,
        birth_year=member.birth_date.year,
        birth_date=member.birth_date if full else None,
        id_number=pii.decrypt(member.id_number_encrypted) if full else member.id_number_masked,
        phone=pii.decrypt(member.phone_encrypted) if full else member.phone_masked,
        personal_data="full" if full else "masked",
        employer=member.employer,
        joined_on=member.joined_on,
        ended_on=member.ended_on,
        end_reason=member.end_reason,
        membership_years=_whole_years(member.joined_on, member.ended_on or today_in_china()),
    )


async def lookup_by_phone(
    session: AsyncSession, principal: Principal, pii: PiiCipher, phone: str
) -> MemberLookupRead:
    """The active members with this phone, for the gateway's login by one-time code."""
    principal.require(Action.members_lookup)
    try:
        normalised = normalize_phone(phone)
    except InvalidPhone as exc:
        raise Unprocessable(exc.message, exc.message_zh, details={"field": "phone"}) from None
    members = await repository.active_by_phone_hash(session, pii.lookup_hash(normalised))
    return MemberLookupRead(
        members=[
            MemberMatch(member_no=m.member_no, org_id=m.org_id, joined_on=m.joined_on)
            for m in members
        ]
    )


async def get_visible(
    session: AsyncSession,
    principal: Principal,
    member_no: str,
    action: Action,
    *,
    lock: bool = False,
) -> Member:
    """The member, if the principal may act on it: by org scope, or as the member themself."""
    principal.require(action)
    member = await repository.by_number(session, member_no, lock=lock)
    if member is None:
        raise MemberNotFound()
    _require_visible(principal, member, action)
    return member


async def get_visible_record(
    reader: Reader, principal: Principal, member_no: str, action: Action
) -> MemberRecord:
    """`get_visible` for reading only: the member's columns and its org's name, in one query."""
    principal.require(action)
    found = await repository.record_by_number(reader, member_no)
    if found is None:
        raise MemberNotFound()
    _require_visible(principal, found, action)
    return found


def _require_visible(principal: Principal, member: Member | MemberRecord, action: Action) -> None:
    if principal.role is Role.member:
        if principal.member_no != member.member_no:
            raise Forbidden("Members may only see their own membership", "会员只能查看本人的会籍")
    else:
        principal.require(action, member.org_path)


async def request_transfer(
    session: AsyncSession, principal: Principal, member_no: str, data: TransferCreate
) -> Transfer:
    """The member or the sending union asks to move the membership (会员关系接转)."""
    member = await get_visible(session, principal, member_no, Action.members_transfer, lock=True)
    if member.status != MemberStatus.active:
        raise MembershipNotActive()
    # The receiving union may be in another county: anyone may name it, only it accepts.
    target = await session.get(Org, data.to_org_id)
    if target is None:
        raise orgs.OrgNotFound(details={"field": "to_org_id"})
    if target.id == member.org_id or target.status != OrgStatus.active:
        raise InvalidTransferTarget(details={"field": "to_org_id"})
    if await repository.pending_transfer(session, member.id):
        raise TransferPending()
    transfer = Transfer(
        member_id=member.id,
        member_no=member.member_no,
        from_org_id=member.org_id,
        from_org_path=member.org_path,
        to_org_id=target.id,
        to_org_path=target.path,
        reason=data.reason,
        requested_by=principal.subject,
    )
    session.add(transfer)
    await session.flush()
    await audit.record_transition(
        session,
        principal,
        entity="transfer",
        entity_id=transfer.id,
        from_state=None,
        to_state=TransferStatus.requested,
        reason=data.reason,
        details={"member_no": member.member_no, "to_org_id": target.id},
    )
    return transfer


async def _decidable(session: AsyncSession, principal: Principal, transfer_id: str) -> Transfer:
    principal.require(Action.members_transfer)
    transfer = await repository.get_transfer(session, transfer_id, lock=True)
    if transfer is None:
        raise TransferNotFound()
    if principal.role is Role.member:
        raise Forbidden("Only the receiving union decides a transfer", "转会申请由接收工会处理")
    principal.require(Action.members_transfer, transfer.to_org_path)
    if transfer.status != TransferStatus.requested:
        raise TransferAlreadyDecided()
    return transfer


async def accept_transfer(
    session: AsyncSession, principal: Principal, transfer_id: str
) -> Transfer:
    """The receiving union takes the member in; number, joining date and history stay."""
    transfer = await _decidable(session, principal, transfer_id)
    member = await session.get(Member, transfer.member_id, with_for_update=True)
    assert member is not None  # a transfer always references a member
    if member.status != MemberStatus.active:
        raise MembershipNotActive()
    target = await session.get(Org, transfer.to_org_id)
    assert target is not None
    from_org_id, from_path = member.org_id, member.org_path
    member.org_id, member.org_path = target.id, target.path
    transfer.status = TransferStatus.accepted
    transfer.decided_by = principal.subject
    transfer.decided_at = datetime.now(UTC)
    await session.flush()
    await audit.record_transition(
        session,
        principal,
        entity="transfer",
        entity_id=transfer.id,
        from_state=TransferStatus.requested,
        to_state=TransferStatus.accepted,
    )
    await audit.record_transition(
        session,
        principal,
        entity="member",
        entity_id=member.id,
        from_state=member.status,
        to_state=member.status,
        reason=transfer.reason,
        details={"transfer_id": transfer.id, "from_org_id": from_org_id, "to_org_id": target.id},
    )
    await publish(
        session,
        MemberTransferred(
            member_id=member.id,
            member_no=member.member_no,
            transfer_id=transfer.id,
            from_org_id=from_org_id,
            to_org_id=target.id,
            from_org_path=from_path,
            category=member.category,
        ),
        aggregate_id=member.id,
        org_path=target.path,
    )
    return transfer


async def decline_transfer(
    session: AsyncSession, principal: Principal, transfer_id: str, reason: str
) -> Transfer:
    transfer = await _decidable(session, principal, transfer_id)
    transfer.status = TransferStatus.declined
    transfer.decided_by = principal.subject
    transfer.decided_at = datetime.now(UTC)
    transfer.decline_reason = reason
    await session.flush()
    await audit.record_transition(
        session,
        principal,
        entity="transfer",
        entity_id=transfer.id,
        from_state=TransferStatus.requested,
        to_state=TransferStatus.declined,
        reason=reason,
    )
    return transfer


_ENDINGS: dict[MemberStatus, type[MembershipEnded]] = {
    MemberStatus.withdrawn: MemberWithdrawn,
    MemberStatus.lapsed: MemberLapsed,
    MemberStatus.expelled: MemberExpelled,
}


async def end_membership(
    session: AsyncSession,
    principal: Principal,
    member_no: str,
    how: MemberStatus,
    data: MembershipEnd,
) -> Member:
    """Withdrawal, lapse or expulsion: the member keeps the number and the history."""
    member = await get_visible(session, principal, member_no, Action.members_end, lock=True)
    if member.status != MemberStatus.active:
        raise MembershipNotActive()
    pending = await repository.pending_transfer(session, member.id)
    if pending is not None:
        pending.status = TransferStatus.declined
        pending.decline_reason = "membership ended"
    member.status = how
    member.ended_on = data.ended_on or today_in_china()
    member.end_reason = data.reason
    # A cadre must be a member: the appointments end with the membership.
    ended_posts = await repository.end_cadre_posts(session, member.id, member.ended_on)
    await session.flush()
    await audit.record_transition(
        session,
        principal,
        entity="member",
        entity_id=member.id,
        from_state=MemberStatus.active,
        to_state=how,
        reason=data.reason,
        details={"cadre_posts_ended": ended_posts} if ended_posts else None,
    )
    event = _ENDINGS[how](
        member_id=member.id,
        member_no=member.member_no,
        org_id=member.org_id,
        category=member.category,
        reason=data.reason,
    )
    await publish(session, event, aggregate_id=member.id, org_path=member.org_path)
    return member
