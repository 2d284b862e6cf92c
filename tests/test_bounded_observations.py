"""Bounded work per observations request (issue 24): the batch a commit assembles is bounded
by SPARD_MAX_SCORES at observe time, and assigning rollout indices is linear. Both stores."""

from __future__ import annotations

import time

import pytest
import redis
from conftest import service_client, service_settings

pytestmark = pytest.mark.anyio
OBJECTIVES = ["a", "b"]


def _settings(store_kind, request, **overrides):
    redis = request.getfixturevalue("redis_server") if store_kind == "redis" else None
    return service_settings(store_kind, redis, **overrides)


def observation(group, rollout=None, step=0, **extra):
    found = {"step": step, "group_id": group, "scores": {"a": 1.0, "b": 0.0}, **extra}
    if rollout is not None:
        found["rollout_index"] = rollout
    return found


async def test_observations_that_would_assemble_too_large_a_batch_are_refused(store_kind, request):
    # K = 2 and 1,000 scores: at most 500 groups x rollouts.
    async with service_client(_settings(store_kind, request, max_scores=1000)) as client:
        await client.post("/v1/runs", json={"run_id": "big", "objectives": OBJECTIVES})
        wide = await client.post("/v1/runs/big/observations", json=observation(0, rollout=499))
        assert wide.status_code == 200, wide.text
        # A second group would make the batch 2 x 500 x 2 = 2,000 scores.
        refused = await client.post(
            "/v1/runs/big/observations",
            json={"observations": [observation(0, rollout=0), observation(1, rollout=0)]},
        )
        assert refused.status_code == 413, refused.text
        assert refused.json()["field"] == "observations"
        assert "SPARD_MAX_SCORES" in refused.json()["detail"]
        # Refused whole: rollout 0 of group 0 was not stored either.
        again = await client.post("/v1/runs/big/observations", json=observation(0, rollout=0))
        assert again.json()["accepted"] == 1
        # Rollouts without an index count as possibly widening their group.
        many = {"observations": [observation(5, step=1) for _ in range(501)]}
        assert (await client.post("/v1/runs/big/observations", json=many)).status_code == 413
        # ... their own group only: 20 groups of 20 such rollouts fit (400 cells).
        spread = {"observations": [observation(g % 20, step=2) for g in range(400)]}
        answer = await client.post("/v1/runs/big/observations", json=spread)
        assert answer.status_code == 200, answer.text
        commit = await client.post("/v1/runs/big/steps/0/commit")
        assert commit.status_code == 200, commit.text
        assert commit.json()["prompt_ids"] == [0]


async def test_a_fixed_group_size_bounds_the_groups(store_kind, request):
    async with service_client(_settings(store_kind, request, max_scores=40)) as client:
        body = {"run_id": "g", "objectives": OBJECTIVES, "streaming": {"group_size": 4}}
        await client.post("/v1/runs", json=body)
        five = {"observations": [observation(group, rollout=0) for group in range(5)]}
        assert (await client.post("/v1/runs/g/observations", json=five)).status_code == 200
        sixth = await client.post("/v1/runs/g/observations", json=observation(5, rollout=0))
        assert sixth.status_code == 413
        assert "6 groups x 4 rollouts x 2 objectives = 48 scores" in sixth.json()["detail"]


def _cpu_seconds(store_kind, request):
    """CPU time of whoever does the store's work: redis-server, or this process."""
    if store_kind == "memory":
        return time.process_time
    server = redis.Redis(port=request.getfixturevalue("redis_server").port)

    def used() -> float:
        info = server.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    return used


async def test_assigning_rollout_indices_is_linear(store_kind, request):
    # Indices 2048..4095 taken explicitly: each assignment used to probe all of them again
    # from the group's count (16 M probes for this request: seconds in Redis' one thread).
    async with service_client(_settings(store_kind, request)) as client:
        await client.post("/v1/runs", json={"run_id": "lin", "objectives": OBJECTIVES})
        taken = {"observations": [observation(0, rollout=r) for r in range(2048, 4096)]}
        assert (await client.post("/v1/runs/lin/observations", json=taken)).status_code == 200
        appended = {"observations": [observation(0) for _ in range(8000)]}
        cpu = _cpu_seconds(store_kind, request)
        started = cpu()
        answer = await client.post("/v1/runs/lin/observations", json=appended)
        used = cpu() - started
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 8000
        assert used < 1.0, used  # CPU time, not wall time: the suite may share its cores
        commit = await client.post("/v1/runs/lin/steps/0/commit")
        assert commit.status_code == 200, commit.text
        # Each observation is stored once: nothing was dropped or doubled.
        assert commit.json()["observations"] == 2048 + 8000


async def test_steps_from_1e14_on_keep_their_own_observations(client):
    await client.post("/v1/runs", json={"run_id": "far", "objectives": OBJECTIVES})
    first = 10**14
    for step in (first, first + 1):
        pair = {"observations": [observation(0, rollout=r, step=step) for r in range(2)]}
        answer = await client.post("/v1/runs/far/observations", json=pair)
        assert answer.status_code == 200, answer.text
        assert answer.json()["steps"] == [step]
    for step in (first, first + 1):
        commit = await client.post(f"/v1/runs/far/steps/{step}/commit")
        assert commit.status_code == 200, commit.text
        assert commit.json()["step"] == step
        assert commit.json()["observations"] == 2
    # Open steps sent without a step index resolve past them, exactly.
    sent = await client.post("/v1/runs/far/observations", json={**observation(0), "step": None})
    assert sent.json()["steps"] == [first + 2]


async def test_a_refusal_names_the_steps_of_the_request_that_were_stored(store_kind, request):
    async with service_client(_settings(store_kind, request, max_scores=1000)) as client:
        await client.post("/v1/runs", json={"run_id": "multi", "objectives": OBJECTIVES})
        first = [observation(0, rollout=0), observation(0, rollout=1)]
        body = {"observations": [*first, observation(0, rollout=600, step=1)]}
        refused = await client.post("/v1/runs/multi/observations", json=body)
        assert refused.status_code == 413, refused.text
        assert "earlier steps [0] were stored" in refused.json()["detail"]
        assert "nothing of this request was stored" not in refused.json()["detail"]
        commit = await client.post("/v1/runs/multi/steps/0/commit")
        assert commit.status_code == 200, commit.text  # step 0's observation was kept


async def test_a_step_over_a_lowered_limit_does_not_block_the_steps_after_it(request):
    # A step observed under one replica's larger SPARD_MAX_SCORES, committed by another's.
    server = request.getfixturevalue("redis_server")
    wide = [observation(group, rollout=600) for group in range(3)]  # 3 x 601 x 2 > 1,000
    larger = service_settings("redis", server, max_scores=100_000)
    smaller = service_settings("redis", server, max_scores=1000, key_prefix=larger.key_prefix)
    async with service_client(larger) as client:
        await client.post("/v1/runs", json={"run_id": "lowered", "objectives": OBJECTIVES})
        answer = await client.post("/v1/runs/lowered/observations", json={"observations": wide})
        assert answer.status_code == 200, answer.text
    async with service_client(smaller) as client:
        small = {"observations": [observation(0, rollout=r, step=1) for r in range(2)]}
        answer = await client.post("/v1/runs/lowered/observations", json=small)
        assert answer.status_code == 200, answer.text
        commit = await client.post("/v1/runs/lowered/steps/1/commit")
        assert commit.status_code == 200, commit.text
        assert commit.json()["step"] == 1
        assert (await client.get("/v1/runs/lowered")).json()["last_step"] == 1
