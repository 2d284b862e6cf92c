"""The HTTP API, with the same test bodies on the in-memory store and on a real Redis."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

import spard
from spard.service.protocol.wire import encode_step

pytestmark = pytest.mark.anyio
OBJECTIVES = ["correctness", "format", "fluency"]


def batch(seed: int, shape=(4, 6, 3)) -> np.ndarray:
    """Scores exactly representable in float32, so JSON and binary bodies agree."""
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(shape) * 8) / 8
    scores[0, 0, 2] = np.nan
    return scores


def as_json(scores: np.ndarray) -> list:
    return np.where(np.isnan(scores), None, scores).tolist()


async def create(client, run_id="run-1", **body):
    response = await client.post(
        "/v1/runs", json={"run_id": run_id, "objectives": OBJECTIVES, **body}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def step(client, run_id, t, scores, **extra):
    body = {"step": t, "scores": as_json(scores), **extra}
    response = await client.post(f"/v1/runs/{run_id}/steps", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def test_full_run_lifecycle(client):
    created = await create(client, strategy="spard", config={"warmup": 2})
    assert created["objectives"] == OBJECTIVES
    assert created["reward_weights"] == {name: pytest.approx(1 / 3) for name in OBJECTIVES}
    assert created["last_step"] is None
    assert (
        await client.post("/v1/runs", json={"run_id": "run-1", "objectives": ["x"]})
    ).status_code == 409

    state = spard.init(OBJECTIVES, spard.SpardConfig(warmup=2))
    for t in range(6):
        answer = await step(client, "run-1", t, batch(t), return_advantages=True)
        expected, state = spard.step(state, batch(t), step=t, return_advantages=True)
        assert answer["replayed"] is False
        assert answer["reward_weights"] == expected.weights_by_objective()
        assert answer["sample_weights"] == expected.sample_weights.tolist()
        assert answer["zero_signal"] == expected.zero_signal.tolist()
        assert answer["advantages"] == expected.advantages.tolist()
        assert answer["stats"] == expected.stats

    run = (await client.get("/v1/runs/run-1")).json()
    assert run["last_step"] == 5
    assert run["steps_applied"] == 6
    assert run["reward_weights"] == dict(
        zip(OBJECTIVES, state.reward_weights.tolist(), strict=False)
    )
    assert run["stats"] == expected.stats
    assert run["last_sample_weights"]["prompts"] == 4

    assert (await client.delete("/v1/runs/run-1")).status_code == 204
    assert (await client.get("/v1/runs/run-1")).status_code == 404
    assert (await client.delete("/v1/runs/run-1")).status_code == 404
    gone = await client.post("/v1/runs/run-1/steps", json={"step": 6, "scores": as_json(batch(6))})
    assert gone.status_code == 404


async def test_replay_returns_the_stored_response_and_changes_nothing(client):
    await create(client)
    first = await step(client, "run-1", 0, batch(0), return_advantages=True)
    await step(client, "run-1", 1, batch(1))
    before = (await client.get("/v1/runs/run-1/state")).json()
    again = await step(client, "run-1", 0, batch(0), return_advantages=True)
    assert again.pop("replayed") is True
    assert first.pop("replayed") is False
    assert again == first
    assert (await client.get("/v1/runs/run-1/state")).json() == before
    history = (await client.get("/v1/runs/run-1/history")).json()
    assert [entry["step"] for entry in history["entries"]] == [0, 1]


async def test_conflicting_and_too_old_steps_get_409(client):
    await create(client, config={"replay_window": 2})
    for t in range(4):
        await step(client, "run-1", t, batch(t))
    conflict = await client.post(
        "/v1/runs/run-1/steps", json={"step": 3, "scores": as_json(batch(9))}
    )
    assert conflict.status_code == 409
    assert "already applied with different scores" in conflict.json()["detail"]
    old = await client.post("/v1/runs/run-1/steps", json={"step": 0, "scores": as_json(batch(0))})
    assert old.status_code == 409
    assert "no longer kept" in old.json()["detail"]
    assert old.json()["field"] == "step"


async def test_step_index_defaults_to_the_next_one(client):
    await create(client)
    first = await client.post("/v1/runs/run-1/steps", json={"scores": as_json(batch(0))})
    second = await client.post("/v1/runs/run-1/steps", json={"scores": as_json(batch(1))})
    assert (first.json()["step"], second.json()["step"]) == (0, 1)


async def test_binary_and_msgpack_bodies_give_the_json_result(client):
    for run_id in ("json", "binary", "msgpack"):
        await create(client, run_id=run_id, config={"warmup": 1})
    for t in range(3):
        scores = batch(t)
        by_json = await step(client, "json", t, scores, return_advantages=True)
        binary = await client.post(
            "/v1/runs/binary/steps",
            content=encode_step(scores, t, return_advantages=True),
            headers={"content-type": "application/octet-stream"},
        )
        packed = msgpack.packb(
            {
                "step": t,
                "shape": list(scores.shape),
                "scores": scores.astype("<f4").tobytes(),
                "return_advantages": True,
                "prompt_ids": ["a", "b", "c", "d"],
            }
        )
        by_msgpack = await client.post(
            "/v1/runs/msgpack/steps",
            content=packed,
            headers={"content-type": "application/msgpack"},
        )
        assert binary.status_code == by_msgpack.status_code == 200, binary.text + by_msgpack.text
        for other in (binary.json(), by_msgpack.json()):
            for field in ("reward_weights", "sample_weights", "zero_signal", "advantages", "stats"):
                assert other[field] == by_json[field]
        assert by_msgpack.json()["prompt_ids"] == ["a", "b", "c", "d"]


async def test_history_is_paged_in_step_order(client):
    await create(client)
    for t in range(7):
        await step(client, "run-1", t, batch(t))
    seen, after = [], None
    while True:
        params = {"limit": 3} if after is None else {"limit": 3, "after": after}
        page = (await client.get("/v1/runs/run-1/history", params=params)).json()
        seen += [entry["step"] for entry in page["entries"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == list(range(7))
    entry = page["entries"][-1]
    assert set(entry["reward_weights"]) == set(OBJECTIVES)
    assert set(entry["sample_weights"]) >= {"p10", "p50", "p90", "zero_signal"}


async def test_export_import_then_identical_future_steps(client):
    await create(client, run_id="original", config={"warmup": 2})
    for t in range(4):
        await step(client, "original", t, batch(t))
    saved = (await client.get("/v1/runs/original/state")).json()
    for t in range(4, 6):
        await step(client, "original", t, batch(t))

    await create(client, run_id="resumed", config={"warmup": 2})
    imported = await client.put("/v1/runs/resumed/state", json=saved)
    assert imported.status_code == 200, imported.text
    assert imported.json()["last_step"] == 3
    for t in range(4, 6):
        resumed = await step(client, "resumed", t, batch(t), return_advantages=True)
        replayed = await step(client, "original", t, batch(t), return_advantages=True)
        assert resumed["replayed"] is False
        assert replayed["replayed"] is True
        for field in ("reward_weights", "sample_weights", "advantages", "stats"):
            assert resumed[field] == replayed[field]
    original_state = (await client.get("/v1/runs/original/state")).json()
    assert (await client.get("/v1/runs/resumed/state")).json() == original_state


async def test_importing_an_older_state_rolls_back_history(client):
    await create(client)
    await step(client, "run-1", 0, batch(0))
    saved = (await client.get("/v1/runs/run-1/state")).json()
    for t in range(1, 4):
        await step(client, "run-1", t, batch(t))
    assert (await client.put("/v1/runs/run-1/state", json=saved)).status_code == 200
    history = (await client.get("/v1/runs/run-1/history")).json()
    assert [entry["step"] for entry in history["entries"]] == [0]
    # Step 1 is applied afresh (with other scores than before the rollback).
    again = await step(client, "run-1", 1, batch(11))
    assert again["replayed"] is False


async def test_import_rejects_a_state_of_other_objectives(client):
    await create(client)
    other = spard.init(["a", "b"]).to_dict()
    response = await client.put("/v1/runs/run-1/state", json=other)
    assert response.status_code == 422
    assert response.json()["field"] == "state.objectives"
    broken = (await client.get("/v1/runs/run-1/state")).json()
    broken["version"] = 99
    response = await client.put("/v1/runs/run-1/state", json=broken)
    assert response.status_code == 422
    assert response.json()["field"] == "state.version"


async def test_health_readiness_and_metrics(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).status_code == 200
    await create(client)
    await step(client, "run-1", 0, batch(0))
    await step(client, "run-1", 0, batch(0))
    text = (await client.get("/metrics")).text
    assert 'spard_steps_total{outcome="applied"}' in text
    assert 'spard_steps_total{outcome="replayed"}' in text
    assert 'route="/v1/runs/{run_id}/steps"' in text
    tenant_run = 'run_id="run-1",tenant="local"'
    assert f'spard_run_reward_weight{{objective="format",{tenant_run}}}' in text
    assert f"spard_run_last_step{{{tenant_run}}} 0.0" in text
    await client.delete("/v1/runs/run-1")
    assert "run-1" not in (await client.get("/metrics")).text
