"""Bounded by bytes (issue 24, item 13): the states a replica keeps decoded, and the state a
run stores whatever N."""

from __future__ import annotations

import numpy as np
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
