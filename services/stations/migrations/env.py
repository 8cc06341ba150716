"""Alembic environment for stations (the shared runner does the work)."""

from gonghui_shared.migrations import run_migrations
from stations.config import StationsSettings
from stations.models import Base

run_migrations(Base.metadata, StationsSettings)
