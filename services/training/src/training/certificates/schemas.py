"""Completion, certificate and verification bodies."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from training.budget.schemas import YuanOut

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]

NUMBER_EXAMPLE = "GHPX-530921-2026-000001-1"


class SessionCompletionRead(BaseModel):
    """What completing a session decided: who completed it, its figures, the certificates."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "session_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d",
                    "course_id": "0193a1c2-7c00-7a3b-9c5d-1e2f3a4b5c6d",
                    "course_category": "welding_trades",
                    "host_org_id": "0193a1c2-7b00-7a3b-9c5d-1e2f3a4b5c6d",
                    "status": "completed",
                    "completed_at": "2026-05-20T09:30:00Z",
                    "days": 5,
                    "min_attendance_rate": 0.8,
                    "enrolled": 2,
                    "completed": 1,
                    "not_completed": 1,
                    "waitlist_cancelled": 0,
                    "person_times": 7,
                    "unique_persons": 2,
                    "spent": "3600.00",
                    "certificates": [NUMBER_EXAMPLE],
                }
            ]
        }
    )

    session_id: str
    course_id: str
    course_category: str
    host_org_id: str
    status: str = Field(examples=["completed"])
    completed_at: datetime
    days: int = Field(description="session days, first_day..last_day inclusive")
    min_attendance_rate: float = Field(description="the course's completion rule")
    enrolled: int = Field(description="enrolments that were enrolled when the session ended")
    completed: int
    not_completed: int
    waitlist_cancelled: int = Field(description="waitlisted enrolments cancelled at the end")
    person_times: int = Field(description="attendance records (人次)")
    unique_persons: int = Field(description="distinct people who attended at least one day")
    spent: YuanOut = Field(description="money spent on the session (yuan)")
    certificates: list[str] = Field(description="numbers of the certificates issued")


class CertificateRead(BaseModel):
    """A certificate as staff (or its holder) see it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    number: str = Field(examples=[NUMBER_EXAMPLE])
    session_id: str
    course_id: str
    course_category: str
    member_no: str | None
    holder_name: str
    worker_category: str
    issued_on: date
    status: Literal["valid", "revoked"]
    revoked_at: datetime | None
    revoked_reason: str | None


class CertificateVerification(BaseModel):
    """The public answer about a certificate: enough to trust it, nothing to identify the holder."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "valid": True,
                    "number": NUMBER_EXAMPLE,
                    "status": "valid",
                    "holder": "李*",
                    "course_title": "电焊工（初级）实操培训",
                    "course_category": "welding_trades",
                    "hours": 40.0,
                    "issued_on": "2026-05-20",
                    "issuer": "凤庆县总工会",
                    "revoked_on": None,
                    "revoked_reason": None,
                }
            ]
        }
    )

    valid: bool
    number: str
    status: Literal["valid", "revoked"]
    holder: str = Field(description="the holder's name, all but the first character masked")
    course_title: str
    course_category: str
    hours: float
    issued_on: date
    issuer: str = Field(description="the union that held the session")
    revoked_on: date | None = None
    revoked_reason: str | None = None


class CertificateRevoke(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "培训签到记录经核查系代签，证书撤销"}]}
    )

    reason: Reason
