"""Training session request and response bodies."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from gonghui_shared.clock import Instant
from training.budget.schemas import BudgetTotals, YuanIn, YuanOut
from training.sessions.models import DeliveryMode, SessionStatus

MAX_LENGTH = timedelta(days=366)


class SessionCreate(BaseModel):
    model_config = ConfigDict(
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "course_id": "0193a1c2-7d1e-7a3b-9c5d-000000000001",
                    "host_org_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d",
                    "starts_at": "2026-03-10T09:00:00+08:00",
                    "ends_at": "2026-03-12T17:00:00+08:00",
                    "place": "凤山镇职业技能实训基地",
                    "delivery_mode": "on_site",
                    "trainer": "张师傅（高级焊工）",
                    "capacity": 40,
                    "planned_budget": "8600.00",
                }
            ]
        },
    )

    course_id: str
    host_org_id: str = Field(description="any org of the membership tree, in your scope")
    starts_at: Instant = Field(description="with a UTC offset, e.g. +08:00")
    ends_at: Instant = Field(description="after starts_at, at most 366 days later")
    place: str | None = Field(None, max_length=200, description="free text")
    station_id: str | None = Field(None, max_length=36, description="a service station (驿站)")
    delivery_mode: DeliveryMode
    trainer: str | None = Field(None, max_length=100)
    capacity: int = Field(ge=1, le=10000)
    planned_budget: YuanIn = Decimal("0")

    @field_validator("ends_at")
    @classmethod
    def _after_start(cls, ends_at: datetime, info: ValidationInfo) -> datetime:
        starts_at = info.data.get("starts_at")
        if starts_at is None:  # starts_at itself is invalid; that error is reported
            return ends_at
        if ends_at <= starts_at:
            raise ValueError("must be after starts_at")
        if ends_at - starts_at > MAX_LENGTH:
            raise ValueError("a session lasts at most 366 days")
        return ends_at


class SessionCancel(BaseModel):
    model_config = ConfigDict(
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"reason": "暴雨预警，实训基地停用"}]},
    )

    reason: str = Field(min_length=2, max_length=500)


class SessionRead(BaseModel):
    id: str
    course_id: str
    course_title: str
    course_category: str
    host_org_id: str
    host_org_path: str
    starts_at: datetime
    ends_at: datetime
    first_day: date = Field(description="first session day, China time")
    last_day: date = Field(description="last session day, China time (inclusive)")
    place: str | None
    station_id: str | None
    delivery_mode: DeliveryMode
    trainer: str | None
    capacity: int
    planned_budget: YuanOut
    status: SessionStatus
    cancel_reason: str | None
    completed_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class SessionDetail(SessionRead):
    """A session with its enrolment counts and money."""

    enrolled: int = Field(description="people holding a place")
    waitlisted: int
    budget: BudgetTotals
