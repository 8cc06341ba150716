"""Events the stations service publishes (worker service stations, 驿站)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from gonghui_shared.contracts.envelope import Event


class StationOpened(Event):
    """A station opened: an outdoor-worker station, worker home, village service point…"""

    type = "stations.station.opened"

    station_id: str
    station_type: str = Field(examples=["outdoor_worker_station"])
    name: str
    host_org_id: str
    region_code: str | None = None
    lon: float = Field(description="WGS-84")
    lat: float = Field(description="WGS-84")
    amenities: list[str] = Field(examples=[["drinking_water", "phone_charging", "toilets"]])


class StationUpdated(Event):
    type = "stations.station.updated"

    station_id: str
    host_org_id: str
    changed: list[str]
    lon: float
    lat: float
    amenities: list[str]


class StationStatusChanged(Event):
    """Base of suspended/closed/reopened."""

    type = "stations.station.status_changed"

    station_id: str
    host_org_id: str
    station_type: str
    reason: str | None = None


class StationSuspended(StationStatusChanged):
    type = "stations.station.suspended"


class StationClosed(StationStatusChanged):
    type = "stations.station.closed"


class StationReopened(StationStatusChanged):
    type = "stations.station.reopened"


class VisitRecorded(Event):
    """Someone used a station: anonymous, or a member who showed the member card."""

    type = "stations.visit.recorded"

    visit_id: str
    station_id: str
    station_type: str
    host_org_id: str
    visited_at: datetime
    day: date
    member_no: str | None = None
    worker_category: str | None = None
    services: list[str] = Field(examples=[["drinking_water", "phone_charging"]])
    rating: int | None = None


class SubsidyPaid(Event):
    """A station's monthly subsidy was paid (e.g. 100 yuan for a village service point)."""

    type = "stations.subsidy.paid"

    subsidy_id: str
    station_id: str
    host_org_id: str
    period: str = Field(examples=["2026-11"], description="YYYY-MM")
    amount_fen: int
    paid_on: date


EVENTS: tuple[type[Event], ...] = (
    StationOpened,
    StationUpdated,
    StationSuspended,
    StationClosed,
    StationReopened,
    VisitRecorded,
    SubsidyPaid,
)
