"""Static checks of deploy/: no Docker engine or Kubernetes cluster runs here, so the files are
parsed, validated against the Kubernetes API's schemas (kubernetes-validate ships them, so it
works offline) and cross-checked (ports, probes, labels, mounts, policies) rather than run.
checkov, the security scan, runs apart: `make deploy-check`."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
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


def k8s_documents() -> dict[tuple[str, str], dict]:
    """Every object of deploy/k8s by (kind, name), the example Secrets included."""
    return {
        (doc["kind"], doc["metadata"]["name"]): doc
        for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
        for doc in load_all(path)
        if "metadata" in doc
    }


def containers(doc: dict) -> dict[str, dict]:
    return {c["name"]: c for c in doc["spec"]["template"]["spec"]["containers"]}


def nginx_directives(text: str) -> dict[str, str]:
    """The simple `name value;` lines of an nginx config (the last one of a name wins)."""
    return dict(re.findall(r"^\s*([a-z_]+)\s+([^;{]+);", text, re.MULTILINE))


def test_kubernetes_manifests_fit_together():
    documents = k8s_documents()
    for (kind, _), doc in documents.items():
        assert doc["apiVersion"]
        if kind != "Namespace":  # nothing in `default`
            assert doc["metadata"]["namespace"] == "spard", doc["metadata"]
    assert ("Namespace", "spard") in documents
    deployment = documents[("Deployment", "spard")]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    app, proxy = containers(deployment)["spard"], containers(deployment)["proxy"]
    config = documents[("ConfigMap", "spard")]["data"]
    # uvicorn on the pod's loopback; only the proxy container has a port, the Service's target.
    assert config["SPARD_HOST"] == "127.0.0.1"
    assert "ports" not in app
    port_names = {port["name"]: port["containerPort"] for port in proxy["ports"]}
    proxy_conf = documents[("ConfigMap", "spard-proxy")]["data"]["default.conf"]
    assert f"listen {port_names['http']};" in proxy_conf
    assert f"proxy_pass http://127.0.0.1:{config['SPARD_PORT']};" in proxy_conf
    assert app["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port_names["http"]}
    assert "http://127.0.0.1:8000/healthz" in " ".join(app["livenessProbe"]["exec"]["command"])
    assert proxy["readinessProbe"]["httpGet"]["port"] == "http"
    # Settings from the ConfigMap; secrets only as files, each *_FILE inside a Secret's mount.
    assert [ref["configMapRef"]["name"] for ref in app["envFrom"]] == ["spard"]
    assert "env" not in app
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounted_files = {
        f"{mount['mountPath']}/{item['path']}": (volumes[mount["name"]]["secret"], item["key"])
        for mount in app["volumeMounts"]
        if "secret" in volumes[mount["name"]]
        for item in volumes[mount["name"]]["secret"]["items"]
    }
    for setting in ("SPARD_API_KEYS_FILE", "SPARD_METRICS_KEY_FILE", "SPARD_REDIS_PASSWORD_FILE"):
        secret, key = mounted_files[config[setting]]
        assert key in documents[("Secret", secret["secretName"])]["stringData"], setting
    service = documents[("Service", "spard")]
    assert service["spec"]["selector"] == labels
    assert service["spec"]["ports"][0]["targetPort"] in port_names
    hpa = documents[("HorizontalPodAutoscaler", "spard")]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "spard"
    pdb = documents[("PodDisruptionBudget", "spard")]
    assert pdb["spec"]["selector"]["matchLabels"] == labels
    assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    monitor = documents[("ServiceMonitor", "spard")]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    credentials = endpoint["authorization"]["credentials"]
    assert credentials["key"] in documents[("Secret", credentials["name"])]["stringData"]
    assert mounted_files[config["SPARD_METRICS_KEY_FILE"]][1] == credentials["key"]
    kustomization = yaml.safe_load((DEPLOY / "k8s/kustomization.yaml").read_text())
    manifests = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")}
    assert set(kustomization["resources"]) == manifests - {
        "kustomization.yaml",
        "secret.example.yaml",  # the real Secrets are created apart, never from the repository
    }


def test_pods_run_restricted():
    """What checkov and Pod Security's "restricted" profile ask of every pod, kept here too."""
    documents = k8s_documents()
    assert (
        documents[("Namespace", "spard")]["metadata"]["labels"][
            "pod-security.kubernetes.io/enforce"
        ]
        == "restricted"
    )
    workloads = [
        doc for (kind, _), doc in documents.items() if kind in {"Deployment", "StatefulSet"}
    ]
    assert len(workloads) == 2
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        account = documents[("ServiceAccount", pod["serviceAccountName"])]
        assert account["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] >= 10000
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            assert container["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]},
            }, container["name"]
            assert container["resources"]["requests"]
            assert container["resources"]["limits"]
            assert "env" not in container  # no secret in an environment variable
        # The one check skipped, with its reason, where checkov reads it (kustomize keeps it).
        annotations = workload["metadata"]["annotations"]
        assert annotations["checkov.io/skip1"].startswith("CKV_K8S_43=")


def test_redis_is_deployed_persistent_and_password_protected():
    documents = k8s_documents()
    redis = documents[("StatefulSet", "redis")]
    service = documents[("Service", "redis")]
    url = urlsplit(documents[("ConfigMap", "spard")]["data"]["SPARD_REDIS_URL"])
    assert (url.hostname, url.port) == (
        service["metadata"]["name"],
        service["spec"]["ports"][0]["port"],
    )
    assert redis["spec"]["serviceName"] == service["metadata"]["name"]
    labels = redis["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    text = documents[("ConfigMap", "redis")]["data"]["redis.conf"]
    conf = dict(re.findall(r"^([a-z-]+) (.+)$", text, re.MULTILINE))
    assert (conf["appendonly"], conf["appendfsync"]) == ("yes", "everysec")  # AOF, as compose
    assert conf["maxmemory-policy"] == "noeviction"  # run state is never evicted
    assert conf["dir"] == "/data"
    (container,) = redis["spec"]["template"]["spec"]["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/data"] == redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
    # The password reaches redis-server through the included file, written from the Secret.
    assert "requirepass" in container["args"][0]
    assert f"> {conf['include']}" in container["args"][0]
    assert container["resources"]["limits"]["memory"] == "1Gi"
    volumes = {v["name"]: v for v in redis["spec"]["template"]["spec"]["volumes"]}
    assert volumes[mounts["/run/secrets/redis"]]["secret"]["secretName"] == "spard-redis"


def test_network_policies_fence_the_namespace():
    policies = {
        name: doc for (kind, name), doc in k8s_documents().items() if kind == "NetworkPolicy"
    }
    deny = policies["default-deny"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    spard = policies["spard"]["spec"]
    assert spard["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "spard"}
    (ingress,) = spard["ingress"]
    assert ingress["from"] == [
        {"namespaceSelector": {"matchLabels": {"spard.io/trainers": "true"}}},
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        },
    ]
    assert ingress["ports"] == [{"protocol": "TCP", "port": "http"}]  # the proxy, not uvicorn
    to_redis = spard["egress"][0]
    assert to_redis["to"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "redis"}}}]
    assert to_redis["ports"] == [{"protocol": "TCP", "port": 6379}]
    assert all(rule["ports"][0]["port"] == 53 for rule in spard["egress"][1:])  # DNS only
    redis = policies["redis"]["spec"]
    assert redis["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "spard"}}}],
            "ports": [{"protocol": "TCP", "port": 6379}],
        }
    ]
    assert redis["egress"] == []


def test_the_proxy_bounds_request_reads_in_kubernetes_as_in_compose():
    compose = nginx_directives((DEPLOY / "nginx.conf").read_text())
    k8s = nginx_directives(k8s_documents()[("ConfigMap", "spard-proxy")]["data"]["default.conf"])
    for directive in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        assert compose[directive] == k8s[directive], directive
        assert int(compose[directive].removesuffix("s")) <= 30
    assert compose["client_max_body_size"] == k8s["client_max_body_size"] == "64m"
    # nginx reads the whole body before uvicorn sees it (its default): never turned off.
    assert "proxy_request_buffering" not in compose
    assert "proxy_request_buffering" not in k8s


# The Prometheus Operator's CRD: not in the Kubernetes API's schemas; cross-checked above.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
# The oldest minor release the manifests support (autoscaling/v2, policy/v1 and the
# kubernetes.io/metadata.name label are older) and the newest that the package knows.
SCHEMA_VERSIONS = ["1.30.0", kubernetes_validate.utils.latest_version()]
KUSTOMIZATIONS = [DEPLOY / "k8s", DEPLOY / "overlays/managed-redis"]


def validate(documents: list[dict], version: str) -> set[str]:
    """Validate each object strictly (an unknown field fails too); the kinds validated."""
    kinds = set()
    for doc in documents:
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(doc, version, strict=True)
        kinds.add(doc["kind"])
    return kinds


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schema(version):
    documents = [
        doc
        for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in load_all(path)
    ]
    assert validate(documents, version) == {
        "Namespace", "ServiceAccount", "ConfigMap", "Secret", "Deployment", "Service",
        "HorizontalPodAutoscaler", "PodDisruptionBudget", "StatefulSet", "NetworkPolicy",
    }  # fmt: skip


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=lambda path: path.name)
def test_what_kustomize_renders_validates_too(kustomization):
    """The overlay's patches only make sense rendered: kubectl's kustomize renders (the image
    ships kubectl; a machine without it skips this, the files themselves are still checked)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: kustomize output not rendered")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(kustomization)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    documents = [doc for doc in yaml.safe_load_all(rendered) if doc]
    for version in SCHEMA_VERSIONS:
        validate(documents, version)
    objects = {(doc["kind"], doc["metadata"]["name"]): doc for doc in documents}
    assert ("Deployment", "spard") in objects
    redis_url = objects[("ConfigMap", "spard")]["data"]["SPARD_REDIS_URL"]
    egress = objects[("NetworkPolicy", "spard")]["spec"]["egress"][0]["to"][0]
    if kustomization.name == "managed-redis":  # no Redis of its own, and the fence follows
        assert not [key for key in objects if key[1] == "redis"]
        assert redis_url.startswith("rediss://")
        assert "ipBlock" in egress
    else:
        assert ("StatefulSet", "redis") in objects
        assert egress == {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "redis"}}}


def test_the_schema_check_catches_a_broken_manifest():
    deployment = k8s_documents()[("Deployment", "spard")]
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["securityContext"][
        "readOnlyRootFilesytem"
    ] = True
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    for broken in (typo, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            validate([broken], SCHEMA_VERSIONS[-1])
