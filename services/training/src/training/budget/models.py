"""Training budgets: planned and spent per session and category, in fen (0.01 yuan)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from training.base import Base, id_column, utcnow


class BudgetCategory(StrEnum):
    trainer = "trainer"  # 师资费
    venue = "venue"  # 场地费
    materials = "materials"  # 教材资料费
    meals = "meals"  # 伙食费
    other = "other"


class BudgetKind(StrEnum):
    planned = "planned"
    spent = "spent"


class BudgetEntry(Base):
    __tablename__ = "budget_entries"
    __table_args__ = (Index("ix_budget_entries_host_path_day", "host_org_path", "entry_date"),)

    id: Mapped[str] = id_column()
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    host_org_path: Mapped[str] = mapped_column(String(800))
    kind: Mapped[str] = mapped_column(String(10))
    category: Mapped[str] = mapped_column(String(20))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    entry_date: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(String(500))
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
