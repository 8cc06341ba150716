"""Training certificates (培训证书): numbered, publicly verifiable, revocable."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from training.base import BYTEWISE_PATH, Base, Timestamped, id_column


class Certificate(Timestamped, Base):
    __tablename__ = "certificates"
    __table_args__ = (
        # Reports: certificates of an org subtree issued in a period, read from the index
        # alone (it holds every column they need); also serves any lookup by subtree.
        Index(
            "ix_certificates_host_path_issued",
            "host_org_path",
            "issued_on",
            "status",
            "course_category",
            "worker_category",
            "person_key",
        ),
    )

    id: Mapped[str] = id_column()
    number: Mapped[str] = mapped_column(String(40), unique=True)
    enrolment_id: Mapped[str] = mapped_column(ForeignKey("enrolments.id"), unique=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id"))
    course_category: Mapped[str] = mapped_column(String(30))
    host_org_path: Mapped[str] = mapped_column(BYTEWISE_PATH)
    person_key: Mapped[str] = mapped_column(String(80), index=True)
    member_no: Mapped[str | None] = mapped_column(String(16))
    worker_category: Mapped[str] = mapped_column(String(20))
    holder_name: Mapped[str] = mapped_column(String(50))
    issued_on: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(20), default="valid")  # valid, revoked
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(500))


class CertificateNumberSequence(Base):
    """The next certificate number per county and year; incremented under a row lock."""

    __tablename__ = "certificate_number_sequences"

    county_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer, default=0)
