"""The first answer to each (principal, Idempotency-Key), kept for a day."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.base import Base, utcnow


class IdempotentRequest(Base):
    """A POST made with an `Idempotency-Key`; `status` is None while it is in flight."""

    __tablename__ = "idempotency_keys"

    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(800))
    body_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    status: Mapped[int | None] = mapped_column(Integer)
    headers: Mapped[str | None] = mapped_column(Text)  # JSON: [[name, value], …]
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
