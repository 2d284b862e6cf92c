"""/metrics shows tenants' runs only to whom may see them (#13.4): no credentials, process
metrics only; a tenant's key, its own runs; SPARD_METRICS_KEY, every tenant; a wrong key, 401."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import service_client, service_settings

pytestmark = pytest.mark.anyio
KEYS = {"key-of-team-a": "team-a", "key-of-team-b": "team-b"}
METRICS_KEY = "scraper-secret-0123456789"
DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def test_per_run_series_follow_the_credentials(store_kind, request):
    redis = request.getfixturevalue("redis_server") if store_kind == "redis" else None
    settings = service_settings(
        store_kind, redis, auth_disabled=None, api_keys=KEYS, metrics_key=METRICS_KEY
    )
    async with service_client(settings) as client:
        for key, tenant in KEYS.items():
            body = {"run_id": f"run-{tenant}", "objectives": [f"secret-{tenant}"]}
            created = await client.post("/v1/runs", json=body, headers=bearer(key))
            assert created.status_code == 201, created.text
            scores = {"step": 0, "scores": [[[1.0], [0.0]]]}
            await client.post(f"/v1/runs/run-{tenant}/steps", json=scores, headers=bearer(key))

        anonymous = await client.get("/metrics")
        assert anonymous.status_code == 200
        assert "spard_steps_total" in anonymous.text
        assert "team-a" not in anonymous.text
        assert "secret-" not in anonymous.text

        own = (await client.get("/metrics", headers=bearer("key-of-team-a"))).text
        assert 'run_id="run-team-a"' in own
        assert "team-b" not in own

        everything = (await client.get("/metrics", headers=bearer(METRICS_KEY))).text
        assert 'run_id="run-team-a"' in everything
        assert 'run_id="run-team-b"' in everything

        wrong = await client.get("/metrics", headers=bearer("not-a-key"))
        assert wrong.status_code == 401


def test_the_gateway_hides_metrics_and_prometheus_scrapes_with_the_key():
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "location = /metrics {\n        return 404;" in nginx
    scrape = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["authorization"]["credentials_file"] == "/run/secrets/metrics_key"
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert compose["secrets"]["metrics_key"] == {"environment": "SPARD_METRICS_KEY"}
    assert "metrics_key" in compose["services"]["prometheus"]["secrets"]
    assert "SPARD_METRICS_KEY" in compose["services"]["spard"]["environment"]
