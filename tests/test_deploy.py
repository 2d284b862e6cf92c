"""Static checks of deploy/: no Docker engine or Kubernetes cluster runs here, so the files are
parsed and cross-checked (ports, probes, labels, mounts) rather than run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def load_all(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_dockerfile_is_slim_non_root_and_health_checked():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", text, re.MULTILINE)
    assert re.search(r"^USER 10001$", text, re.MULTILINE)
    assert "HEALTHCHECK" in text
    assert "/healthz" in text
    assert "'.[service]'" in text
    for folder in ("spard", "service", "client", "trainer_adapters"):
        assert f"COPY {folder} ./{folder}" in text


def test_compose_wires_replicas_redis_prometheus_and_grafana():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"redis", "spard", "prometheus", "grafana", "gateway"}
    assert "--appendonly" in services["redis"]["command"]
    spard = services["spard"]
    assert spard["deploy"]["replicas"] == 2
    assert spard["environment"]["SPARD_REDIS_URL"] == "redis://redis:6379/0"
    assert (DEPLOY.parent / spard["build"]["dockerfile"]).exists()
    for service in ("prometheus", "grafana", "gateway"):
        for volume in services[service]["volumes"]:
            source = volume.split(":")[0]
            assert (DEPLOY / source).exists(), volume
    scrape = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["dns_sd_configs"][0] == {"names": ["spard"], "type": "A", "port": 8000}
    assert "server spard:8000" in (DEPLOY / "nginx.conf").read_text()


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus():
    datasource = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["uid"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/spard.yml").read_text())[
        "providers"
    ][0]
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert any(m.split(":")[1] == provider["options"]["path"] for m in mounts)
    dashboard = json.loads((DEPLOY / "grafana/dashboards/spard.json").read_text())
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "prometheus"
        assert panel["targets"][0]["expr"]


def test_kubernetes_manifests_fit_together():
    documents = {
        (doc["kind"], doc["metadata"]["name"]): doc
        for path in (DEPLOY / "k8s").glob("*.yaml")
        for doc in load_all(path)
        if "metadata" in doc
    }
    for doc in documents.values():
        assert doc["apiVersion"]
    deployment = documents[("Deployment", "spard")]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    port_names = {port["name"] for port in container["ports"]}
    refs = {ref.get("configMapRef", ref.get("secretRef"))["name"] for ref in container["envFrom"]}
    assert ("ConfigMap", "spard") in documents
    assert ("Secret", "spard-api-keys") in documents
    assert refs == {"spard", "spard-api-keys"}
    service = documents[("Service", "spard")]
    assert service["spec"]["selector"] == labels
    assert service["spec"]["ports"][0]["targetPort"] in port_names
    hpa = documents[("HorizontalPodAutoscaler", "spard")]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "spard"
    monitor = documents[("ServiceMonitor", "spard")]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    kustomization = yaml.safe_load((DEPLOY / "k8s/kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (DEPLOY / "k8s" / resource).exists()
    assert "secret.example.yaml" not in kustomization["resources"]
