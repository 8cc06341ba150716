"""`/v1/stations/{id}/visits`: record a visit (anonymous or with a member card), counts per day."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Query, status

from gonghui_shared.deps import PageDep, PrincipalDep, SessionDep
from gonghui_shared.errors import ERROR_RESPONSES
from gonghui_shared.pagination import PageOut, page_of
from gonghui_shared.permissions import Action
from stations.cards import CardVerifierDep
from stations.visits import repository, service
from stations.visits.schemas import VisitCreate, VisitDaily, VisitRead

router = APIRouter(prefix="/v1/stations", tags=["visits"], responses=ERROR_RESPONSES)


@router.post("/{station_id}/visits", status_code=status.HTTP_201_CREATED)
async def record_visit(
    station_id: str,
    body: VisitCreate,
    principal: PrincipalDep,
    session: SessionDep,
    verifier: CardVerifierDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            description="the client's key for this visit: a retry with the same key (from "
            "the same recorder) returns the visit recorded the first time, not a second one",
        ),
    ] = None,
) -> VisitRead:
    """Record a visit (人次): anonymous, or a member whose card is verified offline."""
    visit = await service.record(
        session, principal, verifier, station_id, body, client_key=idempotency_key
    )
    return service.to_read(visit)


@router.get("/{station_id}/visits/daily")
async def daily_visits(
    station_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    from_: Annotated[
        date | None, Query(alias="from", description="first day (default 29 days before `to`)")
    ] = None,
    to: Annotated[date | None, Query(description="last day (default today at the station)")] = None,
) -> VisitDaily:
    """Visits per day: members, anonymous, per service, average rating (at most 366 days)."""
    return await service.daily(session, principal, station_id, from_, to)


@router.get("/{station_id}/visits")
async def list_visits(
    station_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    day: Annotated[date | None, Query(description="only this local day")] = None,
    member_no: Annotated[
        str | None, Query(pattern=r"^\d{1,16}$", description="only this member's visits")
    ] = None,
) -> PageOut[VisitRead]:
    """The visits at a station, oldest recorded first, with member numbers and comments."""
    station = await service.station_in_scope(session, principal, station_id, Action.visits_write)
    rows = await repository.list_visits(
        session, station.id, day=day, member_no=member_no, cursor=page.cursor, limit=page.limit
    )
    items, next_cursor = page_of(rows, page.limit)
    return PageOut(items=[service.to_read(v) for v in items], next_cursor=next_cursor)
