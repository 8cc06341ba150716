"""Training sessions (培训班/期): one run of a course at a host org."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from training.base import Base, Timestamped, id_column


class SessionStatus(StrEnum):
    scheduled = "scheduled"
    open = "open"  # open for enrolment
    in_progress = "in_progress"
    completed = "completed"
    cancelled = "cancelled"


class DeliveryMode(StrEnum):
    classroom = "classroom"  # 课堂
    on_site = "on_site"  # 现场/田间实操
    online = "online"


class TrainingSession(Timestamped, Base):
    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_host_path_start", "host_org_path", "first_day"),)

    id: Mapped[str] = id_column()
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id"), index=True)
    course_category: Mapped[str] = mapped_column(String(30))  # copied: reports group by it
    host_org_id: Mapped[str] = mapped_column(String(36), index=True)
    host_org_path: Mapped[str] = mapped_column(String(800))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    # Calendar days in China the session runs on; attendance is per day.
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    place: Mapped[str | None] = mapped_column(String(200))
    station_id: Mapped[str | None] = mapped_column(String(36))
    delivery_mode: Mapped[str] = mapped_column(String(20))
    trainer: Mapped[str | None] = mapped_column(String(100))
    capacity: Mapped[int] = mapped_column(Integer)
    planned_budget_fen: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), index=True)
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    completed_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(100))
