"""Union cadres (工会干部): members appointed to a role in an org."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from membership.base import Base, Timestamped, id_column


class CadreRole(StrEnum):
    chair = "chair"  # 主席
    vice_chair = "vice_chair"  # 副主席
    committee_member = "committee_member"  # 委员
    funds_auditor = "funds_auditor"  # 经费审查委员
    women_worker_director = "women_worker_director"  # 女职工委员
    full_time_worker = "full_time_worker"  # 专职工会工作者
    social_worker = "social_worker"  # 社会化工会工作者


class Cadre(Timestamped, Base):
    __tablename__ = "cadres"
    __table_args__ = (
        # A member holds a role in an org once at a time; ended appointments are history.
        Index(
            "uq_cadres_active_appointment",
            "org_id",
            "member_id",
            "role",
            unique=True,
            sqlite_where=text("ended_on IS NULL"),
            postgresql_where=text("ended_on IS NULL"),
        ),
    )

    id: Mapped[str] = id_column()
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    org_path: Mapped[str] = mapped_column(String(800), index=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), index=True)
    member_no: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(30))
    appointed_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)
    appointed_by: Mapped[str] = mapped_column(String(100))
