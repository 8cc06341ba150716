"""The declarative base, with the bus tables and the audit log on the same metadata."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase

from gonghui_shared.audit import audit_table
from gonghui_shared.bus import bus_tables
from gonghui_shared.db import new_metadata
from gonghui_shared.models import TYPE_ANNOTATION_MAP, Timestamped, id_column, utcnow


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


outbox, inbox = bus_tables(Base.metadata)
audit_log = audit_table(Base.metadata)

# An org path compared byte by byte, on PostgreSQL as on SQLite, whatever the database's
# collation: the paths of a subtree are then one range of an index.
BYTEWISE_PATH = String(800).with_variant(String(800, collation="C"), "postgresql")

__all__ = [
    "BYTEWISE_PATH",
    "Base",
    "Timestamped",
    "audit_log",
    "id_column",
    "inbox",
    "outbox",
    "utcnow",
]
