"""Observability checked for real: Debian's Prometheus scrapes a running service, and every
PromQL expression of the Grafana dashboard must be valid and return data; promtool lints
/metrics."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.servers import ServiceProcess, free_port

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards" / "spard.json"
pytestmark = pytest.mark.slow


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def drive_traffic(url: str, stop: threading.Event) -> None:
    """Two runs stepping, with replays and rejected requests, and one run fed streamed
    observations (with resends), until told to stop."""
    rng = np.random.default_rng(0)
    with httpx.Client(base_url=url) as client:
        for run_id in ("obs-a", "obs-b"):
            client.post("/v1/runs", json={"run_id": run_id, "objectives": ["x", "y", "z"]})
        streaming = {"group_size": 4, "commit_after_groups": 2}
        body = {"run_id": "obs-s", "objectives": ["x", "y", "z"], "streaming": streaming}
        client.post("/v1/runs", json=body)
        step = 0
        while not stop.is_set():
            observations = [
                {"step": step, "group_id": group, "rollout_index": rollout, "scores": scores}
                for group in range(2)
                for rollout in range(4)
                for scores in [dict(zip("xyz", rng.random(3).round(2).tolist(), strict=True))]
            ]
            client.post("/v1/runs/obs-s/observations", json={"observations": observations})
            client.post("/v1/runs/obs-s/observations", json=observations[0])  # a resend: late
            for run_id in ("obs-a", "obs-b"):
                scores = (rng.random((4, 4, 3)) < 0.5).astype(float).tolist()
                body = {"step": step, "scores": scores}
                client.post(f"/v1/runs/{run_id}/steps", json=body)
                client.post(f"/v1/runs/{run_id}/steps", json=body)  # a replay
                # Refused against the run (2 objectives, the run has 3): counted as rejected.
                wrong_k = {"step": step, "scores": [[[1, 0], [0, 1]]]}
                client.post(f"/v1/runs/{run_id}/steps", json=wrong_k)
            step += 1
            time.sleep(0.05)


def test_promtool_accepts_the_metrics():
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with Debian's prometheus: run `make test`"
    server = ServiceProcess(env={"SPARD_AUTH_DISABLED": "true"}).start()
    stop = threading.Event()
    try:
        thread = threading.Thread(target=drive_traffic, args=(server.url, stop))
        thread.start()
        time.sleep(1.0)
        stop.set()
        thread.join()
        metrics = httpx.get(f"{server.url}/metrics").text
    finally:
        server.stop()
    assert "spard_run_reward_weight" in metrics
    done = subprocess.run(
        [promtool, "check", "metrics"], input=metrics, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_dashboard_query_returns_data_from_a_real_prometheus(tmp_path):
    prometheus = shutil.which("prometheus")
    assert prometheus, "Debian's prometheus is installed by `make test`"
    server = ServiceProcess(env={"SPARD_AUTH_DISABLED": "true"}).start()
    port = free_port()
    config = tmp_path / "prometheus.yml"
    target = server.url.removeprefix("http://")
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: spard\n    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )
    process = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stop = threading.Event()
    thread = threading.Thread(target=drive_traffic, args=(server.url, stop))
    thread.start()
    api = f"http://127.0.0.1:{port}/api/v1/query"
    try:
        pending = dashboard_expressions()
        assert len(pending) >= 10
        deadline = time.time() + 60
        failures: dict[str, str] = {}
        while pending and time.time() < deadline:
            time.sleep(2)
            failures = {}
            for expression in list(pending):
                try:
                    answer = httpx.get(api, params={"query": expression}, timeout=5).json()
                except httpx.TransportError as exc:
                    failures[expression] = repr(exc)
                    continue
                assert answer["status"] == "success", (expression, answer)
                if answer["data"]["result"]:
                    pending.remove(expression)
                else:
                    failures[expression] = "no data yet"
        assert not pending, failures
    finally:
        stop.set()
        thread.join()
        process.terminate()
        process.wait(timeout=20)
        server.stop()
