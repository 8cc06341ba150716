"""The migrations build exactly the schema the models describe, and go down again."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.models import Base
from gonghui_shared.testing import BACKENDS, check_migrations, migrated_database

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_upgrade_matches_models_and_downgrade_empties(backend: str, tmp_path: Path) -> None:
    # A fresh database at head; the check compares it, goes down to nothing and up again.
    async for url in migrated_database(backend, ALEMBIC_INI, tmp_path, "gateway_migration"):
        await check_migrations(ALEMBIC_INI, Base.metadata, url)
