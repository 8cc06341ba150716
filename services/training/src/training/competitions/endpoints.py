"""`/v1/competitions`: skill competitions (劳动和技能竞赛), their events, entries and results."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from gonghui_shared.deps import PageDep, PrincipalDep, SessionDep
from gonghui_shared.errors import ERROR_RESPONSES
from gonghui_shared.pagination import PageOut, page_of
from training.competitions import service
from training.competitions.schemas import (
    AwardQuotas,
    CompetitionCreate,
    CompetitionDetail,
    CompetitionEventCreate,
    CompetitionEventRead,
    CompetitionRead,
    EntryCreate,
    EntryRead,
    PublishedResult,
    ScoreSet,
)
from training.deps import PiiDep

router = APIRouter(prefix="/v1", tags=["competitions"], responses=ERROR_RESPONSES)


@router.post("/competitions", status_code=status.HTTP_201_CREATED)
async def create_competition(
    body: CompetitionCreate, principal: PrincipalDep, session: SessionDep
) -> CompetitionRead:
    """Announce a skill competition held by an org in your scope."""
    return service.to_read(await service.create(session, principal, body))


@router.get("/competitions")
async def list_competitions(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    org_id: Annotated[
        str | None, Query(description="competitions held in this org's subtree")
    ] = None,
) -> PageOut[CompetitionRead]:
    """Competitions in your scope (a member: those held by their org or an org above it)."""
    rows = await service.list_visible(
        session, principal, org_id=org_id, cursor=page.cursor, limit=page.limit
    )
    items, next_cursor = page_of(rows, page.limit)
    return PageOut(items=[service.to_read(c) for c in items], next_cursor=next_cursor)


@router.get("/competitions/{competition_id}")
async def get_competition(
    competition_id: str, principal: PrincipalDep, session: SessionDep
) -> CompetitionDetail:
    """A competition with its events and, once published, each event's results."""
    competition = await service.get_visible(session, principal, competition_id)
    return await service.detail(session, competition)


@router.post("/competitions/{competition_id}/events", status_code=status.HTTP_201_CREATED)
async def add_event(
    competition_id: str, body: CompetitionEventCreate, principal: PrincipalDep, session: SessionDep
) -> CompetitionEventRead:
    """Add an event for one trade (e.g. 电焊工, 茶艺师, 快递员技能)."""
    event = await service.add_event(session, principal, competition_id, body.trade)
    return service.to_event_read(event, 0, None)


@router.post("/competition-events/{event_id}/entries", status_code=status.HTTP_201_CREATED)
async def enter(
    event_id: str, body: EntryCreate, principal: PrincipalDep, session: SessionDep, pii: PiiDep
) -> EntryRead:
    """Enter a member by number, or a non-member by name, ID number and phone."""
    entry = await service.enter(session, pii, principal, event_id, body)
    return service.to_entry_read(entry, pii, principal)


@router.get("/competition-events/{event_id}/entries")
async def list_entries(
    event_id: str, principal: PrincipalDep, session: SessionDep, pii: PiiDep
) -> list[EntryRead]:
    """An event's entries for its organisers, best score first, unscored last."""
    entries = await service.list_entries(session, principal, event_id)
    return [service.to_entry_read(e, pii, principal) for e in entries]


@router.put("/competition-entries/{entry_id}/score")
async def set_score(
    entry_id: str, body: ScoreSet, principal: PrincipalDep, session: SessionDep, pii: PiiDep
) -> EntryRead:
    """Record (or correct) an entry's score, until the event's results are published."""
    entry = await service.set_score(session, principal, entry_id, body.score)
    return service.to_entry_read(entry, pii, principal)


@router.post("/competition-events/{event_id}/publish")
async def publish_results(
    event_id: str, body: AwardQuotas, principal: PrincipalDep, session: SessionDep
) -> PublishedResult:
    """Rank the event by score (ties share a rank), hand out awards, publish the results."""
    return await service.publish_results(session, principal, event_id, body)
