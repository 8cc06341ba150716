"""Enrolment request and response bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from training.enrolments.models import EnrolmentStatus
from training.sessions.models import SessionStatus


class EnrolmentCreate(BaseModel):
    """Either a member (`member_no`), or a non-member by name, ID number and phone.

    A member enrolling themself sends `{}` (or their own `member_no`).
    """

    model_config = ConfigDict(
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {"member_no": "5309212026000001"},
                {
                    "name": "杨春花",
                    "id_number": "530921199001011234",
                    "phone": "13800138000",
                    "invite_to_join": True,
                },
                {},
            ]
        },
    )

    member_no: str | None = Field(None, min_length=1, max_length=16, examples=["5309212026000001"])
    name: str | None = Field(None, min_length=1, max_length=50, description="non-members only")
    id_number: str | None = Field(
        None, min_length=1, max_length=40, description="non-members only: 18-digit resident ID"
    )
    phone: str | None = Field(None, min_length=1, max_length=40, description="non-members only")
    invite_to_join: bool = Field(
        False, description="non-members only: the union should invite this person to join"
    )


class EnrolmentRead(BaseModel):
    """An enrolment; a non-member's `id_number` and `phone` are masked unless you may read them."""

    id: str
    session_id: str
    status: EnrolmentStatus
    person_key: str = Field(
        description="`m:<member_no>` or `p:<keyed hash>`: the same person across sessions",
        examples=["m:5309212026000001"],
    )
    member_no: str | None = Field(None, description="null for a non-member")
    name: str
    id_number: str | None = Field(None, examples=["530921********1234"])
    phone: str | None = Field(None, examples=["138****8000"])
    personal_data: str = Field(description="`masked` or `full`", examples=["masked"])
    worker_category: str = Field(
        description="the member's category, or `rural_labour` for a non-member",
        examples=["migrant_worker"],
    )
    invite_to_join: bool
    waitlisted_at: datetime | None = Field(None, description="place in the waitlist: earlier first")
    cancelled_at: datetime | None = None
    enrolled_by: str
    created_at: datetime
    updated_at: datetime


class EnrolmentSession(BaseModel):
    """The session an enrolment is for, as a list across sessions shows it."""

    id: str
    course_title: str = Field(examples=["电焊工职业技能培训"])
    course_category: str = Field(examples=["welding_trades"])
    host_org_id: str
    starts_at: datetime
    ends_at: datetime
    place: str | None = Field(None, examples=["凤山镇职业技能实训基地"])
    status: SessionStatus


class EnrolmentWithSession(EnrolmentRead):
    """An enrolment with its session, for lists across sessions (a member's own trainings)."""

    session: EnrolmentSession


class EnrolmentCancellation(BaseModel):
    """The cancelled enrolment and, if it freed a place, the waitlisted one that took it."""

    enrolment: EnrolmentRead
    promoted: EnrolmentRead | None = None
