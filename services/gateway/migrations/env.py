"""Alembic environment for the gateway (the shared runner does the work)."""

from gateway.config import GatewaySettings
from gateway.models import Base
from gonghui_shared.migrations import run_migrations

run_migrations(Base.metadata, GatewaySettings)
