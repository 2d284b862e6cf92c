"""Redis going away mid-run: clear 503s while it is down, correct results after."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import service_client, service_settings

import spard

pytestmark = pytest.mark.anyio
OBJECTIVES = ["a", "b"]


def batch(t: int) -> list:
    return (np.round(np.random.default_rng(t).random((6, 4, 2)) * 4) / 4).tolist()


async def test_redis_restart_mid_run(redis_server):
    settings = service_settings("redis", redis_server, redis_timeout_s=0.5)
    async with service_client(settings) as client:
        body = {"run_id": "survivor", "objectives": OBJECTIVES, "config": {"warmup": 2}}
        assert (await client.post("/v1/runs", json=body)).status_code == 201
        for t in range(3):
            response = await client.post(
                "/v1/runs/survivor/steps", json={"step": t, "scores": batch(t)}
            )
            assert response.status_code == 200

        redis_server.kill()
        try:
            down = await client.post(
                "/v1/runs/survivor/steps", json={"step": 3, "scores": batch(3)}
            )
            assert down.status_code == 503
            assert "run store unavailable" in down.json()["detail"]
            assert (await client.get("/v1/runs/survivor")).status_code == 503
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert "not ready" in ready.json()["detail"]
            assert (await client.get("/healthz")).status_code == 200
        finally:
            redis_server.start()

        assert (await client.get("/readyz")).status_code == 200
        for t in range(3, 6):
            response = await client.post(
                "/v1/runs/survivor/steps", json={"step": t, "scores": batch(t)}
            )
            assert response.status_code == 200, response.text
            assert response.json()["replayed"] is False
        run = (await client.get("/v1/runs/survivor")).json()
        metrics = (await client.get("/metrics")).text

    state = spard.init(OBJECTIVES, spard.SpardConfig(warmup=2))
    for t in range(6):
        _, state = spard.step(state, np.array(batch(t)), step=t)
    assert run["steps_applied"] == 6
    assert run["reward_weights"] == dict(
        zip(OBJECTIVES, state.reward_weights.tolist(), strict=True)
    )
    assert "spard_store_errors_total" in metrics


async def test_a_paused_redis_times_out_with_a_clear_error_within_budget(redis_server):
    import time

    settings = service_settings("redis", redis_server, redis_timeout_s=0.3)
    async with service_client(settings) as client:
        body = {"run_id": "slow", "objectives": OBJECTIVES}
        assert (await client.post("/v1/runs", json=body)).status_code == 201
        redis_server.pause()
        try:
            started = time.perf_counter()
            response = await client.post(
                "/v1/runs/slow/steps", json={"step": 0, "scores": batch(0)}
            )
            elapsed = time.perf_counter() - started
        finally:
            redis_server.resume()
        assert response.status_code == 503
        assert "TimeoutError" in response.json()["detail"]
        assert elapsed < 1.0  # the 0.3 s socket timeout, once: nothing below the service retries
        again = await client.post("/v1/runs/slow/steps", json={"step": 0, "scores": batch(0)})
        assert again.status_code == 200


@pytest.mark.slow
def test_killing_and_restarting_a_replica_mid_run_changes_nothing(redis_server):
    import signal

    import httpx

    from tests.servers import ServiceProcess

    env = {"SPARD_AUTH_DISABLED": "true", "SPARD_KEY_PREFIX": "replicas"}
    first = ServiceProcess("--redis-url", redis_server.url, env=env).start()
    second = ServiceProcess("--redis-url", redis_server.url, env=env).start()
    try:
        body = {"run_id": "ha", "objectives": OBJECTIVES, "config": {"warmup": 2}}
        assert httpx.post(f"{first.url}/v1/runs", json=body).status_code == 201
        for t in range(3):
            httpx.post(f"{first.url}/v1/runs/ha/steps", json={"step": t, "scores": batch(t)})
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        for t in range(3, 5):
            answer = httpx.post(
                f"{second.url}/v1/runs/ha/steps", json={"step": t, "scores": batch(t)}
            )
            assert answer.status_code == 200
        first.start()  # the same command, a fresh process on the same port
        for t in range(5, 7):
            answer = httpx.post(
                f"{first.url}/v1/runs/ha/steps", json={"step": t, "scores": batch(t)}
            )
            assert answer.status_code == 200
        run = httpx.get(f"{second.url}/v1/runs/ha").json()
        history = httpx.get(f"{first.url}/v1/runs/ha/history").json()["entries"]
    finally:
        first.stop()
        second.stop()
    state = spard.init(OBJECTIVES, spard.SpardConfig(warmup=2))
    for t in range(7):
        _, state = spard.step(state, np.array(batch(t)), step=t)
    assert run["reward_weights"] == dict(
        zip(OBJECTIVES, state.reward_weights.tolist(), strict=True)
    )
    assert [entry["step"] for entry in history] == list(range(7))
