"""Metrics are scraped: deploy/prometheus/prometheus.yml parses and targets the four services'
/metrics at their compose names and ports, compose runs it (profile `observability`), and each
Kubernetes Deployment's pods carry the prometheus.io annotations for their port."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import GatewaySettings
from gonghui_shared.settings import ServiceSettings
from membership.config import MembershipSettings
from stations.config import StationsSettings
from training.config import TrainingSettings

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus" / "prometheus.yml"
BASE = REPO / "deploy" / "k8s" / "base"
SETTINGS: dict[str, type[ServiceSettings]] = {
    "gateway": GatewaySettings,
    "membership": MembershipSettings,
    "training": TrainingSettings,
    "stations": StationsSettings,
}


def scrape_config() -> dict[str, Any]:
    document = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_prometheus_scrapes_each_service_at_its_port() -> None:
    jobs = {job["job_name"]: job for job in scrape_config()["scrape_configs"]}
    assert set(SETTINGS) <= set(jobs)
    for service, settings in SETTINGS.items():
        job = jobs[service]
        assert job.get("metrics_path", "/metrics") == "/metrics"
        targets = [t for static in job["static_configs"] for t in static["targets"]]
        assert targets == [f"{service}:{settings.default_port}"]
        # The metrics carry a `service` label: a target label so named would rename it.
        assert all("service" not in static.get("labels", {}) for static in job["static_configs"])


def test_compose_runs_prometheus_with_that_file(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    assert prometheus["profiles"] == ["observability"]
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert set(prometheus["networks"]) == {"gonghui"}
    scraped = {
        target.split(":")[0]
        for job in scrape_config()["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert scraped <= set(compose["services"]), "every target is a compose service"


@pytest.mark.parametrize("service", SETTINGS)
def test_kubernetes_pods_invite_scraping_on_their_port(service: str) -> None:
    docs = yaml.safe_load_all((BASE / f"{service}.yaml").read_text(encoding="utf-8"))
    (deployment,) = [d for d in docs if d and d["kind"] == "Deployment"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (port,) = container["ports"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port["containerPort"]),
        "prometheus.io/path": "/metrics",
    }
    assert port["containerPort"] == SETTINGS[service].default_port


def test_promtool_accepts_the_config() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed: the file is checked as YAML only")
    result = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(PROMETHEUS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
