"""Labour and skill competitions (劳动和技能竞赛): events by trade, entries, scores, awards."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from sqlalchemy import Date, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from training.base import Base, Timestamped, id_column


class CompetitionStatus(StrEnum):
    planned = "planned"
    running = "running"
    finished = "finished"


class Award(StrEnum):
    gold = "gold"  # 一等奖
    silver = "silver"  # 二等奖
    bronze = "bronze"  # 三等奖
    excellence = "excellence"  # 优秀奖
    none = "none"


class Competition(Timestamped, Base):
    __tablename__ = "competitions"

    id: Mapped[str] = id_column()
    title: Mapped[str] = mapped_column(String(200))
    host_org_id: Mapped[str] = mapped_column(String(36))
    host_org_path: Mapped[str] = mapped_column(String(800), index=True)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default=CompetitionStatus.planned)
    created_by: Mapped[str] = mapped_column(String(100))


class CompetitionEvent(Timestamped, Base):
    """One trade of a competition (e.g. 电焊工), ranked on its own."""

    __tablename__ = "competition_events"

    id: Mapped[str] = id_column()
    competition_id: Mapped[str] = mapped_column(ForeignKey("competitions.id"), index=True)
    trade: Mapped[str] = mapped_column(String(100))
    results_published: Mapped[bool] = mapped_column(default=False)


class CompetitionEntry(Timestamped, Base):
    __tablename__ = "competition_entries"
    __table_args__ = (UniqueConstraint("event_id", "person_key"),)

    id: Mapped[str] = id_column()
    event_id: Mapped[str] = mapped_column(ForeignKey("competition_events.id"), index=True)
    person_key: Mapped[str] = mapped_column(String(80))
    member_no: Mapped[str | None] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(50))
    # Non-members only, protected exactly as membership protects them.
    id_number_encrypted: Mapped[str | None] = mapped_column(Text)
    id_number_masked: Mapped[str | None] = mapped_column(String(18))
    phone_encrypted: Mapped[str | None] = mapped_column(Text)
    phone_masked: Mapped[str | None] = mapped_column(String(20))
    worker_category: Mapped[str] = mapped_column(String(20))
    employer: Mapped[str | None] = mapped_column(String(200))
    score: Mapped[float | None] = mapped_column(Float)
    rank: Mapped[int | None] = mapped_column(Integer)
    award: Mapped[str] = mapped_column(String(20), default=Award.none)
