"""What every service's Alembic `env.py` does: migrate with the async engine.

The URL is the one the caller passes (tests make their own databases) or the
service's settings; SQLite gets batch mode, since it cannot alter tables.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

from alembic import context
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from gonghui_shared.db import UtcDateTime, create_engine, normalise_url
from gonghui_shared.settings import ServiceSettings


def _render_item(kind: str, obj: Any, _: Any) -> str | Literal[False]:
    # Autogenerate writes our UtcDateTime as the plain column type it stores as.
    if kind == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations(metadata: MetaData, settings_class: type[ServiceSettings]) -> None:
    config = context.config
    url = normalise_url(config.attributes.get("database_url") or settings_class().database_url)
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    def run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            render_item=_render_item,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        if url.startswith("sqlite"):
            Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        async with engine.connect() as connection:
            await connection.run_sync(run)
            await connection.commit()
        await engine.dispose()

    asyncio.run(run_async())
