"""deploy/docker/entrypoint.py: what it runs exists (each service's app factory, its settings
class, alembic and the console scripts compose and Kubernetes name), `wait-migrated` tells
a migrated database from a fresh one, and `healthcheck` follows the HTTP answer."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S_BASE = REPO / "deploy" / "k8s" / "base"
SERVICES = ("membership", "training", "stations", "gateway")
BUILTIN_COMMANDS = {"serve", "migrate", "wait-migrated", "healthcheck"}


def console_scripts(service: str) -> set[str]:
    """The commands the image of `service` installs: its own and shared's."""
    names: set[str] = set()
    for folder in (REPO / "shared", REPO / "services" / service):
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        names |= set(project.get("scripts", {}))
    return names | {"alembic", "uvicorn", "python"}


def commands_in_deployments(compose: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(service, argv after the entrypoint) of every compose container and Kubernetes pod."""
    found = []
    for service in compose["services"].values():
        build = service.get("build")
        if build and "command" in service:
            found.append((build["args"]["SERVICE"], list(service["command"])))
    for path in sorted(K8S_BASE.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc["kind"] not in ("Deployment", "Job"):
                continue
            spec = doc["spec"]["template"]["spec"]
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                assert "command" not in container, "args only: the entrypoint must stay"
                service = container["image"].split("/")[-1].split(":")[0]
                found.append((service, list(container["args"])))
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_serve_runs_the_service_app_factory(service: str, entrypoint: ModuleType) -> None:
    argv = entrypoint.serve_argv(service, 8123)
    assert argv[:3] == ["uvicorn", f"{service}.main:create_app", "--factory"]
    assert argv[argv.index("--port") + 1] == "8123"
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    module_name, factory = argv[1].split(":")
    assert callable(getattr(importlib.import_module(module_name), factory))


@pytest.mark.parametrize("service", SERVICES)
def test_settings_class_and_migrations_are_where_the_image_expects(
    service: str, entrypoint: ModuleType
) -> None:
    settings = entrypoint.load_settings(service)
    assert settings.service_name == service
    assert entrypoint.port_of(service) == settings.port
    ini = (REPO / "services" / service / "alembic.ini").read_text()
    # The image copies alembic.ini and migrations/ side by side into /app.
    assert "script_location = %(here)s/migrations" in ini
    heads, known = entrypoint.migration_heads(REPO / "services" / service / "alembic.ini")
    assert heads and heads <= known
    assert entrypoint.migrate_argv()[-2:] == ["upgrade", "head"]


def test_every_command_deployments_run_exists(
    compose: dict[str, Any], entrypoint: ModuleType
) -> None:
    found = commands_in_deployments(compose)
    assert {service for service, _ in found} == set(SERVICES)
    assert set(entrypoint.SERVICES) == set(SERVICES)
    for service, argv in found:
        command = argv[0]
        assert command in BUILTIN_COMMANDS | console_scripts(service), (
            f"{service}: `{' '.join(argv)}` names no entrypoint command or installed script"
        )


def test_wait_migrated_waits_for_the_images_heads(
    entrypoint: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ini = REPO / "services" / "stations" / "alembic.ini"
    url = f"sqlite+aiosqlite:///{tmp_path / 'stations.db'}"
    assert entrypoint.wait_migrated(url, ini, 0) == 1
    assert "did the migrate job run?" in capsys.readouterr().err
    env = {**os.environ, "STATIONS_DATABASE_URL": url, "GONGHUI_DATA_DIR": str(tmp_path)}
    env.pop("GONGHUI_ENVIRONMENT", None)
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ini), "upgrade", "head"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert entrypoint.wait_migrated(url, ini, 0) == 0


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_healthcheck_follows_the_answer(entrypoint: ModuleType, http_port: int) -> None:
    assert entrypoint.healthcheck(http_port, "/healthz") == 0
    assert entrypoint.healthcheck(http_port, "/readyz") == 1
    server = HTTPServer(("127.0.0.1", 0), _Answer)
    closed = server.server_address[1]
    server.server_close()
    assert entrypoint.healthcheck(closed, "/healthz") == 1
