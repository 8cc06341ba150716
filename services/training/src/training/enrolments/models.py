"""Enrolment (报名): a member by number, or a non-member of the rural labour force."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from training.base import Base, Timestamped, id_column


class EnrolmentStatus(StrEnum):
    enrolled = "enrolled"
    waitlisted = "waitlisted"
    cancelled = "cancelled"
    completed = "completed"  # met the course's completion rule
    not_completed = "not_completed"  # the session ended without meeting it


class Enrolment(Timestamped, Base):
    __tablename__ = "enrolments"
    __table_args__ = (
        # No person enrolled twice in one session (a cancelled enrolment re-activates instead).
        UniqueConstraint("session_id", "person_key"),
        Index("ix_enrolments_session_status", "session_id", "status"),
    )

    id: Mapped[str] = id_column()
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"))
    # "m:<member_no>" or "p:<keyed hash of the ID number>".
    person_key: Mapped[str] = mapped_column(String(80), index=True)
    member_no: Mapped[str | None] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(50))
    # Non-members only, protected exactly as membership protects them.
    id_number_encrypted: Mapped[str | None] = mapped_column(Text)
    id_number_masked: Mapped[str | None] = mapped_column(String(18))
    phone_encrypted: Mapped[str | None] = mapped_column(Text)
    phone_masked: Mapped[str | None] = mapped_column(String(20))
    worker_category: Mapped[str] = mapped_column(String(20))
    invite_to_join: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20))
    # Waitlist order: earlier first; set when put on the waitlist.
    waitlisted_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    enrolled_by: Mapped[str] = mapped_column(String(100))
