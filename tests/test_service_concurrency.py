"""Exactly-once steps under concurrency: many tasks, and two server processes on one Redis."""

from __future__ import annotations

import asyncio
import re
import threading

import httpx
import numpy as np
import pytest

import spard
from tests.servers import ServiceProcess

pytestmark = pytest.mark.anyio
OBJECTIVES = ["a", "b", "c"]


def batch(t: int) -> list:
    rng = np.random.default_rng(t)
    return (np.round(rng.random((8, 4, 3)) * 4) / 4).tolist()


def expected_results(steps: int):
    state = spard.init(OBJECTIVES, spard.SpardConfig(warmup=2))
    results = []
    for t in range(steps):
        result, state = spard.step(state, np.array(batch(t)), step=t)
        results.append(result)
    return results, state


async def test_duplicate_steps_from_many_tasks_apply_once(client):
    body = {"run_id": "busy", "objectives": OBJECTIVES, "config": {"warmup": 2}}
    assert (await client.post("/v1/runs", json=body)).status_code == 201
    steps, copies = 6, 12
    responses = []
    for t in range(steps):
        sends = [
            client.post("/v1/runs/busy/steps", json={"step": t, "scores": batch(t)})
            for _ in range(copies)
        ]
        responses.append(await asyncio.gather(*sends))
    expected, _state = expected_results(steps)
    for t, answers in enumerate(responses):
        bodies = [r.json() for r in answers]
        assert all(r.status_code == 200 for r in answers)
        assert sum(not b["replayed"] for b in bodies) == 1
        for b in bodies:
            assert b["reward_weights"] == expected[t].weights_by_objective()
            assert b["sample_weights"] == expected[t].sample_weights.tolist()
    run = (await client.get("/v1/runs/busy")).json()
    assert run["steps_applied"] == steps
    history = (await client.get("/v1/runs/busy/history")).json()["entries"]
    assert [e["step"] for e in history] == list(range(steps))


async def test_interleaved_runs_stay_independent(client):
    for run_id in ("x", "y"):
        body = {"run_id": run_id, "objectives": OBJECTIVES, "config": {"warmup": 2}}
        await client.post("/v1/runs", json=body)
    sends = [
        client.post(f"/v1/runs/{run_id}/steps", json={"step": t, "scores": batch(t)})
        for t in range(5)
        for run_id in ("x", "y")
    ]
    # Steps of one run must arrive in order, so send each step index together.
    for index in range(0, len(sends), 2):
        await asyncio.gather(*sends[index : index + 2])
    _, state = expected_results(5)
    for run_id in ("x", "y"):
        run = (await client.get(f"/v1/runs/{run_id}")).json()
        assert run["reward_weights"] == dict(
            zip(OBJECTIVES, state.reward_weights.tolist(), strict=False)
        )


@pytest.mark.slow
def test_two_server_processes_sharing_redis_apply_each_step_once(redis_server):
    env = {"SPARD_AUTH_DISABLED": "true", "SPARD_KEY_PREFIX": "twoproc"}
    first = ServiceProcess("--redis-url", redis_server.url, "--workers", "2", env=env).start()
    second = ServiceProcess("--redis-url", redis_server.url, env=env).start()
    try:
        body = {"run_id": "shared", "objectives": OBJECTIVES, "config": {"warmup": 2}}
        assert httpx.post(f"{first.url}/v1/runs", json=body).status_code == 201
        steps, per_server = 8, 4
        outcomes: dict[int, list[dict]] = {t: [] for t in range(steps)}
        lock = threading.Lock()

        def send(url: str, t: int, barrier: threading.Barrier) -> None:
            barrier.wait()
            response = httpx.post(
                f"{url}/v1/runs/shared/steps", json={"step": t, "scores": batch(t)}, timeout=30
            )
            assert response.status_code == 200, response.text
            with lock:
                outcomes[t].append(response.json())

        for t in range(steps):
            barrier = threading.Barrier(2 * per_server)
            threads = [
                threading.Thread(target=send, args=(server.url, t, barrier))
                for server in (first, second)
                for _ in range(per_server)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        expected, _ = expected_results(steps)
        for t in range(steps):
            assert len(outcomes[t]) == 2 * per_server
            assert sum(not o["replayed"] for o in outcomes[t]) == 1
            assert all(
                o["reward_weights"] == expected[t].weights_by_objective() for o in outcomes[t]
            )
        run = httpx.get(f"{second.url}/v1/runs/shared").json()
        assert run["steps_applied"] == steps
        history = httpx.get(f"{first.url}/v1/runs/shared/history").json()["entries"]
        assert [e["step"] for e in history] == list(range(steps))

        # The 2-worker server's /metrics sums its workers' counters (multiprocess mode).
        text = httpx.get(f"{first.url}/metrics").text
        counted = sum(
            float(value)
            for value in re.findall(
                r'spard_steps_total\{outcome="(?:applied|replayed)"\} (\S+)', text
            )
        )
        assert counted == steps * per_server
        assert 'spard_run_reward_weight{objective="a",run_id="shared",tenant="local"}' in text
    finally:
        first.stop()
        second.stop()
