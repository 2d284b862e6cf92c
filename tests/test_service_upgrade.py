"""Runs written to Redis by an earlier version (before streaming): a new version serves them.

The first releases stored a run as ``state, summary, etag, updated`` only; this version also
reads ``last_step``, ``weights``, ``meta`` and ``incarnation``. Such a run must keep stepping
from the right step, answer every read, and take observations, with nothing lost.
"""

from __future__ import annotations

import numpy as np
import orjson
import pytest
import redis
from conftest import service_client, service_settings

import spard
from spard.service.settings import LOCAL_TENANT

pytestmark = pytest.mark.anyio
OBJECTIVES = ["a", "b"]
CONFIG = {"warmup": 2}


def batch(t: int) -> list:
    return (np.round(np.random.default_rng(t).random((4, 3, 2)) * 4) / 4).tolist()


def make_legacy(redis_server, prefix: str, run_id: str) -> None:
    """Turn a run hash into what the first releases wrote."""
    client = redis.Redis(port=redis_server.port)
    key = f"{prefix}:{{{LOCAL_TENANT}:{run_id}}}:run"
    client.hdel(key, "last_step", "weights", "meta", "incarnation")
    summary = orjson.loads(client.hget(key, "summary"))
    del summary["streaming"]
    client.hset(key, "summary", orjson.dumps(summary))
    assert sorted(client.hkeys(key)) == [b"etag", b"state", b"summary", b"updated"]


async def step(client, run_id: str, t: int) -> dict:
    response = await client.post(f"/v1/runs/{run_id}/steps", json={"step": t, "scores": batch(t)})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("first_call", ["step", "summary", "list", "weights", "observe", "replay"])
async def test_a_run_from_an_earlier_version_is_upgraded_on_first_use(redis_server, first_call):
    settings = service_settings("redis", redis_server)
    async with service_client(settings) as client:
        body = {"run_id": "old", "objectives": OBJECTIVES, "config": CONFIG}
        assert (await client.post("/v1/runs", json=body)).status_code == 201
        answered = [await step(client, "old", t) for t in range(3)]
    make_legacy(redis_server, settings.key_prefix, "old")

    # A fresh replica (nothing cached), as after a deploy of the new version.
    async with service_client(settings) as client:
        if first_call == "summary":
            run = (await client.get("/v1/runs/old")).json()
            assert run["streaming"]["incomplete_groups"] == "pad"
            assert run["last_step"] == 2
        elif first_call == "list":  # GET /v1/runs reads summaries in bulk: upgraded too
            (listed,) = (await client.get("/v1/runs")).json()["runs"]
            assert listed["run_id"] == "old"
            assert listed["streaming"]["incomplete_groups"] == "pad"
        elif first_call == "weights":
            response = await client.get("/v1/runs/old/weights")
            assert response.status_code == 200, response.text
            assert response.json()["step"] == 2
        elif first_call == "observe":
            observation = {"step": 3, "group_id": 0, "rollout_index": 0, "scores": {"a": 1.0}}
            response = await client.post("/v1/runs/old/observations", json=observation)
            assert response.status_code == 200, response.text
            assert response.json()["accepted"] == 1
        elif first_call == "replay":
            again = await step(client, "old", 2)
            assert again["replayed"] is True
            assert again["reward_weights"] == answered[2]["reward_weights"]
        if first_call != "observe":
            answered += [await step(client, "old", t) for t in range(3, 6)]
        run = (await client.get("/v1/runs/old")).json()
        weights = (await client.get("/v1/runs/old/weights")).json()
        history = (await client.get("/v1/runs/old/history")).json()

    state = spard.init(OBJECTIVES, spard.SpardConfig(**CONFIG))
    applied = 3 if first_call == "observe" else 6
    for t in range(applied):
        result, state = spard.step(state, np.array(batch(t)), step=t)
        assert answered[t]["reward_weights"] == result.weights_by_objective()
    expected = dict(zip(OBJECTIVES, state.reward_weights.tolist(), strict=True))
    assert run["steps_applied"] == applied
    assert run["reward_weights"] == expected
    assert weights["reward_weights"] == expected
    assert weights["step"] == applied - 1
    assert [entry["step"] for entry in history["entries"]] == list(range(applied))


async def test_concurrent_first_uses_upgrade_a_run_once(redis_server):
    import asyncio

    settings = service_settings("redis", redis_server)
    async with service_client(settings) as client:
        body = {"run_id": "old", "objectives": OBJECTIVES, "config": CONFIG}
        assert (await client.post("/v1/runs", json=body)).status_code == 201
        await step(client, "old", 0)
    make_legacy(redis_server, settings.key_prefix, "old")

    async with service_client(settings) as first, service_client(settings) as second:
        replies = await asyncio.gather(
            *(client.get(path) for client in (first, second) for path in ("/v1/runs/old",) * 4),
            *(client.get("/v1/runs/old/weights") for client in (first, second)),
        )
        assert all(reply.status_code == 200 for reply in replies), [r.text for r in replies]
        # Both replicas then agree on one incarnation: observations from either are taken.
        for t, client in enumerate((first, second)):
            observation = {"step": 1, "group_id": t, "rollout_index": 0, "scores": {"a": 0.5}}
            response = await client.post("/v1/runs/old/observations", json=observation)
            assert response.json()["accepted"] == 1, response.text
    key = f"{settings.key_prefix}:{{{LOCAL_TENANT}:old}}:run"
    stored = redis.Redis(port=redis_server.port).hmget(key, "incarnation", "last_step")
    assert stored[0] is not None
    assert stored[1] == b"0"
