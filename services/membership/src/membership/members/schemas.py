"""Member and transfer request and response bodies."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from membership.members.models import MemberStatus, TransferStatus


class MemberRead(BaseModel):
    """A member; `id_number` and `phone` are masked unless your role may read personal data."""

    member_no: str = Field(examples=["5309212026000001"])
    name: str
    org_id: str
    org_name: str
    status: MemberStatus
    category: str = Field(examples=["migrant_worker"])
    category_label_zh: str = Field(examples=["农民工"])
    subtype: str | None = None
    household_type: str
    gender: str
    birth_year: int
    birth_date: date | None = Field(
        description="only with the personal-data right: with the masked ID it would reveal it"
    )
    id_number: str = Field(examples=["530921********1234"])
    phone: str = Field(examples=["138****8000"])
    personal_data: str = Field(description="`masked` or `full`", examples=["masked"])
    employer: str | None
    joined_on: date
    ended_on: date | None
    end_reason: str | None
    membership_years: int = Field(description="whole years since joining, until the end if ended")


class MemberLookup(BaseModel):
    """A phone number to find active members by; in the body, so it never lands in a URL log."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"phone": "13800138000"}]})

    phone: str = Field(min_length=1, max_length=40)


class MemberMatch(BaseModel):
    member_no: str = Field(examples=["5309212026000001"])
    org_id: str
    joined_on: date


class MemberLookupRead(BaseModel):
    """The active members with this phone: none, one, or (a shared family phone) several."""

    members: list[MemberMatch]


class TransitionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    entity: str
    entity_id: str
    from_state: str | None
    to_state: str
    actor: str
    actor_role: str
    reason: str | None
    details: dict[str, object] | None
    at: datetime


class TransferCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"to_org_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d", "reason": "到县城务工"}
            ]
        }
    )

    to_org_id: str
    reason: str | None = Field(None, max_length=500)


class TransferDecline(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "本单位无此人员"}]})

    reason: str = Field(min_length=1, max_length=500)


class TransferRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    member_no: str
    from_org_id: str
    to_org_id: str
    status: TransferStatus
    reason: str | None
    requested_by: str
    decided_by: str | None
    decided_at: datetime | None
    decline_reason: str | None
    created_at: datetime


class MembershipEnd(BaseModel):
    """Ending a membership: withdrawal (退会), lapse, or expulsion (除名)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "本人申请退会", "ended_on": "2026-11-23"}]}
    )

    reason: str = Field(min_length=1, max_length=500)
    ended_on: date | None = Field(None, description="default today")
