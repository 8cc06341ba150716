"""Alembic environment for training (the shared runner does the work)."""

from gonghui_shared.migrations import run_migrations
from training.config import TrainingSettings
from training.models import Base

run_migrations(Base.metadata, TrainingSettings)
