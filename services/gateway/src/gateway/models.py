"""The gateway's tables, gathered on one metadata for Alembic."""

from __future__ import annotations

from gateway.accounts import models as accounts_models  # noqa: F401 - registers the tables
from gateway.base import Base, audit_log, inbox, outbox
from gateway.dashboards import models as dashboards_models  # noqa: F401 - registers the tables
from gateway.idempotency import models as idempotency_models  # noqa: F401 - registers the table

__all__ = ["Base", "audit_log", "inbox", "outbox"]
