"""Attendance request and response bodies."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field


class AttendanceCreate(BaseModel):
    """Staff name the person (`enrolment_id` or `member_no`); a trainee sends the `qr_token`."""

    model_config = ConfigDict(
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {"member_no": "5309212026000001", "day": "2026-03-02"},
                {"enrolment_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d"},
                {"qr_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9…"},
            ]
        },
    )

    enrolment_id: str | None = Field(None, min_length=1, max_length=36)
    member_no: str | None = Field(None, min_length=1, max_length=16)
    day: date | None = Field(None, description="staff entry only; default today in China")
    qr_token: str | None = Field(
        None, min_length=1, max_length=2000, description="the check-in QR token, scanned"
    )


class AttendanceRead(BaseModel):
    """One attendance record: one person on one session day, one person-time (人次)."""

    id: str
    session_id: str
    enrolment_id: str
    day: date
    method: str = Field(examples=["staff", "qr"])
    person_key: str = Field(examples=["m:5309212026000001"])
    member_no: str | None
    name: str
    worker_category: str = Field(examples=["migrant_worker", "rural_labour"])
    recorded_by: str
    recorded_at: datetime


class AttendanceList(BaseModel):
    """A page of records, and the two figures for the whole selection (not just this page)."""

    items: list[AttendanceRead]
    next_cursor: str | None = Field(None, description="null on the last page")
    person_times: int = Field(description="attendance records (人次)", examples=[7])
    unique_persons: int = Field(description="distinct people among them", examples=[4])


class CheckinQr(BaseModel):
    """A short-lived check-in token for one session day, and its QR code."""

    session_id: str
    day: date
    token: str
    expires_at: datetime
    svg: str = Field(description="the token as a QR code, an SVG document")
