"""Union cadres (工会干部): appointing members of an org's subtree to a role, and ending it."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.auth import Principal
from gonghui_shared.clock import today_in_china
from gonghui_shared.contracts.membership import CadreAppointed
from gonghui_shared.errors import Conflict, NotFound, OutOfScope, Unprocessable
from gonghui_shared.ids import new_id
from gonghui_shared.permissions import Action, Role
from membership.audit.service import record_transition
from membership.cadres import repository
from membership.cadres.models import Cadre, CadreRole
from membership.cadres.schemas import CadreCreate, CadreEnd, CadreRead
from membership.events.publish import publish
from membership.members.models import MemberStatus
from membership.orgs import service as orgs
from membership.orgs.models import Org, OrgStatus

# Dates on union paperwork are Beijing dates, whatever the server's clock zone.

CADRE_ROLE_LABELS_ZH = {
    CadreRole.chair: "主席",
    CadreRole.vice_chair: "副主席",
    CadreRole.committee_member: "委员",
    CadreRole.funds_auditor: "经费审查委员",
    CadreRole.women_worker_director: "女职工委员",
    CadreRole.full_time_worker: "专职工会工作者",
    CadreRole.social_worker: "社会化工会工作者",
}

ACTIVE = "active"
ENDED = "ended"


class CadreNotFound(NotFound):
    code = "cadre_not_found"
    message = "Cadre appointment not found"
    message_zh = "工会干部任职记录不存在"


class MemberNotFound(NotFound):
    code = "member_not_found"
    message = "Member not found"
    message_zh = "会员不存在"


class MemberNotActive(Conflict):
    code = "member_not_active"
    message = "The membership has ended; only active members can be appointed"
    message_zh = "该会员资格已终止，不能任命为工会干部"


class MemberNotInOrg(Unprocessable):
    code = "member_not_in_org"
    message = "The member does not belong to this organisation or any under it"
    message_zh = "该会员不属于本工会组织及其下级组织"


class OrgNotActive(Conflict):
    code = "org_not_active"
    message = "The organisation is dissolved"
    message_zh = "该工会组织已撤销"


class CadreAlreadyAppointed(Conflict):
    code = "cadre_already_appointed"
    message = "The member already holds this role in this organisation"
    message_zh = "该会员已在本工会担任此职务"


class CadreAlreadyEnded(Conflict):
    code = "cadre_already_ended"
    message = "The appointment has already ended"
    message_zh = "该任职已经结束"


class InvalidCadreDate(Unprocessable):
    code = "invalid_cadre_date"
    message = "The date is not possible for this appointment"
    message_zh = "任职日期无效"


def to_read(cadre: Cadre, member_name: str, org_name: str) -> CadreRead:
    role = CadreRole(cadre.role)
    return CadreRead(
        id=cadre.id,
        org_id=cadre.org_id,
        org_name=org_name,
        member_id=cadre.member_id,
        member_no=cadre.member_no,
        member_name=member_name,
        role=role,
        role_label_zh=CADRE_ROLE_LABELS_ZH[role],
        appointed_on=cadre.appointed_on,
        ended_on=cadre.ended_on,
        active=cadre.ended_on is None,
        appointed_by=cadre.appointed_by,
        created_at=cadre.created_at,
    )


async def appoint(
    session: AsyncSession, principal: Principal, org_id: str, data: CadreCreate
) -> CadreRead:
    """Appoint an active member of the org's subtree to a role in the org (任命)."""
    org = await orgs.get_in_scope(session, principal, org_id, Action.cadres_write)
    if org.status != OrgStatus.active:
        raise OrgNotActive()
    if data.appointed_on > today_in_china():
        raise InvalidCadreDate(
            "The appointment date is in the future",
            "任职日期不能晚于今天",
            details={"field": "appointed_on"},
        )
    member = await repository.member_by_no(session, data.member_no)
    if member is None:
        raise MemberNotFound(details={"field": "member_no"})
    # Subtree before status: a member outside the org's subtree reveals nothing about itself.
    if not member.org_path.startswith(org.path):
        raise MemberNotInOrg(details={"field": "member_no"})
    if member.status != MemberStatus.active:
        raise MemberNotActive(details={"field": "member_no", "status": member.status})
    if await repository.holds_role(session, org.id, member.id, data.role.value):
        raise CadreAlreadyAppointed(details={"field": "role"})

    cadre = Cadre(
        id=new_id(),
        org_id=org.id,
        org_path=org.path,
        member_id=member.id,
        member_no=member.member_no,
        role=data.role.value,
        appointed_on=data.appointed_on,
        appointed_by=principal.subject,
    )
    try:
        # The partial unique index settles two simultaneous appointments; the savepoint
        # keeps the request's transaction usable for the error response.
        async with session.begin_nested():
            session.add(cadre)
    except IntegrityError:
        raise CadreAlreadyAppointed(details={"field": "role"}) from None
    await record_transition(
        session,
        principal,
        entity="cadre",
        entity_id=cadre.id,
        from_state=None,
        to_state=ACTIVE,
        details={"org_id": org.id, "member_no": member.member_no, "role": cadre.role},
    )
    await publish(
        session,
        CadreAppointed(
            cadre_id=cadre.id,
            org_id=org.id,
            member_id=member.id,
            member_no=member.member_no,
            role=cadre.role,
            appointed_on=cadre.appointed_on,
        ),
        aggregate_id=cadre.id,
        org_path=org.path,
    )
    return to_read(cadre, member.name, org.name)


async def end(
    session: AsyncSession, principal: Principal, cadre_id: str, data: CadreEnd
) -> CadreRead:
    """End an appointment (免职, 换届 or resignation) as of `ended_on`."""
    principal.require(Action.cadres_write)
    cadre = await repository.get(session, cadre_id)
    if cadre is None:
        raise CadreNotFound()
    principal.require(Action.cadres_write, cadre.org_path)
    if cadre.ended_on is not None:
        raise CadreAlreadyEnded(details={"ended_on": cadre.ended_on.isoformat()})
    if data.ended_on < cadre.appointed_on:
        raise InvalidCadreDate(
            "The appointment cannot end before it began",
            "离任日期不能早于任职日期",
            details={"field": "ended_on", "appointed_on": cadre.appointed_on.isoformat()},
        )
    if data.ended_on > today_in_china():
        raise InvalidCadreDate(
            "The end date is in the future", "离任日期不能晚于今天", details={"field": "ended_on"}
        )
    cadre.ended_on = data.ended_on
    await session.flush()
    await record_transition(
        session,
        principal,
        entity="cadre",
        entity_id=cadre.id,
        from_state=ACTIVE,
        to_state=ENDED,
        reason=data.reason,
        details={"ended_on": data.ended_on.isoformat()},
    )
    member_name, org_name = await repository.names(session, cadre)
    return to_read(cadre, member_name, org_name)


async def listing_scope(
    session: AsyncSession, principal: Principal, org_id: str | None
) -> Org | None:
    """The org whose cadres to list: the one asked for, else the principal's own; None for all."""
    principal.require(Action.cadres_read)
    org_id = org_id or principal.org_id
    if org_id:
        return await orgs.get_in_scope(session, principal, org_id, Action.cadres_read)
    if principal.role is Role.platform_admin:
        return None
    raise OutOfScope("Your token names no organisation", "令牌未指明所属组织")
