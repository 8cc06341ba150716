"""Attendance (签到): one record per person per session day is one person-time (人次)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from training.base import BYTEWISE_PATH, Base, id_column, utcnow


class Attendance(Base):
    __tablename__ = "attendance"
    __table_args__ = (
        UniqueConstraint("enrolment_id", "day"),
        # Reports: person-times and unique persons of an org subtree over a period, read
        # from the index alone (it holds every column they need).
        Index(
            "ix_attendance_host_path_day",
            "host_org_path",
            "day",
            "course_category",
            "worker_category",
            "person_key",
        ),
    )

    id: Mapped[str] = id_column()
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    enrolment_id: Mapped[str] = mapped_column(ForeignKey("enrolments.id"))
    day: Mapped[date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(10))  # staff, qr
    # Copied from the session and enrolment so reports need no joins.
    host_org_path: Mapped[str] = mapped_column(BYTEWISE_PATH)
    course_category: Mapped[str] = mapped_column(String(30))
    person_key: Mapped[str] = mapped_column(String(80))
    worker_category: Mapped[str] = mapped_column(String(20))
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
