"""Labour and skill competitions (劳动和技能竞赛): events by trade, entries, scores, awards.

An event (one trade) is ranked on its own by score, highest first, with standard
competition ranking: tied scores share a rank and the next rank skips ("1, 2, 2,
4"). Awards go by rank in order gold, silver, bronze, excellence: with quotas
gold 1 and silver 2, rank 1 is gold and ranks 2–3 are silver, so tied entries
always get the same award. Participants are counted apart from trainees: the
reports count distinct `person_key` of entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.audit import mark_personal_data_read
from gonghui_shared.auth import Principal
from gonghui_shared.contracts.training import CompetitionResultPublished
from gonghui_shared.errors import Conflict, NotFound, OutOfScope, Unprocessable
from gonghui_shared.identity import InvalidIdNumber, InvalidPhone, normalize_phone, parse_id_number
from gonghui_shared.permissions import Action, Role
from gonghui_shared.pii import PiiCipher, mask_id_number, mask_phone
from training.competitions import repository
from training.competitions.models import (
    Award,
    Competition,
    CompetitionEntry,
    CompetitionEvent,
    CompetitionStatus,
)
from training.competitions.schemas import (
    AwardQuotas,
    CompetitionCreate,
    CompetitionDetail,
    CompetitionEventRead,
    CompetitionRead,
    EntryCreate,
    EntryRead,
    PublishedResult,
    ResultRead,
)
from training.courses.service import ancestor_paths, host_org
from training.enrolments.service import RURAL_LABOUR, InvalidIdNumberError, InvalidPhoneError
from training.events.publish import publish
from training.replicas.models import MemberReplica, OrgReplica
from training.replicas.service import (
    OrgNotKnown,
    active_member,
    member_key,
    non_member_key,
    org_in_scope,
)

# The order awards are handed out in, down the ranking.
AWARD_ORDER = (Award.gold, Award.silver, Award.bronze, Award.excellence)


class CompetitionNotFound(NotFound):
    code = "competition_not_found"
    message = "No such competition"
    message_zh = "竞赛不存在"


class CompetitionEventNotFound(NotFound):
    code = "competition_event_not_found"
    message = "No such competition event"
    message_zh = "竞赛项目不存在"


class CompetitionEntryNotFound(NotFound):
    code = "competition_entry_not_found"
    message = "No such competition entry"
    message_zh = "参赛报名不存在"


class CompetitionFinished(Conflict):
    code = "competition_finished"
    message = "Every event of this competition has published its results"
    message_zh = "该竞赛所有项目均已公布成绩"


class TradeTaken(Conflict):
    code = "competition_event_exists"
    message = "The competition already has an event for this trade"
    message_zh = "该竞赛已设有此工种项目"


class AlreadyEntered(Conflict):
    code = "already_entered"
    message = "This person has already entered this event"
    message_zh = "此人已报名参加该项目"


class ResultsAlreadyPublished(Conflict):
    code = "results_already_published"
    message = "The results of this event are published and can no longer change"
    message_zh = "该项目成绩已公布，不能再更改"


class InvalidEntrant(Unprocessable):
    code = "invalid_entrant"
    message = "Give either member_no, or name, id_number and phone for a non-member"
    message_zh = "请填写会员编号，或非会员的姓名、身份证号码和电话"


class NoEntries(Unprocessable):
    code = "no_entries"
    message = "The event has no entries to rank"
    message_zh = "该项目无人参赛，无法排名"


class UnscoredEntries(Unprocessable):
    code = "unscored_entries"
    message = "Every entry needs a score before the results are published"
    message_zh = "所有参赛者均须录入成绩后方可公布"


# ---------------------------------------------------------------- shaping


def score_of(value: float | None) -> Decimal | None:
    """The stored score as the 2-decimal number it was entered as."""
    return None if value is None else Decimal(repr(value)).quantize(Decimal("0.01"))


def to_read(competition: Competition) -> CompetitionRead:
    return CompetitionRead(
        id=competition.id,
        title=competition.title,
        host_org_id=competition.host_org_id,
        host_org_path=competition.host_org_path,
        starts_on=competition.starts_on,
        ends_on=competition.ends_on,
        status=CompetitionStatus(competition.status),
        created_by=competition.created_by,
        created_at=competition.created_at,
    )


def to_result(entry: CompetitionEntry) -> ResultRead:
    assert entry.rank is not None and entry.score is not None  # published entries are ranked
    return ResultRead(
        rank=entry.rank,
        name=entry.name,
        member_no=entry.member_no,
        employer=entry.employer,
        score=Decimal(repr(entry.score)).quantize(Decimal("0.01")),
        award=Award(entry.award),
    )


def to_event_read(
    event: CompetitionEvent, entries: int, results: Sequence[CompetitionEntry] | None
) -> CompetitionEventRead:
    return CompetitionEventRead(
        id=event.id,
        competition_id=event.competition_id,
        trade=event.trade,
        entries=entries,
        results_published=event.results_published,
        results=[to_result(e) for e in results] if event.results_published and results else None,
    )


def to_entry_read(entry: CompetitionEntry, pii: PiiCipher, principal: Principal) -> EntryRead:
    """The entry as `principal` may see it: personal data in full only with read_personal."""
    personal = principal.may(Action.members_read_personal)
    if personal and (entry.id_number_encrypted or entry.phone_encrypted):
        mark_personal_data_read()

    def shown(encrypted: str | None, masked: str | None) -> str | None:
        if encrypted is None or not personal:
            return masked
        return pii.decrypt(encrypted)

    return EntryRead(
        id=entry.id,
        event_id=entry.event_id,
        member_no=entry.member_no,
        name=entry.name,
        id_number=shown(entry.id_number_encrypted, entry.id_number_masked),
        phone=shown(entry.phone_encrypted, entry.phone_masked),
        worker_category=entry.worker_category,
        employer=entry.employer,
        score=score_of(entry.score),
        rank=entry.rank,
        award=Award(entry.award),
        created_at=entry.created_at,
    )


async def detail(session: AsyncSession, competition: Competition) -> CompetitionDetail:
    events = await repository.events_of(session, competition.id)
    counts = await repository.entry_counts(session, [e.id for e in events])
    results = await repository.results_of(session, [e.id for e in events if e.results_published])
    return CompetitionDetail(
        **to_read(competition).model_dump(),
        events=[to_event_read(e, counts.get(e.id, 0), results.get(e.id)) for e in events],
    )


# ---------------------------------------------------------------- lookups


async def _member_org_path(session: AsyncSession, principal: Principal) -> str:
    member = await session.get(MemberReplica, principal.member_no) if principal.member_no else None
    if member is None:
        raise OutOfScope()
    return member.org_path


async def get_visible(
    session: AsyncSession, principal: Principal, competition_id: str
) -> Competition:
    """A competition to read (sessions.read): staff in scope, or a member of the host's subtree."""
    principal.require(Action.sessions_read)
    competition = await repository.get(session, competition_id)
    if competition is None:
        raise CompetitionNotFound()
    if principal.role is Role.member:
        if not (await _member_org_path(session, principal)).startswith(competition.host_org_path):
            raise OutOfScope()
        return competition
    principal.require(Action.sessions_read, competition.host_org_path)
    return competition


async def _competition_to_write(
    session: AsyncSession, principal: Principal, competition_id: str
) -> Competition:
    principal.require(Action.competitions_write)
    competition = await repository.get(session, competition_id)
    if competition is None:
        raise CompetitionNotFound()
    principal.require(Action.competitions_write, competition.host_org_path)
    return competition


async def _event_to_write(
    session: AsyncSession, principal: Principal, event_id: str
) -> tuple[CompetitionEvent, Competition]:
    """The event, locked: entries, scores and publication of one event take turns."""
    principal.require(Action.competitions_write)
    event = await repository.get_event(session, event_id, lock=True)
    if event is None:
        raise CompetitionEventNotFound()
    competition = await repository.get(session, event.competition_id)
    assert competition is not None  # competition_events.competition_id is a foreign key
    principal.require(Action.competitions_write, competition.host_org_path)
    return event, competition


def _not_published(event: CompetitionEvent) -> None:
    if event.results_published:
        raise ResultsAlreadyPublished()


# ---------------------------------------------------------------- competitions and events


async def create(
    session: AsyncSession, principal: Principal, data: CompetitionCreate
) -> Competition:
    org = await host_org(
        session, principal, data.host_org_id, Action.competitions_write, "host_org_id"
    )
    competition = Competition(
        title=data.title,
        host_org_id=org.id,
        host_org_path=org.path,
        starts_on=data.starts_on,
        ends_on=data.ends_on,
        status=CompetitionStatus.planned.value,
        created_by=principal.subject,
    )
    session.add(competition)
    await session.flush()
    return competition


async def list_visible(
    session: AsyncSession,
    principal: Principal,
    *,
    org_id: str | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Competition]:
    """Staff: competitions hosted in their subtree; a member: those of their org and above."""
    principal.require(Action.sessions_read)
    within: str | None = None
    host_paths: list[str] | None = None
    if principal.role is Role.member:
        host_paths = ancestor_paths(await _member_org_path(session, principal))
        if org_id:
            within = await _org_path(session, org_id)
    elif org_id:
        within = (await org_in_scope(session, principal, org_id, Action.sessions_read)).path
    elif principal.role is not Role.platform_admin:
        if not principal.org_path:
            raise OutOfScope()
        within = principal.org_path
    return await repository.list_competitions(
        session, within_path=within, host_paths=host_paths, cursor=cursor, limit=limit
    )


async def _org_path(session: AsyncSession, org_id: str) -> str:
    """A member's org filter needs no scope check: they only ever see their own org and above."""
    org = await session.get(OrgReplica, org_id)
    if org is None:
        raise OrgNotKnown(details={"field": "org_id"})
    return org.path


async def add_event(
    session: AsyncSession, principal: Principal, competition_id: str, trade: str
) -> CompetitionEvent:
    competition = await _competition_to_write(session, principal, competition_id)
    if competition.status == CompetitionStatus.finished:
        raise CompetitionFinished()
    if await repository.trade_taken(session, competition.id, trade):
        raise TradeTaken(details={"field": "trade"})
    event = CompetitionEvent(competition_id=competition.id, trade=trade, results_published=False)
    session.add(event)
    await session.flush()
    return event


# ---------------------------------------------------------------- entries and scores


def _entrant(pii: PiiCipher, data: EntryCreate) -> dict[str, object]:
    """A non-member's columns, validated and protected exactly as membership does."""
    missing = [f for f in ("name", "id_number", "phone") if getattr(data, f) is None]
    if missing:
        raise InvalidEntrant(details={"field": missing[0], "missing": missing})
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
    return {
        "person_key": non_member_key(pii, id_number.number),
        "member_no": None,
        "name": data.name,
        "worker_category": RURAL_LABOUR,
        "id_number_encrypted": pii.encrypt(id_number.number),
        "id_number_masked": mask_id_number(id_number.number),
        "phone_encrypted": pii.encrypt(phone),
        "phone_masked": mask_phone(phone),
    }


async def enter(
    session: AsyncSession,
    pii: PiiCipher,
    principal: Principal,
    event_id: str,
    data: EntryCreate,
) -> CompetitionEntry:
    """Enter a member (by number) or a non-member in an event whose results are not out."""
    event, _ = await _event_to_write(session, principal, event_id)
    _not_published(event)
    if data.member_no is not None:
        if any(getattr(data, f) is not None for f in ("name", "id_number", "phone")):
            raise InvalidEntrant(details={"field": "member_no"})
        member = await active_member(session, data.member_no)
        person: dict[str, object] = {
            "person_key": member_key(member.member_no),
            "member_no": member.member_no,
            # A replica row created by a later event may not know these yet.
            "name": member.name or member.member_no,
            "worker_category": member.category or "other",
        }
    else:
        person = _entrant(pii, data)
    field = "member_no" if data.member_no is not None else "id_number"
    if await repository.entered(session, event.id, str(person["person_key"])):
        raise AlreadyEntered(details={"field": field})
    entry = CompetitionEntry(
        event_id=event.id, employer=data.employer, award=Award.none.value, **person
    )
    try:
        # The event row is locked, but the unique (event, person) index is the last word.
        async with session.begin_nested():
            session.add(entry)
            await session.flush()
    except IntegrityError:
        raise AlreadyEntered(details={"field": field}) from None
    return entry


async def list_entries(
    session: AsyncSession, principal: Principal, event_id: str
) -> Sequence[CompetitionEntry]:
    """An event's entries for the organisers, best score first."""
    principal.require(Action.competitions_write)
    event = await repository.get_event(session, event_id)
    if event is None:
        raise CompetitionEventNotFound()
    competition = await repository.get(session, event.competition_id)
    assert competition is not None
    principal.require(Action.competitions_write, competition.host_org_path)
    return await repository.entries_of(session, event.id)


async def set_score(
    session: AsyncSession, principal: Principal, entry_id: str, score: Decimal
) -> CompetitionEntry:
    principal.require(Action.competitions_write)
    entry = await repository.get_entry(session, entry_id)
    if entry is None:
        raise CompetitionEntryNotFound()
    event, competition = await _event_to_write(session, principal, entry.event_id)
    _not_published(event)
    entry.score = float(score)
    if competition.status == CompetitionStatus.planned:
        competition.status = CompetitionStatus.running.value
    await session.flush()
    return entry


# ---------------------------------------------------------------- results


def rank(entries: Sequence[CompetitionEntry]) -> None:
    """Standard competition ranking ("1, 2, 2, 4") of entries sorted by score, best first."""
    current, previous = 0, None
    for position, entry in enumerate(entries, start=1):
        if position == 1 or entry.score != previous:
            current, previous = position, entry.score
        entry.rank = current


def award(entries: Sequence[CompetitionEntry], quotas: AwardQuotas) -> dict[str, int]:
    """Awards by rank: the first `gold` ranks gold, the next `silver` silver, and so on."""
    limits: list[tuple[int, Award]] = []
    last = 0
    for name in AWARD_ORDER:
        last += getattr(quotas, name.value)
        limits.append((last, name))
    counts = {name.value: 0 for name in AWARD_ORDER}
    for entry in entries:
        assert entry.rank is not None
        entry.award = next((a for limit, a in limits if entry.rank <= limit), Award.none).value
        if entry.award != Award.none:
            counts[entry.award] += 1
    return counts


async def publish_results(
    session: AsyncSession, principal: Principal, event_id: str, quotas: AwardQuotas
) -> PublishedResult:
    """Rank an event's entries, hand out the awards, and publish (once)."""
    event, competition = await _event_to_write(session, principal, event_id)
    _not_published(event)
    entries = await repository.entries_of(session, event.id)
    if not entries:
        raise NoEntries()
    unscored = [e for e in entries if e.score is None]
    if unscored:
        raise UnscoredEntries(
            f"{len(unscored)} entries have no score",
            f"{len(unscored)} 名参赛者尚未录入成绩",
            details={"entries": [{"id": e.id, "name": e.name} for e in unscored]},
        )
    rank(entries)
    counts = award(entries, quotas)
    event.results_published = True
    await session.flush()
    if all(e.results_published for e in await repository.events_of(session, competition.id)):
        competition.status = CompetitionStatus.finished.value
        await session.flush()
    await publish(
        session,
        CompetitionResultPublished(
            competition_id=competition.id,
            competition_event_id=event.id,
            host_org_id=competition.host_org_id,
            trade=event.trade,
            participants=len(entries),
            awards=counts,
        ),
        aggregate_id=event.id,
        org_path=competition.host_org_path,
    )
    return PublishedResult(
        event=to_event_read(event, len(entries), entries),
        participants=len(entries),
        awards=counts,
    )
