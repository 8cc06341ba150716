"""The admission procedure (入会): signed application → roster → county approval → member number.

会泽县's rule, "有申请书、有名册、有批复、编号一致": every member starts as a form the
worker signed (`form_ref`), travels on a roster (花名册) from their union to the
county federation, and is approved with the approval document's number (批复文号)
or rejected with a reason. Approval assigns the member number, unique in the
county, which is the same on paper and in the system.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.audit import mark_personal_data_read
from gonghui_shared.auth import Principal
from gonghui_shared.bus.outbox import OutboxItem, record_events
from gonghui_shared.clock import CHINA
from gonghui_shared.contracts.membership import (
    ApplicationRejected,
    ApplicationSubmitted,
    MemberApproved,
)
from gonghui_shared.db import Database
from gonghui_shared.errors import Conflict, Forbidden, NotFound, OutOfScope, Unprocessable
from gonghui_shared.identity import InvalidIdNumber, InvalidPhone, normalize_phone, parse_id_number
from gonghui_shared.ids import new_id
from gonghui_shared.permissions import Action, Role
from gonghui_shared.pii import PiiCipher
from gonghui_shared.vocabulary import MemberCategory
from membership.admissions import repository
from membership.admissions.models import (
    PENDING,
    Application,
    ApplicationStatus,
    Roster,
)
from membership.admissions.person import protect
from membership.admissions.schemas import (
    ApplicationCreate,
    ApplicationDetail,
    ApplicationRead,
    ApplicationStep,
    MemberSummary,
    RosterCreate,
    RosterRead,
    SelfApplicationCreate,
    StatusCounts,
)
from membership.audit.service import Step, history, record_transition, record_transitions
from membership.base import outbox
from membership.events.publish import publish
from membership.members.models import Member, MemberStatus
from membership.orgs import repository as orgs_repository
from membership.orgs import service as orgs_service
from membership.orgs.models import Org, OrgStatus
from membership.rosters.template import ApplicantData

_SEQUENCE_DIGITS = 6


class RosterNotFound(NotFound):
    code = "roster_not_found"
    message = "Roster not found"
    message_zh = "入会名册不存在"


class ApplicationNotFound(NotFound):
    code = "application_not_found"
    message = "Application not found"
    message_zh = "入会申请不存在"


class InvalidIdNumberError(Unprocessable):
    code = "invalid_id_number"
    message = "The ID number is not valid"
    message_zh = "身份证号码无效"


class InvalidPhoneError(Unprocessable):
    code = "invalid_phone"
    message = "The phone number is not valid"
    message_zh = "电话号码无效"


class InvalidSubtype(Unprocessable):
    code = "invalid_subtype"
    message = "A subtype is required for new_employment and only for it"
    message_zh = "新就业形态劳动者须填写类型，其他类别不填"


class RosterNotOfOrg(Unprocessable):
    code = "roster_not_of_org"
    message = "The roster belongs to another organisation"
    message_zh = "该名册不属于此工会组织"


class ApplicationNotOfOrg(Unprocessable):
    code = "application_not_of_org"
    message = "The application belongs to another organisation than the roster"
    message_zh = "入会申请与名册不属于同一工会组织"


class OrgDissolved(Conflict):
    code = "org_dissolved"
    message = "The organisation is dissolved and admits no members"
    message_zh = "该工会组织已撤销，不再接收入会申请"


class AlreadyMember(Conflict):
    code = "already_member"
    message = "This person is already an active member"
    message_zh = "此人已是在册会员"


class DuplicateApplication(Conflict):
    code = "duplicate_application"
    message = "This person already has an application awaiting a decision"
    message_zh = "此人已有待审批的入会申请"


class OwnApplicationPending(Conflict):
    code = "own_application_pending"
    message = "You already have an application awaiting a decision"
    message_zh = "您已有待审批的入会申请"


class NotAnApplicant(Forbidden):
    message = (
        "Only a person without a membership applies for themself; "
        "staff record applications with POST /v1/applications"
    )
    message_zh = "只有尚未入会的本人可以自助申请；工作人员请使用 POST /v1/applications 录入"


class ApplicationNotSubmitted(Conflict):
    code = "application_not_submitted"
    message = "Only a submitted application not yet on a roster can be put on one"
    message_zh = "只有尚未列入名册的入会申请才能列入名册"


class ApplicationNotOnRoster(Conflict):
    code = "application_not_on_roster"
    message = "An application is approved only from a roster (有名册才有批复)"
    message_zh = "入会申请须先列入名册方可批复"


class ApplicationAlreadyDecided(Conflict):
    code = "application_already_decided"
    message = "The application has already been approved or rejected"
    message_zh = "该入会申请已审批"


class MemberNumbersExhausted(Conflict):
    code = "member_numbers_exhausted"
    message = "The county has used every member number of this year"
    message_zh = "本县本年度会员编号已用完"


# ---------------------------------------------------------------- shaping


def approval_date(now: datetime) -> date:
    """The calendar date in China at `now`: the year of the member number and the join date."""
    return now.astimezone(CHINA).date()


def to_read(application: Application, pii: PiiCipher, principal: Principal) -> ApplicationRead:
    """The application as `principal` may see it: personal data in full only with read_personal."""
    personal = principal.may(Action.members_read_personal)
    if personal:
        mark_personal_data_read(application.org_path)
    return ApplicationRead(
        id=application.id,
        org_id=application.org_id,
        roster_id=application.roster_id,
        status=ApplicationStatus(application.status),
        name=application.name,
        id_number=(
            pii.decrypt(application.id_number_encrypted)
            if personal
            else application.id_number_masked
        ),
        phone=pii.decrypt(application.phone_encrypted) if personal else application.phone_masked,
        gender=application.gender,
        birth_year=application.birth_date.year,
        birth_date=application.birth_date if personal else None,
        household_type=application.household_type,
        category=application.category,
        subtype=application.subtype,
        employer=application.employer,
        form_ref=application.form_ref,
        submitted_by=application.submitted_by,
        decided_by=application.decided_by,
        decided_at=application.decided_at,
        approval_doc_no=application.approval_doc_no,
        rejection_reason=application.rejection_reason,
        member_id=application.member_id,
        created_at=application.created_at,
        updated_at=application.updated_at,
    )


async def to_detail(
    session: AsyncSession, application: Application, pii: PiiCipher, principal: Principal
) -> ApplicationDetail:
    steps = await history(session, "application", application.id)
    return ApplicationDetail(
        **to_read(application, pii, principal).model_dump(),
        history=[
            ApplicationStep(
                from_state=t.from_state,
                to=t.to_state,
                actor=t.actor,
                role=t.actor_role,
                reason=t.reason,
                details=t.details,
                at=t.at,
            )
            for t in steps
        ],
    )


def member_summary(member: Member) -> MemberSummary:
    return MemberSummary(
        member_no=member.member_no,
        name=member.name,
        org_id=member.org_id,
        category=member.category,
        joined_on=member.joined_on,
        status=member.status,
    )


async def rosters_read(session: AsyncSession, rosters: Sequence[Roster]) -> list[RosterRead]:
    counts = await repository.status_counts(session, [r.id for r in rosters])
    return [
        RosterRead(
            id=r.id,
            org_id=r.org_id,
            title=r.title,
            source=r.source,
            filename=r.filename,
            submitted_by=r.submitted_by,
            created_at=r.created_at,
            counts=StatusCounts(**counts.get(r.id, {}), total=sum(counts.get(r.id, {}).values())),
        )
        for r in rosters
    ]


def scope_path(principal: Principal) -> str | None:
    """The subtree a principal lists within; None (everything) only for a platform admin."""
    if principal.role is Role.platform_admin:
        return None
    if not principal.org_path:
        raise OutOfScope()
    return principal.org_path


# ---------------------------------------------------------------- lookups


async def get_roster_in_scope(
    session: AsyncSession, principal: Principal, roster_id: str, action: Action
) -> Roster:
    principal.require(action)
    roster = await repository.get_roster(session, roster_id)
    if roster is None:
        raise RosterNotFound()
    principal.require(action, roster.org_path)
    return roster


async def get_application_in_scope(
    session: AsyncSession,
    principal: Principal,
    application_id: str,
    action: Action,
    *,
    for_update: bool = False,
) -> Application:
    principal.require(action)
    application = await repository.get_application(session, application_id, for_update=for_update)
    if application is None:
        raise ApplicationNotFound()
    principal.require(action, application.org_path)
    return application


async def _org_of(session: AsyncSession, org_id: str) -> Org:
    org = await orgs_repository.get(session, org_id)
    assert org is not None  # org_id columns are foreign keys
    return org


# ---------------------------------------------------------------- rosters


async def open_roster(
    session: AsyncSession,
    principal: Principal,
    data: RosterCreate,
    *,
    source: str = "manual",
    filename: str | None = None,
) -> Roster:
    """Start a roster (花名册) for an org in scope; applications are added to it afterwards."""
    org = await orgs_service.get_in_scope(
        session, principal, data.org_id, Action.applications_submit
    )
    _require_active(org)
    roster = Roster(
        org_id=org.id,
        org_path=org.path,
        title=data.title,
        source=source,
        filename=filename,
        submitted_by=principal.subject,
    )
    session.add(roster)
    await session.flush()
    return roster


def _require_active(org: Org) -> None:
    if org.status != OrgStatus.active:
        raise OrgDissolved(details={"field": "org_id"})


async def add_to_roster(
    session: AsyncSession, principal: Principal, roster_id: str, application_ids: Sequence[str]
) -> Roster:
    """Put submitted applications of the roster's org onto it; all of them or none."""
    roster = await get_roster_in_scope(session, principal, roster_id, Action.applications_submit)
    wanted = list(dict.fromkeys(application_ids))
    found = {a.id: a for a in await repository.applications_for_update(session, wanted)}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise ApplicationNotFound(details={"field": "application_ids", "application_ids": missing})
    for application_id in wanted:
        application = found[application_id]
        if application.org_id != roster.org_id:
            raise ApplicationNotOfOrg(
                details={"field": "application_ids", "application_id": application_id}
            )
        if application.status != ApplicationStatus.submitted:
            raise ApplicationNotSubmitted(
                details={"application_id": application_id, "status": application.status}
            )
    for application_id in wanted:
        application = found[application_id]
        application.roster_id = roster.id
        application.status = ApplicationStatus.on_roster
        await record_transition(
            session,
            principal,
            entity="application",
            entity_id=application.id,
            from_state=ApplicationStatus.submitted,
            to_state=ApplicationStatus.on_roster,
            details={"roster_id": roster.id},
        )
    await session.flush()
    return roster


# ---------------------------------------------------------------- applications


def validate_applicant(data: ApplicationCreate) -> ApplicantData:
    """Check the ID number, phone and category/subtype of an application body."""
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
    needs_subtype = data.category is MemberCategory.NEW_EMPLOYMENT
    if needs_subtype and data.subtype is None:
        raise InvalidSubtype(
            "A new-employment-form worker needs a subtype (rider, courier, …)",
            "新就业形态劳动者须填写类型（外卖骑手、快递员等）",
            details={"field": "subtype"},
        )
    if not needs_subtype and data.subtype is not None:
        raise InvalidSubtype(
            "Only new_employment members have a subtype",
            "只有新就业形态劳动者填写类型",
            details={"field": "subtype"},
        )
    return ApplicantData(
        name=data.name,
        id=id_number,
        phone=phone,
        household_type=data.household_type,
        category=data.category,
        subtype=data.subtype,
        employer=data.employer,
        form_ref=data.form_ref,
    )


async def submit(
    session: AsyncSession, pii: PiiCipher, principal: Principal, data: ApplicationCreate
) -> Application:
    """Record a worker's signed application at an org in scope, on a roster if one is named."""
    org = await orgs_service.get_in_scope(
        session, principal, data.org_id, Action.applications_submit
    )
    roster: Roster | None = None
    if data.roster_id is not None:
        roster = await repository.get_roster(session, data.roster_id)
        if roster is None:
            raise RosterNotFound(details={"field": "roster_id"})
        if roster.org_id != org.id:
            raise RosterNotOfOrg(details={"field": "roster_id"})
    return await submit_validated(session, pii, principal, org, roster, validate_applicant(data))


async def submit_own(
    session: AsyncSession, pii: PiiCipher, principal: Principal, data: SelfApplicationCreate
) -> Application:
    """A person's own application (mobile app): any active union, one pending at a time.

    Only the `member` role without a member number applies for itself: staff record
    others' applications through `submit`, and a member is already one.
    """
    principal.require(Action.applications_apply_self)
    if principal.role is not Role.member:
        raise NotAnApplicant()
    if principal.member_no is not None:
        raise AlreadyMember(details={"member_no": principal.member_no})
    org = await orgs_repository.get(session, data.org_id)
    if org is None:
        raise orgs_service.OrgNotFound(details={"field": "org_id"})
    if (pending := await repository.pending_application_by(session, principal.subject)) is not None:
        raise OwnApplicationPending(details={"application_id": pending})
    application_id = new_id()
    form = ApplicationCreate(**data.model_dump(), form_ref=f"online:{application_id}")
    return await submit_validated(
        session, pii, principal, org, None, validate_applicant(form), application_id=application_id
    )


async def submit_validated(
    session: AsyncSession,
    pii: PiiCipher,
    principal: Principal,
    org: Org,
    roster: Roster | None,
    applicant: ApplicantData,
    *,
    application_id: str | None = None,
) -> Application:
    """Store one validated applicant (a form or a roster row) for an org already authorised."""
    _require_active(org)
    person = protect(pii, applicant.id, applicant.phone)
    id_hash = person["id_number_hash"]
    if await repository.active_member_of(session, id_hash):
        raise AlreadyMember(details={"field": "id_number"})
    if await repository.pending_application_of(session, id_hash):
        raise DuplicateApplication(details={"field": "id_number"})
    status = ApplicationStatus.on_roster if roster is not None else ApplicationStatus.submitted
    application = Application(
        **({"id": application_id} if application_id else {}),
        org_id=org.id,
        org_path=org.path,
        roster_id=roster.id if roster else None,
        status=status,
        name=applicant.name,
        household_type=applicant.household_type.value,
        category=applicant.category.value,
        subtype=applicant.subtype.value if applicant.subtype else None,
        employer=applicant.employer,
        form_ref=applicant.form_ref,
        submitted_by=principal.subject,
        **person,
    )
    try:
        # A concurrent request may have inserted the same person since the check above;
        # the partial unique index catches it, and the savepoint keeps our transaction usable.
        async with session.begin_nested():
            session.add(application)
            await session.flush()
    except IntegrityError:
        raise DuplicateApplication(details={"field": "id_number"}) from None
    await record_transition(
        session,
        principal,
        entity="application",
        entity_id=application.id,
        from_state=None,
        to_state=status,
        details={"roster_id": application.roster_id, "form_ref": application.form_ref},
    )
    await publish(
        session,
        ApplicationSubmitted(
            application_id=application.id,
            org_id=application.org_id,
            roster_id=application.roster_id,
            category=application.category,
            subtype=application.subtype,
        ),
        aggregate_id=application.id,
        org_path=application.org_path,
    )
    return application


# ---------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Admission:
    """What one approval produced."""

    application: Application
    member: Member
    org: Org


async def approve(
    session: AsyncSession, principal: Principal, application_id: str, approval_doc_no: str
) -> Admission:
    """Approve one application on a roster (批复): assign the member number and admit the member."""
    application = await get_application_in_scope(
        session, principal, application_id, Action.applications_decide, for_update=True
    )
    if application.status not in PENDING:
        raise ApplicationAlreadyDecided(details={"status": application.status})
    if application.status != ApplicationStatus.on_roster:
        raise ApplicationNotOnRoster()
    org = await _org_of(session, application.org_id)
    return await _admit(session, principal, application, org, approval_doc_no, datetime.now(UTC))


# Applications admitted together (with a few statements for them all); in
# `approve_roster_in_batches`, also what one transaction approves.
APPROVAL_BATCH = 1000


async def approve_roster(
    session: AsyncSession, principal: Principal, roster_id: str, approval_doc_no: str
) -> tuple[list[Admission], list[tuple[str, str]]]:
    """Approve every application on a roster in one transaction; skip people already members."""
    roster = await get_roster_in_scope(session, principal, roster_id, Action.applications_decide)
    org = await _org_of(session, roster.org_id)
    pending = await repository.roster_applications_for_update(
        session, roster.id, ApplicationStatus.on_roster
    )
    now = datetime.now(UTC)
    admitted: list[Admission] = []
    skipped: list[tuple[str, str]] = []
    for start in range(0, len(pending), APPROVAL_BATCH):
        batch = pending[start : start + APPROVAL_BATCH]
        more, passed_over = await _admit_many(session, principal, batch, org, approval_doc_no, now)
        admitted += more
        skipped += passed_over
    return admitted, skipped


@dataclass
class RosterApproval:
    """What approving a roster batch by batch produced."""

    member_nos: list[str]
    skipped: list[tuple[str, str]]  # (application id, error code)
    batches: int

    @property
    def approved(self) -> int:
        return len(self.member_nos)


async def approve_roster_in_batches(
    db: Database,
    principal: Principal,
    roster_id: str,
    approval_doc_no: str,
    *,
    batch_size: int = APPROVAL_BATCH,
) -> RosterApproval:
    """Approve every application on a roster, `batch_size` at a time, each batch its own
    transaction (a province's rosters hold hundreds of thousands of people: one
    transaction would hold every lock and the whole outbox until the end).

    Each batch does what `approve_roster` does: member numbers in application order,
    people already members skipped, transitions and `MemberApproved` events written with
    the members. A failure leaves the earlier batches approved; approving again goes on
    with the applications still on the roster.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    result = RosterApproval(member_nos=[], skipped=[], batches=0)
    after_id: str | None = None
    while True:
        async with db.transaction() as session:
            roster = await get_roster_in_scope(
                session, principal, roster_id, Action.applications_decide
            )
            pending = await repository.roster_applications_for_update(
                session,
                roster.id,
                ApplicationStatus.on_roster,
                after_id=after_id,
                limit=batch_size,
            )
            if not pending:
                return result
            org = await _org_of(session, roster.org_id)
            admitted, skipped = await _admit_many(
                session, principal, pending, org, approval_doc_no, datetime.now(UTC)
            )
        # Skipped applications stay on the roster: the next batch starts after this one.
        after_id = pending[-1].id
        result.member_nos.extend(a.member.member_no for a in admitted)
        result.skipped.extend(skipped)
        result.batches += 1


async def _admit_many(
    session: AsyncSession,
    principal: Principal,
    applications: Sequence[Application],
    org: Org,
    approval_doc_no: str,
    now: datetime,
) -> tuple[list[Admission], list[tuple[str, str]]]:
    """Admit locked applications of one org together, with a few statements for them all.

    The same outcome as `_admit` for each in turn: numbers follow the applications'
    order, a person already a member (or twice in the list) is skipped. Should another
    approval make one of them a member meanwhile (the active-person index refuses the
    insert), the whole lot is admitted one by one instead, as `_admit` does.
    """
    skipped: list[tuple[str, str]] = []
    members_already = await repository.active_members_among(
        session, [a.id_number_hash for a in applications]
    )
    admissible: list[Application] = []
    for application in applications:
        if application.id_number_hash in members_already:
            skipped.append((application.id, AlreadyMember.code))
        else:
            members_already.add(application.id_number_hash)
            admissible.append(application)
    if not admissible:
        return [], skipped
    joined_on = approval_date(now)
    try:
        async with session.begin_nested():
            last = await repository.reserve_member_sequences(
                session, org.county_code, joined_on.year, len(admissible)
            )
            if last >= 10**_SEQUENCE_DIGITS:
                raise MemberNumbersExhausted()
            first = last - len(admissible) + 1
            members = [
                _member_of(application, joined_on, org.county_code, first + i)
                for i, application in enumerate(admissible)
            ]
            session.add_all(members)
            await session.flush()
    except IntegrityError:
        admitted: list[Admission] = []
        skipped = []
        for application in applications:
            try:
                admitted.append(
                    await _admit(session, principal, application, org, approval_doc_no, now)
                )
            except AlreadyMember as exc:
                skipped.append((application.id, exc.code))
        return admitted, skipped
    for application, member in zip(admissible, members, strict=True):
        _mark_approved(application, member, principal, approval_doc_no, now)
    await session.flush()
    steps: list[Step] = []
    for application, member in zip(admissible, members, strict=True):
        steps += _admission_steps(application, member, approval_doc_no)
    await record_transitions(session, principal, steps)
    await record_events(
        session,
        outbox,
        [
            OutboxItem(
                _approved_event(application, member, approval_doc_no, now),
                member.id,
                member.org_path,
            )
            for application, member in zip(admissible, members, strict=True)
        ],
        new_aggregates=True,  # the members made above
    )
    return [Admission(a, m, org) for a, m in zip(admissible, members, strict=True)], skipped


def _member_of(
    application: Application, joined_on: date, county_code: str, sequence: int
) -> Member:
    return Member(
        member_no=f"{county_code}{joined_on.year:04d}{sequence:0{_SEQUENCE_DIGITS}d}",
        application_id=application.id,
        org_id=application.org_id,
        org_path=application.org_path,
        status=MemberStatus.active,
        name=application.name,
        id_number_encrypted=application.id_number_encrypted,
        id_number_hash=application.id_number_hash,
        id_number_masked=application.id_number_masked,
        phone_encrypted=application.phone_encrypted,
        phone_hash=application.phone_hash,
        phone_masked=application.phone_masked,
        gender=application.gender,
        birth_date=application.birth_date,
        household_type=application.household_type,
        category=application.category,
        subtype=application.subtype,
        employer=application.employer,
        joined_on=joined_on,
    )


def _mark_approved(
    application: Application,
    member: Member,
    principal: Principal,
    approval_doc_no: str,
    now: datetime,
) -> None:
    application.status = ApplicationStatus.approved
    application.decided_by = principal.subject
    application.decided_at = now
    application.approval_doc_no = approval_doc_no
    application.member_id = member.id


def _admission_steps(application: Application, member: Member, approval_doc_no: str) -> list[Step]:
    """The application's step to approved and the member's first, for the transitions."""
    return [
        Step(
            "application",
            application.id,
            ApplicationStatus.on_roster,
            ApplicationStatus.approved,
            {"approval_doc_no": approval_doc_no, "member_no": member.member_no},
        ),
        Step(
            "member",
            member.id,
            None,
            MemberStatus.active,
            {"application_id": application.id, "approval_doc_no": approval_doc_no},
        ),
    ]


def _approved_event(
    application: Application, member: Member, approval_doc_no: str, now: datetime
) -> MemberApproved:
    return MemberApproved(
        member_id=member.id,
        member_no=member.member_no,
        application_id=application.id,
        org_id=member.org_id,
        name=member.name,
        category=member.category,
        subtype=member.subtype,
        household_type=member.household_type,
        gender=member.gender,
        birth_year=member.birth_date.year,
        approval_doc_no=approval_doc_no,
        approved_at=now,
    )


async def _admit(
    session: AsyncSession,
    principal: Principal,
    application: Application,
    org: Org,
    approval_doc_no: str,
    now: datetime,
) -> Admission:
    if await repository.active_member_of(session, application.id_number_hash):
        raise AlreadyMember(details={"application_id": application.id})
    joined_on = approval_date(now)
    try:
        # The number is taken inside the savepoint: if the member cannot be created,
        # the increment is rolled back with it and the sequence keeps no gap.
        async with session.begin_nested():
            sequence = await repository.next_member_sequence(
                session, org.county_code, joined_on.year
            )
            if sequence >= 10**_SEQUENCE_DIGITS:
                raise MemberNumbersExhausted()
            member = _member_of(application, joined_on, org.county_code, sequence)
            session.add(member)
            await session.flush()
    except IntegrityError:
        # Only the active-person index can collide here (the application row is locked).
        raise AlreadyMember(details={"application_id": application.id}) from None

    previous = application.status
    _mark_approved(application, member, principal, approval_doc_no, now)
    await session.flush()
    await record_transition(
        session,
        principal,
        entity="application",
        entity_id=application.id,
        from_state=previous,
        to_state=ApplicationStatus.approved,
        details={"approval_doc_no": approval_doc_no, "member_no": member.member_no},
    )
    await record_transition(
        session,
        principal,
        entity="member",
        entity_id=member.id,
        from_state=None,
        to_state=MemberStatus.active,
        details={"application_id": application.id, "approval_doc_no": approval_doc_no},
    )
    await publish(
        session,
        _approved_event(application, member, approval_doc_no, now),
        aggregate_id=member.id,
        org_path=member.org_path,
    )
    return Admission(application=application, member=member, org=org)


async def reject(
    session: AsyncSession, principal: Principal, application_id: str, reason: str
) -> Application:
    """Reject a pending application with the reason the worker will be told."""
    application = await get_application_in_scope(
        session, principal, application_id, Action.applications_decide, for_update=True
    )
    if application.status not in PENDING:
        raise ApplicationAlreadyDecided(details={"status": application.status})
    previous = application.status
    application.status = ApplicationStatus.rejected
    application.decided_by = principal.subject
    application.decided_at = datetime.now(UTC)
    application.rejection_reason = reason
    await session.flush()
    await record_transition(
        session,
        principal,
        entity="application",
        entity_id=application.id,
        from_state=previous,
        to_state=ApplicationStatus.rejected,
        reason=reason,
    )
    await publish(
        session,
        ApplicationRejected(
            application_id=application.id, org_id=application.org_id, reason=reason
        ),
        aggregate_id=application.id,
        org_path=application.org_path,
    )
    return application
