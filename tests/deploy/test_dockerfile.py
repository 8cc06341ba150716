"""deploy/Dockerfile parses, builds each service in two stages, runs as a non-root user with a
health check, and copies only files that exist and that .dockerignore lets through."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "Dockerfile"
SERVICES = ("membership", "training", "stations", "gateway")
# Folders of the build context that no image needs (and .dockerignore keeps out).
NOT_IN_IMAGE = {"tests", "bench", "__pycache__"}


def instructions() -> list[dict[str, Any]]:
    """The Dockerfile's instructions, in order (`instruction`, `value`, `startline`)."""
    return list(DockerfileParser(path=str(DOCKERFILE)).structure)


def stages() -> list[list[dict[str, Any]]]:
    """The instructions of each stage, from its FROM to the next."""
    found: list[list[dict[str, Any]]] = []
    for instruction in instructions():
        if instruction["instruction"] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def values(stage: list[dict[str, Any]], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def global_arg_default(name: str) -> str:
    """The default of an ARG declared before the first FROM."""
    for instruction in instructions():
        if instruction["instruction"] == "FROM":
            break
        if instruction["instruction"] == "ARG" and instruction["value"].startswith(f"{name}="):
            return str(instruction["value"].split("=", 1)[1])
    raise AssertionError(f"no global ARG {name} with a default")


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(re-include?, pattern) for each line of .dockerignore, in order."""
    rules = []
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((include, re.compile(regex + r"\Z")))
    return rules


def ignored(relative: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for include, regex in dockerignore_rules():
        if any(regex.match(candidate) for candidate in candidates):
            verdict = not include
    return verdict


def copied_sources(service: str) -> list[str]:
    """The build-context paths COPY takes (not those taken from another stage)."""
    sources = []
    for value in values([i for s in stages() for i in s], "COPY"):
        words = [w for w in value.split() if not w.startswith("--")]
        if any(w.startswith("--from") for w in value.split()):
            continue
        sources += [w.replace("${SERVICE}", service) for w in words[:-1]]
    return sources


def test_two_stages_builder_and_a_slim_runtime() -> None:
    builder, runtime = stages()
    assert values(builder, "FROM") == ["${PYTHON_IMAGE} AS builder"]
    assert values(runtime, "FROM") == ["${PYTHON_IMAGE} AS runtime"]
    image = global_arg_default("PYTHON_IMAGE")
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", image), image
    for stage in (builder, runtime):
        assert "SERVICE" in values(stage, "ARG"), "each stage must declare ARG SERVICE"


def test_the_image_python_satisfies_every_package() -> None:
    version = re.match(r"python:(3\.\d+)", global_arg_default("PYTHON_IMAGE"))
    assert version is not None
    for pyproject in [REPO / "shared", *(REPO / "services" / s for s in SERVICES)]:
        project = tomllib.loads((pyproject / "pyproject.toml").read_text())["project"]
        assert version.group(1) in SpecifierSet(project["requires-python"]), pyproject


def test_builder_makes_wheels_with_the_constraints_and_runtime_installs_only_them() -> None:
    builder, runtime = stages()
    wheel = " ".join(values(builder, "RUN"))
    assert "pip wheel" in wheel and "-c constraints.txt" in wheel
    assert "./shared" in wheel and "./services/${SERVICE}" in wheel
    install = " ".join(values(runtime, "RUN"))
    assert "--no-index" in install and '"gonghui-${SERVICE}"' in install
    assert "requirements-dev" not in " ".join(values(builder + runtime, "RUN"))


def test_runtime_runs_as_a_non_root_user() -> None:
    runtime = stages()[-1]
    users = values(runtime, "USER")
    assert users, "the runtime stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"USER {users[-1]} is root"
    assert user.isdigit(), "a numeric USER lets Kubernetes' runAsNonRoot verify it"


def test_runtime_has_a_healthcheck_on_healthz_and_an_entrypoint() -> None:
    runtime = stages()[-1]
    healthchecks = values(runtime, "HEALTHCHECK")
    assert len(healthchecks) == 1 and "/healthz" in healthchecks[0]
    assert "/app/entrypoint.py" in healthchecks[0]
    assert values(runtime, "ENTRYPOINT") == ['["python", "/app/entrypoint.py"]']
    assert values(runtime, "CMD") == ['["serve"]']
    assert values(runtime, "WORKDIR") == ["/app"]


def test_runtime_holds_the_migrations_and_the_entrypoint() -> None:
    copies = values(stages()[-1], "COPY")
    assert "services/${SERVICE}/alembic.ini ./alembic.ini" in copies
    assert "services/${SERVICE}/migrations/ ./migrations/" in copies
    assert "deploy/docker/entrypoint.py ./entrypoint.py" in copies


@pytest.mark.parametrize("service", SERVICES)
def test_every_copied_path_exists_and_is_in_the_build_context(service: str) -> None:
    for source in copied_sources(service):
        path = REPO / source
        assert path.exists(), f"COPY {source}: not in the repository"
        assert not ignored(source), f"COPY {source}: excluded by .dockerignore"
        if not path.is_dir():
            continue
        for folder, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if d not in NOT_IN_IMAGE and not d.endswith(".egg-info")]
            for name in files:
                relative = (Path(folder) / name).relative_to(REPO).as_posix()
                assert not ignored(relative), f"{relative} is needed but .dockerignore drops it"


def test_dockerignore_keeps_local_state_and_tests_out() -> None:
    for path in (".venv/bin/python", ".data/dev-keys/pii.key", ".git/config", "README.md"):
        assert ignored(path), path
    for path in ("shared/tests/test_db.py", "services/membership/tests/conftest.py"):
        assert ignored(path), path
    assert not ignored("services/gateway/src/gateway/web/static/index.html")
