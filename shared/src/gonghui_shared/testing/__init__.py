"""Test support every service reuses: real NATS, migrated databases, tokens.

The pytest plugin (`gonghui_shared.testing.plugin`, registered as an entry
point) provides the session fixtures; the helpers here are plain functions.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from gonghui_shared.audit import APPEND_ONLY
from gonghui_shared.auth import Principal, TokenIssuer
from gonghui_shared.db import Database, normalise_url
from gonghui_shared.permissions import Action, Role
from gonghui_shared.runtime import ServiceRuntime, load_jwt_private_key, load_pii_cipher
from gonghui_shared.settings import ServiceSettings

BACKENDS = ("sqlite", "postgres")


def postgres_url_or_skip() -> str:
    """TEST_POSTGRES_URL, or skip (fail under CI, where PostgreSQL must be tested)."""
    url = os.environ.get("TEST_POSTGRES_URL")
    if url:
        return normalise_url(url)
    reason = "TEST_POSTGRES_URL is not set: PostgreSQL tests not run"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (CI=true requires them)")
    pytest.skip(reason)


async def create_postgres_database(admin_url: str, prefix: str) -> str:
    """A fresh, empty database on the server of `admin_url`; returns its URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


def alembic_config(alembic_ini: Path, url: str) -> Config:
    config = Config(str(alembic_ini))
    config.set_main_option("script_location", str(alembic_ini.parent / "migrations"))
    config.attributes["database_url"] = url
    return config


async def migrate(alembic_ini: Path, url: str, revision: str = "head") -> None:
    """Run the service's Alembic migrations (env.py runs its own event loop, so in a thread)."""
    await asyncio.to_thread(command.upgrade, alembic_config(alembic_ini, url), revision)


async def downgrade(alembic_ini: Path, url: str, revision: str = "base") -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(alembic_ini, url), revision)


async def truncate_all(db: Database, metadata: MetaData) -> None:
    """Empty every table of the service between tests (migrations stay applied).

    Append-only tables (the audit log) are left alone: the database refuses to empty them,
    so tests that read them look for their own rows (by request id or subject).
    """
    tables = [t for t in reversed(metadata.sorted_tables) if not t.info.get(APPEND_ONLY)]
    async with db.transaction() as session:
        if db.dialect == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            await session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await session.execute(table.delete())


def token_for(
    settings: ServiceSettings,
    role: Role | str,
    *,
    org_id: str | None = None,
    org_path: str | None = None,
    member_no: str | None = None,
    subject: str = "test-user",
    scopes: Sequence[Action] | None = None,
) -> str:
    issuer = TokenIssuer(load_jwt_private_key(settings))
    principal = Principal(
        subject=subject,
        role=Role(role),
        org_id=org_id,
        org_path=org_path,
        member_no=member_no,
        scopes=None if scopes is None else list(scopes),
    )
    return issuer.issue(principal)


def auth_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def use_pii_keys(runtime: ServiceRuntime, pii_keys: str, hash_key: str) -> None:
    """Give a running service the cipher a restart with these GONGHUI_PII_KEYS and
    GONGHUI_PII_HASH_KEY would give it (key-rotation tests; restore `runtime.pii` after)."""
    configured = runtime.settings.model_copy(
        update={"pii_keys": pii_keys, "pii_hash_key": hash_key}
    )
    runtime.pii = load_pii_cipher(configured)


async def empty_database(backend: str, folder: Path, prefix: str) -> AsyncIterator[str]:
    """An empty database of `backend` ("sqlite" or "postgres"), for tables a test makes
    itself; dropped afterwards. Use as `migrated_database`."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / f'{prefix}.db'}"
        return
    admin = postgres_url_or_skip()
    url = await create_postgres_database(admin, f"gonghui_{prefix}_test")
    try:
        yield url
    finally:
        await drop_postgres_database(admin, url)


async def migrated_database(
    backend: str, alembic_ini: Path, folder: Path, prefix: str
) -> AsyncIterator[str]:
    """A database of `backend` ("sqlite" or "postgres") migrated to head; dropped afterwards.

    Use from a session fixture parametrised over `BACKENDS`:
    `async for url in migrated_database(request.param, ...): yield url`.
    """
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / f'{prefix}.db'}"
        await migrate(alembic_ini, url)
        yield url
        return
    admin = postgres_url_or_skip()
    url = await create_postgres_database(admin, f"gonghui_{prefix}_test")
    try:
        await migrate(alembic_ini, url)
        yield url
    finally:
        await drop_postgres_database(admin, url)


async def check_migrations(alembic_ini: Path, metadata: MetaData, url: str) -> None:
    """Upgrade, compare the schema with the models, downgrade to nothing, upgrade again."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import inspect

    from gonghui_shared.db import create_engine

    await migrate(alembic_ini, url)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
        assert diff == [], f"models and migrations disagree: {diff}"
        await downgrade(alembic_ini, url)
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        assert set(tables) <= {"alembic_version"}, f"left behind by downgrade: {tables}"
        await migrate(alembic_ini, url)
    finally:
        await engine.dispose()


def count_dependency_solving(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests FastAPI solves dependencies for from now on (a hot
    route's plain requests are not among them)."""
    import fastapi.routing

    solved: list[str] = []
    solve = fastapi.routing.solve_dependencies

    async def counted(*args: object, **kwargs: Any) -> object:
        solved.append(kwargs["request"].url.path)
        return await solve(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    return solved
