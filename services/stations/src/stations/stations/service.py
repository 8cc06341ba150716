"""Stations: opening one under a host union, describing it, and its lifecycle.

Stations are public service points: anyone with `stations.read` (every role, members and
government systems included) may read any station. Writes need `stations.write` in the host
org's subtree. Lifecycle: active -> suspended -> active (reopen); active or suspended -> closed,
which is final. Every change publishes its event through the outbox in the same transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.auth import Principal
from gonghui_shared.contracts.stations import (
    StationClosed,
    StationOpened,
    StationReopened,
    StationStatusChanged,
    StationSuspended,
    StationUpdated,
)
from gonghui_shared.errors import Conflict, NotFound, Unprocessable
from gonghui_shared.ids import new_id
from gonghui_shared.permissions import Action, Role
from stations import geo, hours
from stations.config import StationsSettings
from stations.events.publish import publish
from stations.replicas.models import OrgReplica
from stations.replicas.service import OrgNotKnown, org_in_scope
from stations.stations import amenities as vocabulary
from stations.stations import repository
from stations.stations.models import Station, StationStatus, StationType
from stations.stations.schemas import (
    STATION_TYPE_LABELS_ZH,
    AmenityRead,
    OpenAt,
    StationCreate,
    StationRead,
    StationUpdate,
    to_fen,
    yuan,
)

# A move shorter than this is a round-trip of the same point (e.g. GCJ-02 read back from a
# response, rounded to 7 places), not a change.
_SAME_POINT_M = 0.05


class StationNotFound(NotFound):
    code = "station_not_found"
    message = "Station not found"
    message_zh = "站点不存在"


class UnknownAmenity(Unprocessable):
    code = "unknown_amenity"
    message = "Unknown amenity code"
    message_zh = "未知的设施代码"


class IncompleteLocation(Unprocessable):
    code = "incomplete_location"
    message = "A location needs lon and lat together"
    message_zh = "位置须同时提供经度和纬度"


class HostOrgNotActive(Conflict):
    code = "host_org_not_active"
    message = "The host organisation has been dissolved"
    message_zh = "承办工会组织已撤销"


class InvalidStationTransition(Conflict):
    code = "invalid_station_transition"
    message = "The station cannot change to that status from its current one"
    message_zh = "站点当前状态不允许此操作"


# Which statuses each lifecycle action may start from, where it leads, and its event.
_TRANSITIONS: dict[str, tuple[frozenset[StationStatus], StationStatus, type[StationStatusChanged]]]
_TRANSITIONS = {
    "suspend": (frozenset({StationStatus.active}), StationStatus.suspended, StationSuspended),
    "reopen": (frozenset({StationStatus.suspended}), StationStatus.active, StationReopened),
    "close": (
        frozenset({StationStatus.active, StationStatus.suspended}),
        StationStatus.closed,
        StationClosed,
    ),
}


# --- reading ---------------------------------------------------------------------------------


def amenity_list() -> list[AmenityRead]:
    return [
        AmenityRead(
            code=a.code, osm_tags=list(a.osm_tags), label_zh=a.label_zh, label_en=a.label_en
        )
        for a in vocabulary.AMENITIES
    ]


def open_now(station: Station, now: datetime | None = None) -> bool:
    """Open right now: active and open by its hours, in its own time zone."""
    if station.status != StationStatus.active:
        return False
    return hours.is_open(station.opening_hours, now or datetime.now(UTC), station.timezone)


def to_read(station: Station, now: datetime | None = None) -> StationRead:
    return StationRead.model_validate(
        {
            **vars(station),
            "station_type_label_zh": STATION_TYPE_LABELS_ZH[StationType(station.station_type)],
            "location": geo.both(station.lon, station.lat),
            "open_now": open_now(station, now),
            "monthly_subsidy": yuan(station.monthly_subsidy_fen),
            "deep_links": geo.deep_links(station.lon, station.lat, station.name),
        }
    )


async def get(session: AsyncSession, principal: Principal, station_id: str) -> Station:
    """Any station: they are public service points, readable by every role that may read."""
    principal.require(Action.stations_read)
    station = await repository.get(session, station_id)
    if station is None:
        raise StationNotFound()
    return station


async def get_for_write(session: AsyncSession, principal: Principal, station_id: str) -> Station:
    """The station, if the principal may change it: role first, then 404, then the host scope."""
    principal.require(Action.stations_write)
    station = await repository.get(session, station_id, for_update=True)
    if station is None:
        raise StationNotFound()
    principal.require(Action.stations_write, station.host_org_path)
    return station


async def list_scope(session: AsyncSession, principal: Principal, org_id: str | None) -> str | None:
    """The org path to list under, None for everything.

    With `org_id`: that org's subtree, wherever it is (stations are public). Without: staff see
    their own subtree (what they manage); a member, a government system and a platform admin see
    every station, as a worker looking for a place to rest is not bound to their union's tree.
    """
    principal.require(Action.stations_read)
    if org_id is not None:
        org = await session.get(OrgReplica, org_id)
        if org is None:
            raise OrgNotKnown(details={"field": "org_id"})
        return str(org.path)
    if principal.role in (Role.member, Role.gov_system, Role.platform_admin):
        return None
    return principal.org_path


def check_amenities(codes: list[str], field: str = "amenities") -> list[str]:
    unknown = vocabulary.unknown(codes)
    if unknown:
        raise UnknownAmenity(
            f"Unknown amenity codes: {', '.join(unknown)}",
            f"未知的设施代码：{'、'.join(unknown)}",
            details={"field": field, "unknown": unknown, "allowed": list(vocabulary.CODES)},
        )
    return vocabulary.canonical(codes)


def open_at(station: Station, at: datetime) -> OpenAt:
    """Open at `at` (naive = the station's local time) by its hours, if active."""
    try:
        return _open_at(station, at)
    except OverflowError:
        # Near year 1 or 9999 the time has no equivalent in the station's zone (or the next
        # change lies past 9999): the input is out of range, not a server error.
        raise Unprocessable(
            "The time is out of range in the station's time zone",
            "该时间超出站点所在时区的可表示范围",
            details={"field": "at"},
        ) from None


def _open_at(station: Station, at: datetime) -> OpenAt:
    local = at.replace(tzinfo=hours.zone(station.timezone)) if at.tzinfo is None else at
    local = local.astimezone(hours.zone(station.timezone))
    active = station.status == StationStatus.active
    state = hours.state(station.opening_hours, local, station.timezone)
    if not active:
        state = "closed"
    return OpenAt(
        station_id=station.id,
        at=local,
        timezone=station.timezone,
        opening_hours=station.opening_hours,
        status=StationStatus(station.status),
        state=state,
        open=state == "open",
        next_change=hours.next_change(station.opening_hours, local, station.timezone)
        if active
        else None,
    )


# --- writing ---------------------------------------------------------------------------------


def _point(lon: float, lat: float, crs: str) -> tuple[float, float]:
    return geo.to_wgs84(lon, lat, crs)


async def create(
    session: AsyncSession, principal: Principal, settings: StationsSettings, data: StationCreate
) -> Station:
    org = await org_in_scope(session, principal, data.host_org_id, Action.stations_write)
    if org.status != "active":
        raise HostOrgNotActive(details={"field": "host_org_id"})
    amenities = check_amenities(data.amenities)
    opening_hours = hours.validate(data.opening_hours)
    hours.zone(data.timezone)
    lon, lat = _point(data.lon, data.lat, data.crs)
    r7, r9 = geo.cells(lon, lat)
    if data.monthly_subsidy is not None:
        subsidy_fen = to_fen(data.monthly_subsidy)
    elif data.station_type is StationType.village_service_point:
        subsidy_fen = settings.village_point_subsidy_fen
    else:
        subsidy_fen = 0

    station = Station(
        id=new_id(),
        station_type=data.station_type.value,
        name=data.name,
        host_org_id=org.id,
        host_org_path=org.path,
        host_partner=data.host_partner,
        address=data.address,
        region_code=data.region_code or org.region_code,
        lon=lon,
        lat=lat,
        h3_r7=r7,
        h3_r9=r9,
        contact_name=data.contact_name,
        contact_phone=data.contact_phone,
        status=StationStatus.active.value,
        status_reason=None,
        amenities=amenities,
        opening_hours=opening_hours,
        timezone=data.timezone,
        photos=list(data.photos),
        checked_on=data.checked_on,
        monthly_subsidy_fen=subsidy_fen,
    )
    session.add(station)
    await session.flush()
    await publish(
        session,
        StationOpened(
            station_id=station.id,
            station_type=station.station_type,
            name=station.name,
            host_org_id=station.host_org_id,
            region_code=station.region_code,
            lon=station.lon,
            lat=station.lat,
            amenities=station.amenities,
        ),
        aggregate_id=station.id,
        org_path=station.host_org_path,
    )
    return station


def _changes(station: Station, data: StationUpdate) -> dict[str, Any]:
    """The sent fields, validated and converted to column values, keyed by column name."""
    sent = data.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {}
    location = {k: sent.pop(k) for k in ("lon", "lat", "crs") if k in sent}
    if location:
        if "lon" not in location or "lat" not in location:
            missing = "lat" if "lon" in location else "lon"
            raise IncompleteLocation(details={"field": missing})
        lon, lat = _point(location["lon"], location["lat"], location.get("crs") or geo.Crs.wgs84)
        if geo.distance_m(station.lon, station.lat, lon, lat) >= _SAME_POINT_M:
            changes["lon"], changes["lat"] = lon, lat
    if "amenities" in sent:
        changes["amenities"] = check_amenities(sent.pop("amenities"))
    if "opening_hours" in sent:
        changes["opening_hours"] = hours.validate(sent.pop("opening_hours"))
    if "timezone" in sent:
        hours.zone(sent["timezone"])
    if "monthly_subsidy" in sent:
        changes["monthly_subsidy_fen"] = to_fen(sent.pop("monthly_subsidy"))
    if "station_type" in sent:
        changes["station_type"] = sent.pop("station_type").value
    changes.update(sent)
    return {k: v for k, v in changes.items() if getattr(station, k) != v}


# Column names as the API names them in StationUpdated.changed.
_API_NAMES = {"lon": "location", "lat": "location", "monthly_subsidy_fen": "monthly_subsidy"}


async def update(
    session: AsyncSession, principal: Principal, station_id: str, data: StationUpdate
) -> Station:
    station = await get_for_write(session, principal, station_id)
    changes = _changes(station, data)
    if not changes:
        return station
    for column, value in changes.items():
        setattr(station, column, value)
    if "lon" in changes:
        station.h3_r7, station.h3_r9 = geo.cells(station.lon, station.lat)
    await session.flush()
    changed = list(dict.fromkeys(_API_NAMES.get(c, c) for c in changes))
    await publish(
        session,
        StationUpdated(
            station_id=station.id,
            host_org_id=station.host_org_id,
            changed=changed,
            lon=station.lon,
            lat=station.lat,
            amenities=station.amenities,
        ),
        aggregate_id=station.id,
        org_path=station.host_org_path,
    )
    return station


async def transition(
    session: AsyncSession,
    principal: Principal,
    station_id: str,
    action: str,
    reason: str | None,
) -> Station:
    """suspend, reopen or close; 409 invalid_station_transition from any other status."""
    station = await get_for_write(session, principal, station_id)
    sources, target, event_type = _TRANSITIONS[action]
    if station.status not in sources:
        raise InvalidStationTransition(
            f"Cannot {action} a station that is {station.status}",
            f"站点当前状态为 {station.status}，不能执行 {action}",
            details={
                "status": station.status,
                "action": action,
                "allowed_from": sorted(s.value for s in sources),
            },
        )
    station.status = target.value
    station.status_reason = reason
    await session.flush()
    await publish(
        session,
        event_type(
            station_id=station.id,
            host_org_id=station.host_org_id,
            station_type=station.station_type,
            reason=reason,
        ),
        aggregate_id=station.id,
        org_path=station.host_org_path,
    )
    return station
