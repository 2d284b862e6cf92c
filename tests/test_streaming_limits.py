"""Bounded streaming (#13.2): committing n open steps costs n commits, not 2**n; a run holds
at most SPARD_MAX_OPEN_STEPS steps with unapplied observations; one request names at most as
many steps. On both stores, and in the SDK's local mode."""

from __future__ import annotations

import httpx
import pytest
from conftest import service_settings

import spard
from spard.client.local import LocalTransport
from spard.service.http.app import make_store
from spard.service.protocol.streaming import Observation, StreamingConfig
from spard.service.runs.observation_service import ObservationService
from spard.service.runs.run_service import RunService
from spard.service.runs.store import RunKey

pytestmark = pytest.mark.anyio
OBJECTIVES = ["a", "b"]


class _CountingStore:
    """The real store, counting the seals that commits make."""

    def __init__(self, store):
        self._store, self.seals = store, 0

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def seal(self, *args, **kwargs):
        self.seals += 1
        return await self._store.seal(*args, **kwargs)


@pytest.mark.parametrize("open_steps", [6, 14])
async def test_committing_after_many_uncommittable_steps_is_linear(store_kind, request, open_steps):
    redis = request.getfixturevalue("redis_server") if store_kind == "redis" else None
    settings = service_settings(store_kind, redis)
    store = _CountingStore(make_store(settings))
    runs = RunService(store)
    observations = ObservationService(store, runs)
    key = RunKey(tenant="t", run_id="linear")
    await runs.create(key, OBJECTIVES, spard.SpardConfig(), None, StreamingConfig())
    # One rollout per group in steps 0..n-1: never committable (GRPO needs 2 per group).
    lonely = [
        Observation(step=s, group_id=0, scores={"a": 1.0, "b": 0.0}) for s in range(open_steps)
    ]
    await observations.observe(key, lonely)
    pair = [
        Observation(step=open_steps, group_id=0, rollout_index=r, scores={"a": r, "b": 0.5})
        for r in range(2)
    ]
    await observations.observe(key, pair)
    commit = await observations.commit(key, open_steps, return_advantages=False)
    assert commit.result.step == open_steps
    assert commit.committed_before == []
    assert store.seals == open_steps + 1  # each earlier step sealed once, then this one
    await store.close()


async def test_a_run_holds_a_bounded_number_of_open_steps(client):
    await client.post("/v1/runs", json={"run_id": "b", "objectives": OBJECTIVES})

    def observation(step):
        return {"step": step, "group_id": 0, "scores": {"a": 1.0, "b": 0.0}}

    for step in range(64):
        answer = await client.post("/v1/runs/b/observations", json=observation(step))
        assert answer.status_code == 200, answer.text
    refused = await client.post("/v1/runs/b/observations", json=observation(64))
    assert refused.status_code == 409
    assert "SPARD_MAX_OPEN_STEPS" in refused.json()["detail"]
    # Steps already open still take observations.
    again = await client.post(
        "/v1/runs/b/observations", json={**observation(3), "rollout_index": 1}
    )
    assert again.status_code == 200
    many = {"observations": [observation(step) for step in range(100, 165)]}
    answer = await client.post("/v1/runs/b/observations", json=many)
    assert answer.status_code == 422
    assert answer.json()["field"] == "observations"


def test_local_mode_has_the_same_bounds():
    http = httpx.Client(transport=LocalTransport(), base_url="http://local")
    http.post("/v1/runs", json={"run_id": "b", "objectives": OBJECTIVES})
    batch = [{"step": step, "group_id": 0, "scores": {"a": 1.0, "b": 0.0}} for step in range(64)]
    assert http.post("/v1/runs/b/observations", json={"observations": batch}).status_code == 200
    refused = http.post("/v1/runs/b/observations", json={**batch[0], "step": 64})
    assert refused.status_code == 409
    assert "SPARD_MAX_OPEN_STEPS" in refused.json()["detail"]
    many = {"observations": [{**batch[0], "step": s} for s in range(200, 265)]}
    answer = http.post("/v1/runs/b/observations", json=many)
    assert answer.status_code == 422
    assert answer.json()["field"] == "observations"


@pytest.mark.parametrize("limit", [1, 2])
async def test_commit_on_next_step_commits_rather_than_refuses_at_the_limit(
    store_kind, request, limit
):
    from conftest import service_client

    redis = request.getfixturevalue("redis_server") if store_kind == "redis" else None
    settings = service_settings(store_kind, redis, max_open_steps=limit)
    async with service_client(settings) as client:
        body = {
            "run_id": "auto",
            "objectives": OBJECTIVES,
            "streaming": {"commit_on_next_step": True},
        }
        await client.post("/v1/runs", json=body)

        def pair(step):
            return {
                "observations": [
                    {"step": step, "group_id": 0, "rollout_index": r, "scores": {"a": r, "b": 1}}
                    for r in range(2)
                ]
            }

        for step in range(4):
            answer = await client.post("/v1/runs/auto/observations", json=pair(step))
            assert answer.status_code == 200, answer.text
            assert answer.json()["committed"] == ([step - 1] if step else [])
        run = (await client.get("/v1/runs/auto")).json()
        assert run["last_step"] == 2
