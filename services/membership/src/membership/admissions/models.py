"""The admission procedure (入会): application → roster → approval → member number."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from membership.admissions.person import PersonColumns
from membership.base import Base, Timestamped, id_column


class ApplicationStatus(StrEnum):
    submitted = "submitted"  # signed form received by the org
    on_roster = "on_roster"  # on a roster sent to the county federation
    approved = "approved"
    rejected = "rejected"


PENDING = (ApplicationStatus.submitted, ApplicationStatus.on_roster)


class Roster(Timestamped, Base):
    """A batch of applications an org submits for approval (花名册)."""

    __tablename__ = "rosters"

    id: Mapped[str] = id_column()
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    org_path: Mapped[str] = mapped_column(String(800), index=True)
    title: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(20), default="manual")  # manual, import
    filename: Mapped[str | None] = mapped_column(String(255))
    submitted_by: Mapped[str] = mapped_column(String(100))


class Application(PersonColumns, Timestamped, Base):
    __tablename__ = "applications"
    __table_args__ = (
        # One pending application per person: a second is a duplicate, not a new row. Also
        # the only index on the person's hashes: every look-up of applications by person
        # is of pending ones (and none by phone).
        Index(
            "uq_applications_pending_person",
            "id_number_hash",
            unique=True,
            sqlite_where=text("status IN ('submitted', 'on_roster')"),
            postgresql_where=text("status IN ('submitted', 'on_roster')"),
        ),
    )

    id: Mapped[str] = id_column()
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    org_path: Mapped[str] = mapped_column(String(800), index=True)
    roster_id: Mapped[str | None] = mapped_column(ForeignKey("rosters.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)

    # Reference to the worker's own signed application form (入会申请书).
    form_ref: Mapped[str] = mapped_column(String(100))

    submitted_by: Mapped[str] = mapped_column(String(100))
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None]
    approval_doc_no: Mapped[str | None] = mapped_column(String(100))  # 批复文号
    rejection_reason: Mapped[str | None] = mapped_column(String(500))
    member_id: Mapped[str | None] = mapped_column(String(36))


class MemberNumberSequence(Base):
    """The next member number per county and year; incremented under a row lock."""

    __tablename__ = "member_number_sequences"

    county_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer, default=0)
