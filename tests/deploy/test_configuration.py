"""Every environment variable a service reads (taken from its settings class: each field, its
env prefix or `GONGHUI_` alias) is documented in the README's configuration table, and the
deployments (compose and Kubernetes) give a value to each one that has no safe default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from gateway.config import GatewaySettings
from gonghui_shared.settings import ServiceSettings
from membership.config import MembershipSettings
from stations.config import StationsSettings
from training.config import TrainingSettings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
SETTINGS: dict[str, type[ServiceSettings]] = {
    "membership": MembershipSettings,
    "training": TrainingSettings,
    "stations": StationsSettings,
    "gateway": GatewaySettings,
}
# Read by `gonghui-gateway create-admin` only: its one-shot gets it, the gateway never does.
ADMIN_PASSWORD = "GONGHUI_ADMIN_PASSWORD"
NAME = re.compile(r"`((?:<SERVICE>|[A-Z][A-Z0-9]*)_[A-Z0-9_]+)`")


def env_name(settings: type[ServiceSettings], field: str) -> str:
    """The variable pydantic-settings reads a field from: its `GONGHUI_` alias, else the
    service's prefix and the field's name."""
    alias = settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0]).upper()
    return f"{settings.model_config.get('env_prefix', '')}{field}".upper()


def env_names(settings: type[ServiceSettings]) -> set[str]:
    return {env_name(settings, field) for field in settings.model_fields}


def needs_a_value(settings: type[ServiceSettings]) -> set[str]:
    """The variables a deployment must set for this service: the keys (no default, so a dev
    key would be generated), the database (else SQLite in the container), anything that
    defaults to this machine (NATS, the services' URLs) and the environment itself."""
    needed = set()
    for field, info in settings.model_fields.items():
        default = info.default
        loopback = isinstance(default, str) and "127.0.0.1" in default
        if default is None or loopback or field in ("database_url", "environment"):
            needed.add(env_name(settings, field))
    if settings.issues_tokens:
        # The issuer verifies with its own private key; a JWKS or public key is not read.
        needed -= {"GONGHUI_JWKS_URL", "GONGHUI_JWT_PUBLIC_KEY"}
    else:
        # The others verify with the issuer's published keys, which makes the PEMs unneeded.
        needed -= {"GONGHUI_JWT_PRIVATE_KEY", "GONGHUI_JWT_PUBLIC_KEY"}
    needed.discard(ADMIN_PASSWORD)
    # Set only while the signing key rotates (README, "Rotate keys"), and read by the issuer.
    needed.discard("GONGHUI_JWT_ACCEPTED_PUBLIC_KEYS")
    return needed


def readme_table_names() -> set[str]:
    """The variables in the first column of the README's Configuration table; `<SERVICE>_X`
    stands for each service's."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        for name in NAME.findall(line.split("|")[1]):
            if name.startswith("<SERVICE>_"):
                names |= {name.replace("<SERVICE>", s.upper()) for s in SETTINGS}
            else:
                names.add(name)
    return names


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    documented = readme_table_names()
    for service, settings in SETTINGS.items():
        missing = sorted(env_names(settings) - documented)
        assert not missing, f"README, Configuration, lacks {service}'s {missing}"


def test_the_readme_table_names_only_variables_a_service_reads() -> None:
    read = set().union(*(env_names(s) for s in SETTINGS.values()))
    stale = sorted(readme_table_names() - read)
    assert not stale, f"README, Configuration, documents {stale}, which no service reads"


def test_needs_a_value_knows_the_keys() -> None:
    """A guard on the rule above, with the keys each service refuses to run without."""
    assert {"GONGHUI_JWT_PRIVATE_KEY", "GATEWAY_MEMBERSHIP_URL"} <= needs_a_value(GatewaySettings)
    assert "MEMBERSHIP_CARD_SIGNING_KEY" in needs_a_value(MembershipSettings)
    assert "TRAINING_QR_SIGNING_KEY" in needs_a_value(TrainingSettings)
    assert "STATIONS_CARD_PUBLIC_KEY" in needs_a_value(StationsSettings)
    for settings in SETTINGS.values():
        assert {"GONGHUI_PII_KEYS", "GONGHUI_NATS_URL", "GONGHUI_ENVIRONMENT"} <= needs_a_value(
            settings
        )


@pytest.mark.parametrize("service", SETTINGS)
def test_compose_gives_each_container_its_values(service: str, compose: dict[str, Any]) -> None:
    needed = needs_a_value(SETTINGS[service])
    containers = [service, f"{service}-migrate"]
    if service == "gateway":
        containers.append("gateway-create-admin")
    for name in containers:
        environment = compose["services"][name]["environment"]
        missing = sorted(needed - set(environment))
        assert not missing, f"compose service {name} lacks {missing}"
    if service == "gateway":
        assert ADMIN_PASSWORD in compose["services"]["gateway-create-admin"]["environment"]
        assert ADMIN_PASSWORD not in compose["services"]["gateway"]["environment"]


def k8s_environments(
    sources: dict[tuple[str, str], set[str]],
) -> list[tuple[str, str, set[str]]]:
    """(service, pod and container, variables it gets) for each container of the base."""
    found = []
    for path in sorted((K8S / "base").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not doc or doc["kind"] not in ("Deployment", "Job"):
                continue
            service = doc["metadata"]["labels"]["app.kubernetes.io/name"]
            spec = doc["spec"]["template"]["spec"]
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                names = {e["name"] for e in container.get("env", [])}
                for source in container.get("envFrom", []):
                    if "configMapRef" in source:
                        names |= sources[("ConfigMap", source["configMapRef"]["name"])]
                    else:
                        names |= sources[("Secret", source["secretRef"]["name"])]
                where = f"{doc['kind']} {doc['metadata']['name']}, {container['name']}"
                found.append((service, where, names))
    return found


def test_kubernetes_gives_each_container_its_values(
    k8s_config_sources: dict[tuple[str, str], set[str]],
) -> None:
    environments = k8s_environments(k8s_config_sources)
    assert {service for service, _, _ in environments} == set(SETTINGS)
    for service, where, names in environments:
        missing = sorted(needs_a_value(SETTINGS[service]) - names)
        assert not missing, f"{where} lacks {missing}"
        if where.startswith("Job gateway-create-admin, create-admin"):
            assert ADMIN_PASSWORD in names
        else:
            assert ADMIN_PASSWORD not in names, f"{where} should not see the admin password"
