"""Pieces every service's ORM models use: ids, timestamps, the type map."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from gonghui_shared.db import UtcDateTime
from gonghui_shared.ids import new_id

# For a service's `class Base(DeclarativeBase)`: every `Mapped[datetime]` is aware UTC.
TYPE_ANNOTATION_MAP: dict[Any, Any] = {datetime: UtcDateTime()}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def id_column() -> Mapped[str]:
    """A UUIDv7 primary key: sortable by creation, so it doubles as the pagination cursor."""
    return mapped_column(String(36), default=new_id, primary_key=True)
