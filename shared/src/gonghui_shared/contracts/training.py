"""Events the training service publishes.

A person is identified by `person_key`: `m:<member number>` for members, or
`p:<keyed hash>` for a non-member, so dashboards count unique persons without
ever seeing an ID number. `worker_category` is the member category
(migrant_worker, new_employment, employee, other) or `rural_labour` for a
non-member from the rural labour force.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from gonghui_shared.contracts.envelope import Event


class SessionScheduled(Event):
    """A training session of a course was scheduled at a host org."""

    type = "training.session.scheduled"

    session_id: str
    course_id: str
    course_category: str = Field(examples=["welding_trades"])
    host_org_id: str
    starts_at: datetime
    ends_at: datetime
    delivery_mode: str = Field(examples=["on_site"])
    capacity: int
    planned_budget_fen: int = Field(description="planned budget in fen (0.01 yuan)")


class SessionCancelled(Event):
    type = "training.session.cancelled"

    session_id: str
    host_org_id: str
    reason: str


class SessionCompleted(Event):
    """A session ended: who completed it, and its person-times and cost."""

    type = "training.session.completed"

    session_id: str
    course_id: str
    course_category: str
    host_org_id: str
    enrolled: int
    completed: int
    person_times: int = Field(description="attendance records (人次)")
    unique_persons: int
    spent_fen: int


class Enrolled(Event):
    """A person was enrolled in a session, or put on its waitlist."""

    type = "training.enrolment.created"

    enrolment_id: str
    session_id: str
    host_org_id: str
    person_key: str
    member_no: str | None = None
    worker_category: str
    status: str = Field(examples=["enrolled", "waitlisted"])


class EnrolmentCancelled(Event):
    type = "training.enrolment.cancelled"

    enrolment_id: str
    session_id: str
    host_org_id: str
    person_key: str
    promoted_enrolment_id: str | None = Field(
        None, description="the waitlisted enrolment that took the freed place"
    )


class Attended(Event):
    """One person attended one session day: one person-time (人次)."""

    type = "training.attendance.recorded"

    attendance_id: str
    session_id: str
    enrolment_id: str
    host_org_id: str
    course_category: str
    person_key: str
    member_no: str | None = None
    worker_category: str
    day: date
    method: str = Field(examples=["staff", "qr"])


class CertificateIssued(Event):
    type = "training.certificate.issued"

    certificate_id: str
    number: str
    session_id: str
    course_id: str
    course_category: str
    host_org_id: str
    person_key: str
    member_no: str | None = None
    worker_category: str
    issued_on: date


class CertificateRevoked(Event):
    type = "training.certificate.revoked"

    certificate_id: str
    number: str
    host_org_id: str
    reason: str


class CompetitionResultPublished(Event):
    """The results of one event (trade) of a skill competition (劳动和技能竞赛)."""

    type = "training.competition.result_published"

    competition_id: str
    competition_event_id: str
    host_org_id: str
    trade: str
    participants: int
    awards: dict[str, int] = Field(description="award -> how many", examples=[{"gold": 1}])


EVENTS: tuple[type[Event], ...] = (
    SessionScheduled,
    SessionCancelled,
    SessionCompleted,
    Enrolled,
    EnrolmentCancelled,
    Attended,
    CertificateIssued,
    CertificateRevoked,
    CompetitionResultPublished,
)
