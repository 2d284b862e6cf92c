"""Bounded by bytes (issue 24, item 13): the states a replica keeps decoded, and the state a
run stores whatever N."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from conftest import service_settings

import spard
from spard.service.http.app import make_store
from spard.service.protocol.streaming import StreamingConfig
from spard.service.runs.run_service import RunOptions, RunService
from spard.service.runs.store import RunKey

pytestmark = pytest.mark.anyio
OBJECTIVES = ["a", "b"]


def batch(t: int, prompts: int = 4) -> np.ndarray:
    return np.random.default_rng(t).random((prompts, 2, 2))


async def test_the_replica_cache_is_bounded_by_bytes(store_kind, request):
    redis = request.getfixturevalue("redis_server") if store_kind == "redis" else None
    store = make_store(service_settings(store_kind, redis))
    probe = RunService(store)
    await probe.create(
        RunKey("t", "probe"), OBJECTIVES, spard.SpardConfig(), None, StreamingConfig()
    )
    one_run = probe.cached_bytes
    budget = 3 * one_run + one_run // 2
    runs = RunService(store, RunOptions(cache_bytes=budget))
    for n in range(8):
        key = RunKey("t", f"r{n}")
        await runs.create(key, OBJECTIVES, spard.SpardConfig(), None, StreamingConfig())
        await runs.step(key, 0, batch(n), False)
        assert runs.cached_bytes <= budget
    # A run whose state is over the whole budget is not kept, and still steps.
    big = RunKey("t", "big")
    await runs.create(big, OBJECTIVES, spard.SpardConfig(), None, StreamingConfig())
    for t in range(3):
        result = await runs.step(big, t, batch(t, prompts=400), False)
        assert result.step == t
        assert runs.cached_bytes <= budget
    await store.close()


def test_a_step_over_replay_max_prompts_does_not_grow_the_state():
    config = spard.SpardConfig(replay_max_prompts=16, warmup=1)
    state = spard.init(OBJECTIVES, config)
    _, state = spard.step(state, batch(0, prompts=8), step=0)
    small = len(state.to_json())
    applied, state = spard.step(state, batch(1, prompts=4096), step=1, return_advantages=True)
    assert len(state.to_json()) < 2 * small  # not 4,096 weights and flags
    reloaded = spard.State.from_dict(orjson.loads(state.to_json()))
    again, _ = spard.step(reloaded, batch(1, prompts=4096), step=1, return_advantages=True)
    assert again.replayed
    np.testing.assert_array_equal(again.sample_weights, applied.sample_weights)
    np.testing.assert_array_equal(again.zero_signal, applied.zero_signal)
    np.testing.assert_array_equal(again.advantages, applied.advantages)
    _, state = spard.step(reloaded, batch(2), step=2)
    assert [entry.step for entry in state.recent] == [2]  # its arrays were never kept
    with pytest.raises(spard.StepOrderError):
        spard.step(state, batch(1, prompts=4096), step=1)


async def test_the_service_stores_a_bounded_state_whatever_n(client):
    body = {"run_id": "wide", "objectives": OBJECTIVES, "config": {"replay_max_prompts": 16}}
    await client.post("/v1/runs", json=body)
    scores = batch(0, prompts=4096).tolist()
    first = await client.post("/v1/runs/wide/steps", json={"step": 0, "scores": scores})
    state = await client.get("/v1/runs/wide/state")
    assert len(state.content) < 20_000
    again = await client.post("/v1/runs/wide/steps", json={"step": 0, "scores": scores})
    assert again.json()["replayed"] is True
    assert again.json()["sample_weights"] == first.json()["sample_weights"]
