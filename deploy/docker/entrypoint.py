"""The entrypoint of every Gonghui image: `serve` (the default), `migrate`, `wait-migrated`,
`healthcheck [path]`, or any other command, run as given (`gonghui-gateway create-admin`).

The image is built for one service (`--build-arg SERVICE=membership`), named in
`GONGHUI_SERVICE`. The port and the database URL come from that service's own settings
class, so `<SERVICE>_PORT` and `<SERVICE>_DATABASE_URL` mean here what they mean everywhere.
Only the standard library is imported up front: `healthcheck` runs every few seconds.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ALEMBIC_INI = Path(__file__).resolve().parent / "alembic.ini"
SERVICES = ("membership", "training", "stations", "gateway")
WAIT_SECONDS = 300.0
HEALTHCHECK_TIMEOUT_SECONDS = 3.0
# Below Kubernetes' default 30 s grace period, so uvicorn finishes before the SIGKILL.
GRACEFUL_SHUTDOWN_SECONDS = 25


def service_name() -> str:
    """The service this image was built for."""
    name = os.environ.get("GONGHUI_SERVICE", "")
    if name not in SERVICES:
        raise SystemExit(f"entrypoint: GONGHUI_SERVICE={name!r} is not one of {SERVICES}")
    return name


def load_settings(service: str) -> Any:
    """The service's settings from the environment (`MembershipSettings` for membership)."""
    module = importlib.import_module(f"{service}.config")
    return getattr(module, f"{service.capitalize()}Settings")()


def serve_argv(service: str, port: int) -> list[str]:
    """uvicorn on the service's app factory, on every interface of the container."""
    return [
        "uvicorn",
        f"{service}.main:create_app",
        "--factory",
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
        "--lifespan",
        "on",
        # The event loop and HTTP parser written in C (uvicorn[standard] brings both).
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        # The app logs one JSON line per request itself; uvicorn's line would repeat it.
        "--no-access-log",
        "--timeout-graceful-shutdown",
        str(GRACEFUL_SHUTDOWN_SECONDS),
    ]


def migrate_argv() -> list[str]:
    """Alembic on the service's migrations, copied beside this file in the image."""
    return ["alembic", "-c", str(ALEMBIC_INI), "upgrade", "head"]


def migration_heads(alembic_ini: Path = ALEMBIC_INI) -> tuple[set[str], set[str]]:
    """The head revisions the image's migrations lead to, and every revision they know."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(Config(str(alembic_ini)))
    return set(script.get_heads()), {rev.revision for rev in script.walk_revisions()}


async def applied_heads(database_url: str) -> set[str]:
    """The revisions the database is at; empty when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    from gonghui_shared.db import create_engine

    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            heads = await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_heads()
            )
            return set(heads)
    finally:
        await engine.dispose()


def wait_migrated(database_url: str, alembic_ini: Path, seconds: float) -> int:
    """Poll until the database is at the image's heads, or ahead of them; 0 then, 1 when
    time runs out.

    Kubernetes starts a Deployment's pods beside the migration Job: as an init container,
    this keeps a new version's pods from serving the old schema. A database at revisions the
    image does not know was migrated by a newer release (a rollback): migrations stay
    compatible with the release before them, so the older image may serve it.
    """
    wanted, known = migration_heads(alembic_ini)
    deadline = time.monotonic() + seconds
    while True:
        try:
            found: set[str] | str = asyncio.run(applied_heads(database_url))
        except Exception as exc:  # noqa: BLE001 - the database may not be up yet: retry
            found = f"{type(exc).__name__}: {exc}"
        if found == wanted:
            print(f"entrypoint: database at {', '.join(sorted(wanted))}", flush=True)
            return 0
        if isinstance(found, set) and found and not found & known:
            print(
                f"entrypoint: database at {', '.join(sorted(found))}, newer than this image's "
                f"{', '.join(sorted(wanted))}; serving it (a rollback)",
                flush=True,
            )
            return 0
        if time.monotonic() > deadline:
            print(
                f"entrypoint: database not migrated to {sorted(wanted)} after {seconds:.0f} s "
                f"(found {found or 'no migrations'}); did the migrate job run?",
                file=sys.stderr,
            )
            return 1
        time.sleep(2.0)


def healthcheck(port: int, path: str) -> int:
    """0 when GET http://127.0.0.1:<port><path> answers 200, else 1 (Docker's HEALTHCHECK)."""
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=HEALTHCHECK_TIMEOUT_SECONDS) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"entrypoint: {url}: {exc}", file=sys.stderr)
        return 1


def port_of(service: str) -> int:
    """`<SERVICE>_PORT`, else the service's default port (read from its settings class)."""
    raw = os.environ.get(f"{service.upper()}_PORT")
    if raw:
        return int(raw)
    return int(load_settings(service).port)


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("serve", [])
    if command == "serve":
        service = service_name()
        os.execvp("uvicorn", serve_argv(service, port_of(service)))
    if command == "migrate":
        os.execvp("alembic", migrate_argv())
    if command == "wait-migrated":
        seconds = float(args[0]) if args else WAIT_SECONDS
        settings = load_settings(service_name())
        return wait_migrated(settings.database_url, ALEMBIC_INI, seconds)
    if command == "healthcheck":
        return healthcheck(port_of(service_name()), args[0] if args else "/healthz")
    os.execvp(command, [command, *args])
    return 0  # not reached: exec replaces this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
