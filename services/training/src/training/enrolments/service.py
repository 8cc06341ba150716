"""Enrolment (报名): members and non-members of the rural labour force, capacity and waitlist.

A person is enrolled once per session (`person_key`: `m:<member_no>` for a member,
a keyed hash of the ID number for anyone else). While places remain an enrolment
takes one; after that it joins the waitlist, and a cancellation that frees a place
promotes the earliest waitlisted person in the same transaction. Places are counted
and promoted under a lock on the session row, so concurrent requests never overfill
the session nor promote the same person twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.audit import mark_personal_data_read
from gonghui_shared.auth import Principal
from gonghui_shared.contracts.training import Enrolled, EnrolmentCancelled
from gonghui_shared.db import insert_unless_conflicting
from gonghui_shared.errors import Conflict, Forbidden, NotFound, OutOfScope, Unprocessable
from gonghui_shared.identity import InvalidIdNumber, InvalidPhone, normalize_phone, parse_id_number
from gonghui_shared.ids import new_id
from gonghui_shared.permissions import Action, Role
from gonghui_shared.pii import PiiCipher, mask_id_number, mask_phone
from training.base import utcnow
from training.enrolments import repository
from training.enrolments.models import Enrolment, EnrolmentStatus
from training.enrolments.schemas import (
    EnrolmentCreate,
    EnrolmentRead,
    EnrolmentSession,
    EnrolmentWithSession,
)
from training.events.publish import publish
from training.replicas.models import MemberReplica, OrgReplica
from training.replicas.service import (
    OrgNotKnown,
    active_member,
    member_key,
    non_member_key,
    org_in_scope,
)
from training.sessions import repository as sessions_repository
from training.sessions.models import SessionStatus, TrainingSession
from training.sessions.service import get_session_in_scope

RURAL_LABOUR = "rural_labour"  # worker_category of a non-member (农村劳动力)

# Late enrolment is allowed while the session runs.
_ENROLLING = frozenset({SessionStatus.open, SessionStatus.in_progress})
_FINISHED = frozenset({SessionStatus.completed, SessionStatus.cancelled})
# Holding a place or waiting for one: enrolling again is a duplicate.
_ACTIVE = frozenset({EnrolmentStatus.enrolled, EnrolmentStatus.waitlisted})


class EnrolmentNotFound(NotFound):
    code = "enrolment_not_found"
    message = "Enrolment not found"
    message_zh = "报名记录不存在"


class EnrolmentClosed(Conflict):
    code = "enrolment_closed"
    message = "The session is not open for enrolment"
    message_zh = "该培训班未开放报名"


class AlreadyEnrolled(Conflict):
    code = "already_enrolled"
    message = "This person is already enrolled in (or waitlisted for) the session"
    message_zh = "此人已报名该培训班（或在候补名单中）"


class EnrolmentNotActive(Conflict):
    code = "enrolment_not_active"
    message = "Only an enrolled or waitlisted enrolment can be cancelled"
    message_zh = "只有已报名或候补中的报名可以取消"


class SessionFinished(Conflict):
    code = "session_finished"
    message = "The session has ended or was cancelled; its enrolments no longer change"
    message_zh = "该培训班已结束或已取消，报名不能再变更"


class InvalidEnrollee(Unprocessable):
    code = "invalid_enrollee"
    message = "Give either member_no, or name, id_number and phone of a non-member"
    message_zh = "请填写会员编号，或非会员的姓名、身份证号码和电话"


class InvalidIdNumberError(Unprocessable):
    code = "invalid_id_number"
    message = "The ID number is not valid"
    message_zh = "身份证号码无效"


class InvalidPhoneError(Unprocessable):
    code = "invalid_phone"
    message = "The phone number is not valid"
    message_zh = "电话号码无效"


class NotYourself(Forbidden):
    message = "A member may only enrol themself"
    message_zh = "会员只能为本人报名"


class NotYourEnrolment(Forbidden):
    message = "A member may only see or cancel their own enrolment"
    message_zh = "会员只能查看或取消本人的报名"


class MembersSeeOwnOnly(Forbidden):
    message = "A member sees only their own enrolments and attendance"
    message_zh = "会员只能查看本人的报名和签到"


@dataclass(frozen=True)
class Person:
    """Who is being enrolled, as stored on the enrolment."""

    person_key: str
    name: str
    worker_category: str
    member_no: str | None = None
    invite_to_join: bool = False
    # Non-members: the encrypted and masked ID number and phone.
    personal: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- shaping


def to_read(enrolment: Enrolment, pii: PiiCipher, principal: Principal) -> EnrolmentRead:
    """The enrolment as `principal` may see it: personal data in full only with read_personal."""
    personal = principal.may(Action.members_read_personal)
    if personal and (enrolment.id_number_encrypted or enrolment.phone_encrypted):
        mark_personal_data_read()

    def shown(encrypted: str | None, masked: str | None) -> str | None:
        if encrypted is None:
            return masked
        return pii.decrypt(encrypted) if personal else masked

    return EnrolmentRead(
        id=enrolment.id,
        session_id=enrolment.session_id,
        status=EnrolmentStatus(enrolment.status),
        person_key=enrolment.person_key,
        member_no=enrolment.member_no,
        name=enrolment.name,
        id_number=shown(enrolment.id_number_encrypted, enrolment.id_number_masked),
        phone=shown(enrolment.phone_encrypted, enrolment.phone_masked),
        personal_data="full" if personal else "masked",
        worker_category=enrolment.worker_category,
        invite_to_join=enrolment.invite_to_join,
        waitlisted_at=enrolment.waitlisted_at,
        cancelled_at=enrolment.cancelled_at,
        enrolled_by=enrolment.enrolled_by,
        created_at=enrolment.created_at,
        updated_at=enrolment.updated_at,
    )


def with_session(
    enrolment: Enrolment,
    ts: TrainingSession,
    course_title: str,
    pii: PiiCipher,
    principal: Principal,
) -> EnrolmentWithSession:
    return EnrolmentWithSession(
        **to_read(enrolment, pii, principal).model_dump(),
        session=EnrolmentSession(
            id=ts.id,
            course_title=course_title,
            course_category=ts.course_category,
            host_org_id=ts.host_org_id,
            starts_at=ts.starts_at,
            ends_at=ts.ends_at,
            place=ts.place,
            status=SessionStatus(ts.status),
        ),
    )


# ---------------------------------------------------------------- lookups


async def get_in_scope(
    session: AsyncSession,
    principal: Principal,
    enrolment_id: str,
    *,
    staff_action: Action,
    self_action: Action,
    lock: bool = False,
) -> tuple[Enrolment, TrainingSession]:
    """The enrolment and its session: staff with `staff_action` in the host's scope, or the
    member themself with `self_action`. `lock` locks the session row."""
    enrolment = await repository.get(session, enrolment_id)
    if enrolment is None:
        raise EnrolmentNotFound()
    if principal.role is Role.member:
        principal.require(self_action)
        if principal.member_no is None or enrolment.member_no != principal.member_no:
            raise NotYourEnrolment()
        ts = await sessions_repository.get(session, enrolment.session_id, lock=lock)
        assert ts is not None  # enrolments.session_id is a foreign key
        return enrolment, ts
    ts = await get_session_in_scope(
        session, principal, enrolment.session_id, staff_action, lock=lock
    )
    return enrolment, ts


async def session_for_listing(
    session: AsyncSession, principal: Principal, session_id: str
) -> TrainingSession:
    """A session whose people (enrolments, attendance) the principal may list: staff only."""
    ts = await get_session_in_scope(session, principal, session_id, Action.sessions_read)
    if principal.role is Role.member:
        raise MembersSeeOwnOnly()
    return ts


async def list_across_sessions(
    session: AsyncSession,
    principal: Principal,
    *,
    member_no: str | None,
    org_id: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Sequence[tuple[Enrolment, TrainingSession, str]]:
    """Enrolments in any session: a member's own wherever they trained; staff's in their scope.

    `org_id` narrows to sessions hosted in that org's subtree (in scope, for staff).
    """
    principal.require(Action.sessions_read)
    within: str | None
    if principal.role is Role.member:
        if principal.member_no is None or member_no not in (None, principal.member_no):
            raise MembersSeeOwnOnly()
        member_no = principal.member_no
        within = None
        if org_id:
            # No scope check: a member keeps the enrolments of a former org's sessions.
            org = await session.get(OrgReplica, org_id)
            if org is None:
                raise OrgNotKnown(details={"field": "org_id"})
            within = org.path
    elif org_id:
        within = (await org_in_scope(session, principal, org_id, Action.sessions_read)).path
    elif principal.role is Role.platform_admin:
        within = None
    elif principal.org_path:
        within = principal.org_path
    else:
        raise OutOfScope()
    rows = await repository.list_across_sessions(
        session, within_path=within, member_no=member_no, status=status, cursor=cursor, limit=limit
    )
    return [(e, ts, title) for e, ts, title in rows]


# ---------------------------------------------------------------- who is enrolled


def _member_person(member: MemberReplica) -> Person:
    return Person(
        person_key=member_key(member.member_no),
        member_no=member.member_no,
        # A replica row created by a later event may not know these yet.
        name=member.name or member.member_no,
        worker_category=member.category or "other",
    )


def _non_member_person(pii: PiiCipher, data: EnrolmentCreate) -> Person:
    """Validate and protect a non-member's identity exactly as membership does."""
    missing = [f for f in ("name", "id_number", "phone") if getattr(data, f) is None]
    if missing:
        raise InvalidEnrollee(details={"field": missing[0], "missing": missing})
    assert data.name is not None and data.id_number is not None and data.phone is not None
    try:
        id_number = parse_id_number(data.id_number)
    except InvalidIdNumber as exc:
        raise InvalidIdNumberError(
            exc.message, exc.message_zh, details={"field": "id_number", "reason": exc.reason}
        ) from None
    try:
        phone = normalize_phone(data.phone)
    except InvalidPhone as exc:
        raise InvalidPhoneError(exc.message, exc.message_zh, details={"field": "phone"}) from None
    return Person(
        # If this ID number belongs to a member we cannot know it: training never sees
        # members' ID numbers, so such a person is counted as a non-member here.
        person_key=non_member_key(pii, id_number.number),
        name=data.name,
        worker_category=RURAL_LABOUR,
        invite_to_join=data.invite_to_join,
        personal={
            "id_number_encrypted": pii.encrypt(id_number.number),
            "id_number_masked": mask_id_number(id_number.number),
            "phone_encrypted": pii.encrypt(phone),
            "phone_masked": mask_phone(phone),
        },
    )


def _names_non_member(data: EnrolmentCreate) -> bool:
    return any(getattr(data, f) is not None for f in ("name", "id_number", "phone"))


# ---------------------------------------------------------------- enrolling


async def enrol(
    session: AsyncSession,
    pii: PiiCipher,
    principal: Principal,
    session_id: str,
    data: EnrolmentCreate,
) -> Enrolment:
    """Enrol a member or a non-member (staff), or the calling member themself."""
    if principal.role is Role.member:
        return await _enrol_self(session, principal, session_id, data)
    # Locked: places are counted and given one enrolment at a time.
    ts = await get_session_in_scope(
        session, principal, session_id, Action.enrolments_write, lock=True
    )
    if data.member_no is not None:
        if _names_non_member(data):
            raise InvalidEnrollee(
                "A member is enrolled by member_no alone",
                "会员仅凭会员编号报名，无需填写姓名、身份证号码和电话",
                details={"field": "member_no"},
            )
        person = _member_person(await active_member(session, data.member_no))
    elif _names_non_member(data):
        person = _non_member_person(pii, data)
    else:
        raise InvalidEnrollee(details={"field": "member_no"})
    return await _place(session, principal, ts, person)


async def _enrol_self(
    session: AsyncSession, principal: Principal, session_id: str, data: EnrolmentCreate
) -> Enrolment:
    principal.require(Action.enrol_self)
    own = principal.member_no
    if own is None or _names_non_member(data) or data.member_no not in (None, own):
        raise NotYourself()
    # A member may join sessions hosted by their own org or one above it.
    ts = await get_session_in_scope(session, principal, session_id, Action.enrol_self, lock=True)
    return await _place(session, principal, ts, _member_person(await active_member(session, own)))


async def _place(
    session: AsyncSession, principal: Principal, ts: TrainingSession, person: Person
) -> Enrolment:
    """Give the person a place if one is free, else a place on the waitlist (`ts` is locked)."""
    if ts.status not in _ENROLLING:
        raise EnrolmentClosed(details={"status": ts.status})
    existing = await repository.of_person(session, ts.id, person.person_key)
    if existing is not None and existing.status != EnrolmentStatus.cancelled:
        raise AlreadyEnrolled(details={"enrolment_id": existing.id, "status": existing.status})
    now = utcnow()
    full = await repository.count_enrolled(session, ts.id) >= ts.capacity
    status = EnrolmentStatus.waitlisted if full else EnrolmentStatus.enrolled
    values: dict[str, Any] = {
        "member_no": person.member_no,
        "name": person.name,
        "worker_category": person.worker_category,
        "invite_to_join": person.invite_to_join,
        "status": status,
        # A re-activated enrolment queues again from the back.
        "waitlisted_at": now if full else None,
        "cancelled_at": None,
        "enrolled_by": principal.subject,
        **person.personal,
    }
    if existing is not None:
        # A cancelled enrolment of the same person comes back instead of a second row.
        enrolment = existing
        for name, value in values.items():
            setattr(enrolment, name, value)
        await session.flush()
    else:
        enrolment = Enrolment(
            id=new_id(),
            session_id=ts.id,
            person_key=person.person_key,
            created_at=now,
            updated_at=now,
            **values,
        )
        # The session lock serialises enrolments, but the unique (session, person)
        # constraint is the last word.
        if not await insert_unless_conflicting(session, enrolment):
            raise AlreadyEnrolled()
    await publish(
        session,
        Enrolled(
            enrolment_id=enrolment.id,
            session_id=ts.id,
            host_org_id=ts.host_org_id,
            person_key=enrolment.person_key,
            member_no=enrolment.member_no,
            worker_category=enrolment.worker_category,
            status=enrolment.status,
        ),
        aggregate_id=enrolment.id,
        org_path=ts.host_org_path,
    )
    return enrolment


# ---------------------------------------------------------------- cancelling


async def cancel(
    session: AsyncSession, principal: Principal, enrolment_id: str
) -> tuple[Enrolment, Enrolment | None]:
    """Cancel an enrolment; if it held a place, the earliest waitlisted person takes it."""
    enrolment, ts = await get_in_scope(
        session,
        principal,
        enrolment_id,
        staff_action=Action.enrolments_write,
        self_action=Action.enrol_self,
        lock=True,
    )
    # Read again under the lock: a concurrent cancellation may have got here first.
    fresh = await repository.get(session, enrolment.id, fresh=True)
    assert fresh is not None
    enrolment = fresh
    if enrolment.status not in _ACTIVE:
        raise EnrolmentNotActive(details={"status": enrolment.status})
    if ts.status in _FINISHED:
        raise SessionFinished(details={"status": ts.status})
    held_place = enrolment.status == EnrolmentStatus.enrolled
    enrolment.status = EnrolmentStatus.cancelled
    enrolment.cancelled_at = utcnow()
    await session.flush()
    promoted: Enrolment | None = None
    if held_place and await repository.count_enrolled(session, ts.id) < ts.capacity:
        promoted = await repository.first_waitlisted(session, ts.id)
        if promoted is not None:
            promoted.status = EnrolmentStatus.enrolled
            await session.flush()
    await publish(
        session,
        EnrolmentCancelled(
            enrolment_id=enrolment.id,
            session_id=ts.id,
            host_org_id=ts.host_org_id,
            person_key=enrolment.person_key,
            promoted_enrolment_id=promoted.id if promoted else None,
        ),
        aggregate_id=enrolment.id,
        org_path=ts.host_org_path,
    )
    return enrolment, promoted
