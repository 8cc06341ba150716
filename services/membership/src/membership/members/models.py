"""Members (会员) and transfers between unions (会员关系接转)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from membership.admissions.person import PersonColumns
from membership.base import Base, Timestamped, id_column


class MemberStatus(StrEnum):
    active = "active"
    withdrawn = "withdrawn"  # 退会
    lapsed = "lapsed"
    expelled = "expelled"  # 除名


class Member(PersonColumns, Timestamped, Base):
    __tablename__ = "members"
    __table_args__ = (
        Index(
            "uq_members_active_person",
            "id_number_hash",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_members_id_number_hash", "id_number_hash"),
        # The gateway's login by phone.
        Index("ix_members_phone_hash", "phone_hash"),
        Index("ix_members_name", "name"),
        Index("ix_members_category", "category"),
    )

    id: Mapped[str] = id_column()
    # County region code (6) + year (4) + sequence (6): the number on paper and in the system.
    member_no: Mapped[str] = mapped_column(String(16), unique=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), unique=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    org_path: Mapped[str] = mapped_column(String(800), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True, default=MemberStatus.active)

    joined_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)
    end_reason: Mapped[str | None] = mapped_column(String(500))


class TransferStatus(StrEnum):
    requested = "requested"
    accepted = "accepted"
    declined = "declined"


class Transfer(Timestamped, Base):
    __tablename__ = "transfers"

    id: Mapped[str] = id_column()
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), index=True)
    member_no: Mapped[str] = mapped_column(String(16))
    from_org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"))
    from_org_path: Mapped[str] = mapped_column(String(800))
    to_org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    to_org_path: Mapped[str] = mapped_column(String(800), index=True)
    status: Mapped[str] = mapped_column(String(20), default=TransferStatus.requested)
    reason: Mapped[str | None] = mapped_column(String(500))
    requested_by: Mapped[str] = mapped_column(String(100))
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None]
    decline_reason: Mapped[str | None] = mapped_column(String(500))
