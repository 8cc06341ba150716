"""Visit request and response bodies."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from stations.cards import MAX_TOKEN_LENGTH
from stations.visits.services import VisitService


def _parse_service(value: Any) -> Any:
    # Accept the code or the Chinese label a station operator types (喝水, 爱心早餐…).
    return VisitService.parse(value) if isinstance(value, str) else value


ServiceCode = Annotated[VisitService, BeforeValidator(_parse_service)]


class VisitCreate(BaseModel):
    model_config = ConfigDict(
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "member_card": "eyJhbGciOiJFZERTQSIsImtpZCI6IjNmMmM3YTBlOWIxZDRlNTUifQ…",
                    "services": ["drinking_water", "phone_charging", "rest"],
                    "rating": 5,
                    "comment": "水是热的，充电很快",
                },
                {"services": ["breakfast"], "visited_at": "2023-12-09T07:10:00+08:00"},
            ]
        },
    )

    member_card: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_TOKEN_LENGTH,
        description="the member card token (会员证) the visitor shows; omit for an anonymous visit",
    )
    services: list[ServiceCode] = Field(
        min_length=1,
        max_length=len(VisitService),
        description="services used (code or Chinese label): " + VisitService.choices(),
    )
    rating: int | None = Field(None, ge=1, le=5, description="how it was, 1 (poor) to 5 (good)")
    comment: str | None = Field(None, max_length=500)
    visited_at: AwareDatetime | None = Field(
        None, description="with a time zone; default now; at most 7 days ago, not in the future"
    )

    @field_validator("services")
    @classmethod
    def _distinct(cls, value: list[VisitService]) -> list[VisitService]:
        # A visit uses a service or not: repeating one would double-count it per day.
        return list(dict.fromkeys(value))

    @field_validator("comment")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None


class VisitRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    station_id: str
    visited_at: datetime
    day: date = Field(description="the local date at the station")
    member_no: str | None = Field(description="from a verified member card; null if anonymous")
    worker_category: str | None = Field(examples=["migrant_worker"])
    services: list[str] = Field(examples=[["drinking_water", "phone_charging"]])
    rating: int | None
    comment: str | None
    recorded_by: str


class VisitCounts(BaseModel):
    """Visits (person-times, 人次) at a station over some time."""

    visits: int
    member_visits: int = Field(description="visits with a verified member card")
    anonymous_visits: int
    services: dict[str, int] = Field(
        description="visits that used each service (a visit may use several)",
        examples=[{"breakfast": 60, "drinking_water": 12}],
    )
    ratings: int = Field(description="visits that left a rating")
    average_rating: float | None = Field(description="mean of the ratings, 2 decimals")


class VisitDay(VisitCounts):
    day: date = Field(description="local date at the station")


class VisitDaily(BaseModel):
    """Counts per day over a date range; every day appears, zero when nobody came."""

    model_config = ConfigDict(populate_by_name=True)

    station_id: str
    from_: date = Field(alias="from")
    to: date
    days: list[VisitDay]
    total: VisitCounts = Field(description="the whole range")
