"""Cadre request and response bodies."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from membership.cadres.models import CadreRole


class CadreCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"member_no": "5309212026000001", "role": "chair", "appointed_on": "2026-03-01"}
            ]
        }
    )

    member_no: str = Field(min_length=1, max_length=16, description="the member's number (会员号)")
    role: CadreRole
    appointed_on: date = Field(description="the day the appointment took effect; not in the future")


class CadreEnd(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"ended_on": "2026-11-30", "reason": "换届选举，不再连任"}]}
    )

    ended_on: date = Field(description="not before the appointment and not in the future")
    reason: str = Field(min_length=2, max_length=500)


class CadreRead(BaseModel):
    id: str
    org_id: str
    org_name: str
    member_id: str
    member_no: str
    member_name: str
    role: CadreRole
    role_label_zh: str
    appointed_on: date
    ended_on: date | None
    active: bool = Field(description="true until the appointment is ended")
    appointed_by: str
    created_at: datetime
