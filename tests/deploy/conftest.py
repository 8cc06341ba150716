"""The deployment files, loaded once for the checks in tests/deploy (no container engine:
everything here is parsed and validated statically, or rendered with `kubectl kustomize`)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
SERVICES = ("membership", "training", "stations", "gateway")
# The oldest Kubernetes the manifests must work on; kubernetes-validate ships its schemas.
KUBERNETES_VERSION = "1.30"
KUSTOMIZE_SECONDS = 120


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty document of a YAML file."""
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    """deploy/compose.yaml as Compose sees it (anchors and merge keys resolved)."""
    document = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="session")
def entrypoint() -> ModuleType:
    """deploy/docker/entrypoint.py, imported from its path (it is no package)."""
    spec = importlib.util.spec_from_file_location(
        "gonghui_entrypoint", DEPLOY / "docker" / "entrypoint.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def k8s_config_sources() -> dict[tuple[str, str], set[str]]:
    """(kind, name) -> keys, for the base ConfigMaps and the Secrets of the template."""
    sources: dict[tuple[str, str], set[str]] = {}
    files = [*sorted((K8S / "base").glob("*.yaml")), K8S / "secrets.template.yaml"]
    for path in files:
        for doc in load_yaml_documents(path):
            if doc.get("kind") in ("ConfigMap", "Secret"):
                keys = {*doc.get("data", {}), *doc.get("stringData", {})}
                sources[(doc["kind"], doc["metadata"]["name"])] = keys
    return sources


def kubectl() -> str | None:
    """kubectl, whose `kustomize` renders an overlay offline, if this machine has it."""
    return shutil.which("kubectl")


@pytest.fixture(scope="session")
def render_kustomization() -> Any:
    """A function: the documents `kubectl kustomize <folder>` renders (skips without kubectl)."""
    found = kubectl()
    if found is None:
        pytest.skip("kubectl is not installed: the overlays are checked file by file only")
    cache: dict[Path, list[dict[str, Any]]] = {}

    def render(folder: Path) -> list[dict[str, Any]]:
        if folder not in cache:
            result = subprocess.run(
                [found, "kustomize", str(folder)],
                capture_output=True,
                text=True,
                timeout=KUSTOMIZE_SECONDS,
                check=False,
            )
            assert result.returncode == 0, f"kubectl kustomize {folder}:\n{result.stderr}"
            cache[folder] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        return cache[folder]

    return render
