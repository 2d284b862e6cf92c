"""Streaming observations over HTTP, on both stores: the committed step equals the batch step."""

from __future__ import annotations

import asyncio
import random

import batches as batches_module
import numpy as np
import pytest

import spard

pytestmark = pytest.mark.anyio
OBJECTIVES = ["a", "b", "c"]


def batch(t: int, prompts: int = 6, rollouts: int = 4) -> np.ndarray:
    rng = np.random.default_rng(100 + t)
    return np.round(rng.random((prompts, rollouts, 3)) * 4) / 4


def observations_of(scores: np.ndarray, step: int | None, group_ids: list) -> list[dict]:
    """One observation per rollout; NaN scores are left out (missing)."""
    found = []
    for n, group in enumerate(group_ids):
        for g in range(scores.shape[1]):
            values = {
                name: float(scores[n, g, k])
                for k, name in enumerate(OBJECTIVES)
                if not np.isnan(scores[n, g, k])
            }
            found.append({"step": step, "group_id": group, "rollout_index": g, "scores": values})
    return found


def engine_results(batches: list[np.ndarray]) -> list[spard.StepResult]:
    return batches_module.engine_results(OBJECTIVES, batches, warmup=2)


async def create(client, run_id: str, **streaming) -> None:
    body = {"run_id": run_id, "objectives": OBJECTIVES, "config": {"warmup": 2}}
    response = await client.post("/v1/runs", json={**body, "streaming": streaming})
    assert response.status_code == 201, response.text


async def observe(client, run_id: str, observations: list[dict]) -> dict:
    response = await client.post(
        f"/v1/runs/{run_id}/observations", json={"observations": observations}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_committed_steps_equal_batch_steps(client):
    await create(client, "s", group_size=4)
    batches = [batch(t) for t in range(4)]
    batches[2][1, 3, 0] = np.nan  # a missing score travels as an absent key
    expected = engine_results(batches)
    # Group ids sort to the batch order: integers first, numerically.
    groups = [2, 10, 11, 30, 400, 5000]
    for t, scores in enumerate(batches):
        sent = observations_of(scores, t, groups)
        random.Random(t).shuffle(sent)
        for start in range(0, len(sent), 5):
            await observe(client, "s", sent[start : start + 5])
        body = (await client.post(f"/v1/runs/s/steps/{t}/commit")).json()
        assert body["replayed"] is False
        assert body["prompt_ids"] == groups
        assert body["observations"] == 24
        assert body["reward_weights"] == expected[t].weights_by_objective()
        assert body["sample_weights"] == expected[t].sample_weights.tolist()
    again = (await client.post("/v1/runs/s/steps/3/commit")).json()
    assert again["replayed"] is True
    assert again["sample_weights"] == expected[3].sample_weights.tolist()
    run = (await client.get("/v1/runs/s")).json()
    assert run["steps_applied"] == 4
    assert run["streaming"]["group_size"] == 4


async def test_duplicates_conflicts_and_late_observations(client):
    await create(client, "d", group_size=2)
    first = {"step": 0, "group_id": "p", "rollout_index": 0, "scores": {"a": 1.0}}
    other = {**first, "scores": {"a": 0.0}}
    report = await observe(client, "d", [first, first, other])
    assert (report["accepted"], report["duplicates"], report["conflicts"]) == (1, 1, [2])
    rest = [
        {"step": 0, "group_id": "p", "rollout_index": 1, "scores": {"a": 0.0}},
        {"step": 0, "group_id": "q", "rollout_index": 0, "scores": {"a": 0.5, "b": 1}},
        {"step": 0, "group_id": "q", "rollout_index": 1, "scores": {"a": 0.25, "b": None}},
    ]
    await observe(client, "d", rest)
    committed = (await client.post("/v1/runs/d/steps/0/commit")).json()
    assert committed["prompt_ids"] == ["p", "q"]
    late = await observe(client, "d", [{**first, "rollout_index": 1}])
    assert late["late"] == [0]
    assert late["accepted"] == 0
    # Without a step, observations go to the open step: the one after the last applied.
    report = await observe(client, "d", [{"group_id": "p", "scores": {"a": 1.0}}])
    assert report["steps"] == [1]
    assert report["accepted"] == 1


async def test_assigned_rollout_indices_are_idempotent_by_observation_id(client):
    await create(client, "auto", group_size=3)
    sends = [
        {"step": 0, "group_id": "g", "observation_id": f"o{i}", "scores": {"a": i / 4}}
        for i in range(4)
    ]
    report = await observe(client, "auto", sends[:2] + sends[:2])
    assert (report["accepted"], report["duplicates"]) == (2, 2)
    report = await observe(client, "auto", sends[2:])
    assert report["accepted"] == 1
    assert report["overflow"] == [1]
    await observe(client, "auto", [{"step": 0, "group_id": "h", "scores": {"a": 1.0}}] * 2)
    body = (await client.post("/v1/runs/auto/steps/0/commit")).json()
    assert body["prompt_ids"] == ["g", "h"]  # "h" padded: 2 of 3 rollouts
    assert body["observations"] == 5


async def test_incomplete_groups_dropped_when_configured(client):
    await create(client, "drop", group_size=3, incomplete_groups="drop")
    full = [
        {"step": 0, "group_id": 1, "rollout_index": r, "scores": {"a": r / 2}} for r in range(3)
    ]
    partial = [{"step": 0, "group_id": 0, "rollout_index": 0, "scores": {"a": 1.0}}]
    await observe(client, "drop", full + partial)
    body = (await client.post("/v1/runs/drop/steps/0/commit")).json()
    assert body["prompt_ids"] == [1]
    assert body["dropped_groups"] == [0]


async def test_pad_rule_infers_group_size_and_reports_a_single_rollout(client):
    await create(client, "pad")
    await observe(client, "pad", [{"step": 0, "group_id": "x", "scores": {"a": 1.0}}])
    response = await client.post("/v1/runs/pad/steps/0/commit")
    assert response.status_code == 422
    assert "G = 1" in response.json()["detail"]
    # The step is sealed: what arrives now is late, and the run is not stuck.
    report = await observe(client, "pad", [{"step": 0, "group_id": "x", "scores": {"a": 0.0}}])
    assert report["late"] == [0]
    sent = [{"step": 1, "group_id": "x", "rollout_index": r, "scores": {"b": r}} for r in (0, 3)]
    await observe(client, "pad", sent)
    body = (await client.post("/v1/runs/pad/steps/1/commit")).json()
    assert body["step"] == 1
    assert body["observations"] == 2


async def test_auto_commit_after_complete_groups(client):
    await create(client, "ac", group_size=4, commit_after_groups=6)
    scores = batch(0)
    sent = observations_of(scores, None, list(range(6)))
    report = await observe(client, "ac", sent[:-1])
    assert report["committed"] == []
    report = await observe(client, "ac", sent[-1:])
    assert report["committed"] == [0]
    run = (await client.get("/v1/runs/ac")).json()
    assert run["last_step"] == 0
    assert run["reward_weights"] == engine_results([scores])[0].weights_by_objective()
    # The next observations without a step open step 1.
    report = await observe(client, "ac", observations_of(batch(1), None, list(range(6)))[:3])
    assert report["steps"] == [1]


async def test_a_resend_without_step_after_its_step_committed_is_a_duplicate(client):
    """The request that completes a step auto-commits it; if its answer is lost, the client's
    retry must not count again in the next step (the observation ids say it is a resend)."""
    await create(client, "retry", group_size=4, commit_after_groups=2)
    scores = batch(0, prompts=2)
    sent = observations_of(scores, None, [0, 1])
    for position, observation in enumerate(sent):
        del observation["step"]
        observation["observation_id"] = f"id-{position}"
        if position >= 4:  # group 1 lets the service assign the rollout indices
            del observation["rollout_index"]
    report = await observe(client, "retry", sent)
    assert report["committed"] == [0]
    assert report["accepted"] == 8

    resent = await observe(client, "retry", sent)  # the retry, after the commit
    assert (resent["accepted"], resent["duplicates"]) == (0, 8)
    assert resent["committed"] == []
    assert resent["late"] == []
    # Step 1 holds nothing of step 0: its own observations take every rollout index.
    fresh = observations_of(batch(1, prompts=2), None, [0, 1])
    for position, observation in enumerate(fresh):
        del observation["step"]
        observation["observation_id"] = f"new-{position}"
    report = await observe(client, "retry", fresh)
    assert (report["accepted"], report["overflow"], report["committed"]) == (8, [], [1])
    history = (await client.get("/v1/runs/retry/history")).json()["entries"]
    expected = engine_results([scores, batch(1, prompts=2)])
    assert [entry["stats"] for entry in history] == [result.stats for result in expected]


async def test_auto_commit_on_next_step_and_commit_of_open_earlier_steps(client):
    await create(client, "next", group_size=4, commit_on_next_step=True)
    await observe(client, "next", observations_of(batch(0), 0, list(range(6))))
    report = await observe(client, "next", observations_of(batch(1), 1, list(range(6)))[:1])
    assert report["committed"] == [0]
    await create(client, "manual", group_size=4)
    await observe(client, "manual", observations_of(batch(0), 0, list(range(6))))
    await observe(client, "manual", observations_of(batch(1), 1, list(range(6))))
    body = (await client.post("/v1/runs/manual/steps/1/commit")).json()
    assert body["committed_before"] == [0]
    assert body["step"] == 1
    expected = engine_results([batch(0), batch(1)])
    assert body["sample_weights"] == expected[1].sample_weights.tolist()


async def test_commit_errors(client):
    await create(client, "e", group_size=2)
    nothing = await client.post("/v1/runs/e/steps/0/commit")
    assert nothing.status_code == 409
    assert nothing.json()["field"] == "step"
    missing = await client.post("/v1/runs/nope/steps/0/commit")
    assert missing.status_code == 404
    scores = batch(0, rollouts=2).tolist()
    assert (await client.post("/v1/runs/e/steps", json={"step": 0, "scores": scores})).is_success
    applied = await client.post("/v1/runs/e/steps/0/commit")
    assert applied.status_code == 409
    assert "already applied" in applied.json()["detail"]


async def test_weights_endpoint_has_an_etag(client):
    await create(client, "w", group_size=4)
    first = await client.get("/v1/runs/w/weights")
    assert first.status_code == 200
    assert first.json()["step"] is None
    tag = first.headers["etag"]
    same = await client.get("/v1/runs/w/weights", headers={"if-none-match": tag})
    assert same.status_code == 304
    assert same.headers["etag"] == tag
    await observe(client, "w", observations_of(batch(0), 0, list(range(6))))
    await client.post("/v1/runs/w/steps/0/commit")
    changed = await client.get("/v1/runs/w/weights", headers={"if-none-match": tag})
    assert changed.status_code == 200
    assert changed.json()["step"] == 0
    assert changed.headers["etag"] != tag
    assert (await client.get("/v1/runs/nope/weights")).status_code == 404


OBSERVATION_CASES = [
    ({"group_id": "g", "scores": {"zzz": 1.0}}, "observations.0.scores.zzz"),
    ({"group_id": "g", "rollout_index": 4, "scores": {}}, "observations.0.rollout_index"),
    ({"group_id": True, "scores": {}}, "observations.0.group_id"),
    ({"group_id": "a|b", "scores": {}}, "observations.0.group_id"),
    ({"group_id": "g", "scores": {"a": "high"}}, "observations.0.scores.a"),
    (b'{"group_id": "g", "scores": {"a": 1e999}}', "body"),
    (b'{"group_id": "g", "scores": {"a": NaN}}', "body"),
    ({"group_id": "g", "step": -1, "scores": {}}, "observations.0.step"),
    ({"group_id": "g", "scores": {}, "extra": 1}, "observations.0.extra"),
]


@pytest.mark.parametrize(("observation", "field"), OBSERVATION_CASES)
async def test_malformed_observations_name_the_field(client, observation, field):
    await create(client, "bad", group_size=4)
    url = "/v1/runs/bad/observations"
    if isinstance(observation, bytes):
        response = await client.post(url, content=b'{"observations": [%s]}' % observation)
    else:
        response = await client.post(url, json={"observations": [observation]})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert (await client.post("/v1/runs/bad/observations", content=b"{")).status_code == 422
    empty = await client.post("/v1/runs/bad/observations", json={"observations": []})
    assert empty.status_code == 422
    single = await client.post("/v1/runs/bad/observations", json={"group_id": 1, "scores": {}})
    assert single.status_code == 200
    assert single.json()["accepted"] == 1


async def test_bad_streaming_config_is_a_422(client):
    body = {"objectives": OBJECTIVES, "streaming": {"commit_after_groups": 3}}
    response = await client.post("/v1/runs", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == "streaming"
    body["streaming"] = {"group_size": 1}
    response = await client.post("/v1/runs", json=body)
    assert response.json()["field"] == "streaming.group_size"


async def test_import_state_drops_later_observations(client):
    await create(client, "imp", group_size=4)
    for t in range(2):
        await observe(client, "imp", observations_of(batch(t), t, list(range(6))))
        await client.post(f"/v1/runs/imp/steps/{t}/commit")
        if t == 0:
            saved = (await client.get("/v1/runs/imp/state")).json()
    assert (await client.put("/v1/runs/imp/state", json=saved)).status_code == 200
    # Step 1 is open again: its observations are taken afresh and commit to the same result.
    await observe(client, "imp", observations_of(batch(1), 1, list(range(6))))
    body = (await client.post("/v1/runs/imp/steps/1/commit")).json()
    assert body["replayed"] is False
    assert body["sample_weights"] == engine_results([batch(0), batch(1)])[1].sample_weights.tolist()


async def test_concurrent_writers_with_duplicates_commit_the_batch_step(client):
    await create(client, "many", group_size=4, commit_on_next_step=True)
    batches = [batch(t, prompts=16) for t in range(3)]
    expected = engine_results(batches)
    groups = [f"p{n:02d}" for n in range(16)]

    async def writer(sent: list[dict]) -> None:
        for start in range(0, len(sent), 3):
            await observe(client, "many", sent[start : start + 3])

    for t, scores in enumerate(batches):
        sent = observations_of(scores, t, groups)
        copies = sent + random.Random(t).sample(sent, 20)  # resends
        random.Random(t + 1).shuffle(copies)
        await asyncio.gather(*(writer(copies[i::8]) for i in range(8)))
    await client.post("/v1/runs/many/steps/2/commit")
    history = (await client.get("/v1/runs/many/history")).json()["entries"]
    assert [e["step"] for e in history] == [0, 1, 2]
    for entry, result in zip(history, expected, strict=True):
        assert entry["reward_weights"] == result.weights_by_objective()


async def test_deleting_a_run_removes_its_observation_keys(redis_server):
    import redis as redis_sync
    from conftest import service_client, service_settings

    settings = service_settings("redis", redis_server)
    async with service_client(settings) as http:
        await create(http, "gone", group_size=4)
        await observe(http, "gone", observations_of(batch(0), 0, list(range(6))))
        await observe(http, "gone", observations_of(batch(1), 1, list(range(6))))
        keys = redis_sync.Redis.from_url(redis_server.url).keys(f"{settings.key_prefix}:*")
        assert any(key.endswith(b":obs:1") for key in keys)
        assert (await http.delete("/v1/runs/gone")).status_code == 204
        left = redis_sync.Redis.from_url(redis_server.url).keys(f"{settings.key_prefix}:{{*")
        assert left == []
