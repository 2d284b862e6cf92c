"""State imports the engine cannot step are refused (issue 24, item 3): the stored state stays
the good one, any replica can load it, and /metrics never fails because of one run."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
import redis
from conftest import service_settings
from prometheus_client import CollectorRegistry, generate_latest

import spard
from spard.config import MAX_STEP
from spard.service.http.app import make_store
from spard.service.http.metrics import _RunCollector
from spard.service.protocol.streaming import StreamingConfig
from spard.service.runs.run_service import RunService
from spard.service.runs.store import RecentRun, RunKey
from spard.service.runs.store.memory import MemoryStore

pytestmark = pytest.mark.anyio
OBJECTIVES = ["a", "b"]


def batch(t: int) -> list:
    return np.random.default_rng(t).random((4, 3, 2)).tolist()


def _broken(document, change):
    broken = copy.deepcopy(document)
    change(broken)
    return broken


BROKEN = {
    "null level and gains": lambda d: d.update(
        level=[None, None], gains=[[None] * len(row) for row in d["gains"]]
    ),
    "steps_applied at its maximum": lambda d: d.update(steps_applied=MAX_STEP),
    "last_step at its maximum": lambda d: d.update(last_step=MAX_STEP),
    "values near the loader's bound": lambda d: d.update(progress=[1e300, -1e300]),
}


@pytest.mark.parametrize("change", BROKEN.values(), ids=BROKEN.keys())
async def test_an_import_the_engine_cannot_step_is_refused(client, change):
    body = {"run_id": "r", "objectives": OBJECTIVES, "config": {"warmup": 1}}
    assert (await client.post("/v1/runs", json=body)).status_code == 201
    for t in range(3):
        await client.post("/v1/runs/r/steps", json={"step": t, "scores": batch(t)})
    good = (await client.get("/v1/runs/r/state")).json()

    refused = await client.put("/v1/runs/r/state", json=_broken(good, change))
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "state"
    assert (await client.get("/v1/runs/r/state")).json() == good
    for t in (3, 4):
        step = await client.post("/v1/runs/r/steps", json={"scores": batch(t)})
        assert step.status_code == 200, step.text
        assert all(isinstance(w, float) for w in step.json()["reward_weights"].values())
    assert (await client.get("/metrics")).status_code == 200


def _corrupt(store, settings, key: RunKey) -> None:
    """Make the stored state one no replica can load (as an earlier version could)."""
    if isinstance(store, MemoryStore):
        run = store._runs[key]
        run.record = replace(run.record, state=b'{"version": 1}')
    else:
        client = redis.Redis.from_url(settings.redis_url)
        client.hset(f"{settings.key_prefix}:{key.hash_tag}:run", "state", b'{"version": 1}')


async def test_importing_a_good_state_repairs_a_run_that_no_longer_loads(store_kind, request):
    redis_server = request.getfixturevalue("redis_server") if store_kind == "redis" else None
    settings = service_settings(store_kind, redis_server)
    store = make_store(settings)
    runs = RunService(store)
    key = RunKey("t", "repair")
    await runs.create(key, OBJECTIVES, spard.SpardConfig(), None, StreamingConfig())
    await runs.step(key, 0, np.array(batch(0)), False)
    good = spard.State.from_dict(__import__("orjson").loads(await runs.export_state(key)))
    _corrupt(store, settings, key)
    with pytest.raises(spard.InputError):
        await RunService(store).step(key, 1, np.array(batch(1)), False)  # a fresh replica

    await runs.import_state(key, good.to_dict())
    result = await RunService(store).step(key, 1, np.array(batch(1)), False)
    assert result.step == 1
    await store.close()


def test_metrics_skip_what_one_run_cannot_report():
    summaries = [
        RecentRun(
            RunKey("t", "nulls"),
            b'{"last_step": null, "reward_weights": {"a": null}, "stats": null}',
        ),
        RecentRun(RunKey("t", "garbage"), b"not json"),
        RecentRun(RunKey("t", "list"), b"[1, 2]"),
        RecentRun(
            RunKey("t", "good"), b'{"last_step": 3, "reward_weights": {"a": 1.0}, "stats": {}}'
        ),
    ]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_RunCollector(summaries))
    text = generate_latest(registry).decode()
    assert 'spard_run_reward_weight{objective="a",run_id="good",tenant="t"} 1.0' in text
    assert "nulls" not in text
