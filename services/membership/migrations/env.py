"""Alembic environment for membership (the shared runner does the work)."""

from gonghui_shared.migrations import run_migrations
from membership.config import MembershipSettings
from membership.models import Base

run_migrations(Base.metadata, MembershipSettings)
