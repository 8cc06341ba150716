"""The gateway's tables, gathered on one metadata for Alembic."""

from __future__ import annotations

from gateway.base import Base, inbox, outbox

__all__ = ["Base", "inbox", "outbox"]
