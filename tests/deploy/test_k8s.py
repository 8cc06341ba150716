"""deploy/k8s: every manifest validates against the Kubernetes schemas (kubernetes-validate,
offline), the kustomizations name files that exist, the base and the production overlay
render, and each service has probes, resources, an autoscaler and its migration Job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"
SERVICES = {"gateway": 8000, "membership": 8001, "training": 8002, "stations": 8003}
KUBERNETES_VERSION = "1.30"
PLACEHOLDER = "CHANGE-ME"
SECRET_SUFFIXES = ("_KEY", "_KEYS", "_PASSWORD", "_DATABASE_URL")


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def manifest_files() -> list[Path]:
    """Complete manifests (overlay patches are partial: they are checked once rendered)."""
    base = [p for p in sorted(BASE.glob("*.yaml")) if p.name != "kustomization.yaml"]
    return [*base, K8S / "secrets.template.yaml"]


def validation_problem(doc: dict[str, Any]) -> str | None:
    """Why `doc` is not a valid object of its kind, strictly (no unknown fields), or None."""
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{'.'.join(map(str, exc.path))}: {exc.message}"
    except kubernetes_validate.SchemaNotFoundError as exc:
        return str(exc.message)
    return None


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(doc["spec"]["template"]["spec"])


def kustomization_files(folder: Path) -> list[Path]:
    """Every file or folder a kustomization names, its resources and patches included."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    named = [*kustomization.get("resources", [])]
    named += [p["path"] for p in kustomization.get("patches", []) if "path" in p]
    return [(folder / name).resolve() for name in named]


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_manifest_validates_against_the_kubernetes_schema(path: Path) -> None:
    docs = documents(path)
    assert docs, f"{path} is empty"
    problems = [
        f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}: {problem}"
        for doc in docs
        if (problem := validation_problem(doc))
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("folder", [BASE, PRODUCTION], ids=["base", "production"])
def test_kustomization_names_only_existing_files(folder: Path) -> None:
    for path in kustomization_files(folder):
        assert path.exists(), f"{folder.relative_to(K8S)} names {path}, which does not exist"
        if path.is_dir():
            assert (path / "kustomization.yaml").is_file(), path


def test_base_kustomization_holds_every_manifest_but_the_secret_template() -> None:
    named = {p.name for p in kustomization_files(BASE)}
    assert named == {p.name for p in manifest_files() if p.parent == BASE}
    assert "secrets.template.yaml" not in named


@pytest.mark.parametrize("folder", [BASE, PRODUCTION], ids=["base", "production"])
def test_rendered_kustomization_validates(folder: Path, render_kustomization: Any) -> None:
    docs = render_kustomization(folder)
    problems = [
        f"{doc['kind']}/{doc['metadata']['name']}: {problem}"
        for doc in docs
        if (problem := validation_problem(doc))
    ]
    assert not problems, "\n".join(problems)
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "gonghui", doc["metadata"]["name"]


def test_production_overlay_sets_environment_stream_replicas_and_replicas(
    render_kustomization: Any,
) -> None:
    docs = render_kustomization(PRODUCTION)
    config = by_kind(docs, "ConfigMap")["gonghui-config"]["data"]
    assert config["GONGHUI_ENVIRONMENT"] == "production"
    assert config["GONGHUI_STREAM_REPLICAS"] == "3"
    autoscalers = by_kind(docs, "HorizontalPodAutoscaler")
    assert set(autoscalers) == set(SERVICES)
    for name, hpa in autoscalers.items():
        assert hpa["spec"]["minReplicas"] >= 2, name
        assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"], name
    base_limits = {
        name: pod_spec(d)["containers"][0]["resources"]
        for name, d in by_kind(render_kustomization(BASE), "Deployment").items()
    }
    for name, deployment in by_kind(docs, "Deployment").items():
        container = pod_spec(deployment)["containers"][0]
        assert container["image"].startswith("registry.example.cn/gonghui/"), name
        assert container["resources"] != base_limits[name], f"{name}: resources not set"


@pytest.fixture(scope="module")
def base_docs() -> list[dict[str, Any]]:
    return [doc for path in manifest_files() if path.parent == BASE for doc in documents(path)]


@pytest.mark.parametrize("service", SERVICES)
def test_deployment_has_probes_resources_and_a_locked_down_pod(
    service: str, base_docs: list[dict[str, Any]]
) -> None:
    spec = pod_spec(by_kind(base_docs, "Deployment")[service])
    assert spec["enableServiceLinks"] is False, (
        "service links would set <SERVICE>_PORT=tcp://…, which the settings read as the port"
    )
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    (container,) = spec["containers"]
    assert container["name"] == service
    assert container["image"] == f"gonghui/{service}"
    assert container["args"] == ["serve"]
    assert container["ports"] == [{"name": "http", "containerPort": SERVICES[service]}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}, kind
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    (wait,) = spec["initContainers"]
    assert wait["args"][0] == "wait-migrated" and wait["image"] == container["image"]
    assert wait["envFrom"] == container["envFrom"]


@pytest.mark.parametrize("service", SERVICES)
def test_service_autoscaler_budget_and_migration_job(
    service: str, base_docs: list[dict[str, Any]]
) -> None:
    deployment = by_kind(base_docs, "Deployment")[service]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
    svc = by_kind(base_docs, "Service")[service]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert svc["spec"]["ports"][0]["port"] == SERVICES[service]
    hpa = by_kind(base_docs, "HorizontalPodAutoscaler")[service]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": service,
    }
    budget = by_kind(base_docs, "PodDisruptionBudget")[service]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    job = by_kind(base_docs, "Job")[f"{service}-migrate"]
    spec = pod_spec(job)
    assert spec["restartPolicy"] == "Never" and spec["enableServiceLinks"] is False
    (migrate,) = spec["containers"]
    assert migrate["args"] == ["migrate"] and migrate["image"] == f"gonghui/{service}"
    assert migrate["envFrom"] == pod_spec(deployment)["containers"][0]["envFrom"]


def test_gateway_create_admin_job_reads_the_admin_secret(base_docs: list[dict[str, Any]]) -> None:
    spec = pod_spec(by_kind(base_docs, "Job")["gateway-create-admin"])
    (container,) = spec["containers"]
    assert container["args"] == ["gonghui-gateway", "create-admin"]
    assert {"secretRef": {"name": "gonghui-gateway-admin"}} in container["envFrom"]
    assert spec["initContainers"][0]["args"][0] == "wait-migrated"
    for deployment in by_kind(base_docs, "Deployment").values():
        refs = pod_spec(deployment)["containers"][0]["envFrom"]
        assert {"secretRef": {"name": "gonghui-gateway-admin"}} not in refs


def test_every_env_source_exists(
    base_docs: list[dict[str, Any]], k8s_config_sources: dict[tuple[str, str], set[str]]
) -> None:
    for doc in base_docs:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        spec = pod_spec(doc)
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            for source in container.get("envFrom", []):
                kind = "ConfigMap" if "configMapRef" in source else "Secret"
                name = (source.get("configMapRef") or source["secretRef"])["name"]
                assert (kind, name) in k8s_config_sources, f"{doc['metadata']['name']}: {name}"


def test_secret_template_holds_placeholders_only() -> None:
    for doc in documents(K8S / "secrets.template.yaml"):
        assert doc["kind"] == "Secret"
        assert "data" not in doc, "stringData only: a base64 value hides what it holds"
        for key, value in doc["stringData"].items():
            assert PLACEHOLDER in value, f"{doc['metadata']['name']}.{key} is not a placeholder"


def test_config_map_holds_no_secret(base_docs: list[dict[str, Any]]) -> None:
    for config in by_kind(base_docs, "ConfigMap").values():
        secret = [k for k in config["data"] if k.endswith(SECRET_SUFFIXES)]
        assert not secret, f"{config['metadata']['name']} holds {secret}: they go in a Secret"


def test_nats_values_ask_for_three_servers_with_fsynced_file_storage() -> None:
    values = yaml.safe_load((K8S / "nats-values.yaml").read_text())
    config = values["config"]
    assert config["cluster"] == {"enabled": True, "replicas": 3}
    jetstream = config["jetstream"]
    assert jetstream["enabled"] is True
    assert jetstream["fileStore"]["enabled"] is True
    assert jetstream["fileStore"]["pvc"]["enabled"] is True
    assert jetstream["merge"]["sync_interval"] == "always"
