"""Step semantics (causal, replays, order) and the versioned state format."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest

import spard
from spard.service.runs.idempotency import step_once


def batch(seed: int, shape=(3, 4, 2)) -> np.ndarray:
    return np.random.default_rng(seed).random(shape)


def test_steps_default_to_the_next_index_and_may_skip():
    state = spard.init(["a", "b"])
    first, state = spard.step(state, batch(0))
    second, state = spard.step(state, batch(1))
    jumped, state = spard.step(state, batch(2), step=10)
    assert (first.step, second.step, jumped.step) == (0, 1, 10)
    nxt, state = spard.step(state, batch(3))
    assert nxt.step == 11
    assert state.steps_applied == 4


def test_result_weights_come_from_earlier_steps_only():
    config = spard.SpardConfig(warmup=1)
    state = spard.init(["a", "b"], config)
    weights_before = state.reward_weights.copy()
    result, state = spard.step(state, batch(0))
    np.testing.assert_array_equal(result.reward_weights, weights_before)
    result, _new_state = spard.step(state, batch(1))
    np.testing.assert_array_equal(result.reward_weights, state.reward_weights)


def test_input_state_is_never_changed():
    state = spard.init(["a", "b"])
    _, state = spard.step(state, batch(0))
    snapshot = state.to_dict()
    _, _ = spard.step(state, batch(1))
    assert state.to_dict() == snapshot


def test_old_steps_no_longer_kept_raise_a_clear_error():
    state = spard.init(["a", "b"], spard.SpardConfig(replay_window=2))
    for t in range(4):
        _, state = spard.step(state, batch(t), step=t)
    replayed, _ = spard.step(state, batch(2), step=2)
    assert replayed.replayed
    with pytest.raises(spard.StepOrderError, match=r"step 1 is older.*kept steps: \[2, 3\]"):
        spard.step(state, batch(1), step=1)


def test_a_gap_step_below_the_last_is_not_replayable():
    state = spard.init(["a", "b"])
    _, state = spard.step(state, batch(0), step=0)
    _, state = spard.step(state, batch(1), step=5)
    with pytest.raises(spard.StepOrderError, match="step 3 is older than the last applied step 5"):
        spard.step(state, batch(2), step=3)


def test_replaying_with_different_scores_is_a_conflict():
    state = spard.init(["a", "b"])
    _, state = spard.step(state, batch(0), step=0)
    with pytest.raises(spard.StepConflictError, match="already applied with different scores"):
        spard.step(state, batch(1), step=0)
    with pytest.raises(spard.StepConflictError):
        spard.step(state, batch(0, shape=(2, 4, 2)), step=0)


def test_replay_can_ask_for_advantages_the_first_call_did_not():
    state = spard.init(["a", "b"], spard.SpardConfig(strategy="radr"))
    first, state = spard.step(state, batch(0), step=0)
    again, _ = spard.step(state, batch(0), step=0, return_advantages=True)
    fresh, _ = spard.step(spard.init(["a", "b"], state.config), batch(0), return_advantages=True)
    assert first.advantages is None
    np.testing.assert_array_equal(again.advantages, fresh.advantages)


def test_state_dict_is_json_safe_versioned_and_exact():
    state = spard.init(["a", "b", "c"], spard.SpardConfig(strategy="spard"))
    for t in range(6):
        scores = batch(t, (4, 5, 3))
        scores[:, :, 2] = np.nan  # an objective never seen keeps None statistics
        _, state = spard.step(state, scores)
    data = state.to_dict()
    assert data["version"] == spard.SCHEMA_VERSION
    text = json.dumps(data, allow_nan=False)
    restored = spard.State.from_dict(json.loads(text))
    assert restored.to_dict() == data
    np.testing.assert_array_equal(restored.tracks.gains, state.tracks.gains)


@pytest.mark.parametrize("strategy", ["spard", "saw", "static"])
def test_state_json_holds_every_field_with_nan_as_null(strategy):
    def plain(values):  # the expected JSON values, written independently of State.to_json
        if isinstance(values, list):
            return [plain(value) for value in values]
        return None if values != values else values  # NaN is the one value unequal to itself

    state = spard.init(["a", "b", "c"], spard.SpardConfig(strategy=strategy))
    for t in range(12):
        scores = batch(t, (4, 5, 3))
        scores[t % 4, :, 2] = np.nan  # NaN statistics, and gaps in the gains window
        if t < 3:
            scores[:, :, 1] = np.nan
        _, state = step_once(state, scores, None, return_advantages=False, request_id=f"r{t}")
    document = orjson.loads(state.to_json())
    tracks = state.tracks
    expected = {
        "version": spard.SCHEMA_VERSION,
        "objectives": list(state.objectives),
        "config": state.config.model_dump(mode="json"),
        "prior_weights": plain(state.prior_weights.tolist()),
        "reward_weights": plain(state.reward_weights.tolist()),
        "steps_applied": 12,
        "last_step": 11,
        "observations": tracks.observations.tolist(),
        "level": plain(tracks.level.tolist()),
        "progress": plain(tracks.progress.tolist()),
        "gains": plain(tracks.gains.tolist()),
        "scale": plain(tracks.scale.tolist()),
    }
    assert {key: document[key] for key in expected} == expected
    assert [entry["step"] for entry in document["recent"]] == [entry.step for entry in state.recent]
    assert document["recent"][-1]["request_id"] == "r11"
    assert None in document["gains"][1]  # NaN gaps became null, not NaN
    assert spard.State.from_dict(document).to_json() == state.to_json()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(version=99), "state.version: 99 is not supported"),
        (lambda d: d.update(level=[0.0]), "state.level has 1 entries; expected 2"),
        (lambda d: d.update(reward_weights=[0.9, 0.9]), "reward_weights must be finite"),
        (lambda d: d.update(prior_weights=[1.2, -0.2]), "prior_weights must be finite, non-neg"),
        (lambda d: d.update(prior_weights=[1.0, 0.0]), "must be 0 where state.prior_weights is 0"),
        (lambda d: d["gains"].__setitem__(0, [0.0]), r"state.gains\[k\] has 1 entries"),
        (lambda d: d.pop("scale"), "state.scale: Field required"),
        (lambda d: d.update(steps_applied="many"), "state.steps_applied"),
        (lambda d: d["config"].update(strategy="best"), "state.config.strategy"),
        (lambda d: d.update(objectives=["a", "a"]), "more than once"),
    ],
)
def test_bad_state_dicts_are_rejected_with_the_field_named(mutate, message):
    state = spard.init(["a", "b"])
    _, state = spard.step(state, batch(0))
    data = json.loads(json.dumps(state.to_dict()))
    mutate(data)
    with pytest.raises(spard.InputError, match=message):
        spard.State.from_dict(data)


def test_state_from_something_not_a_dict_is_rejected():
    with pytest.raises(spard.InputError, match=r"^state: Input should be") as caught:
        spard.State.from_dict(["not", "a", "state"])
    assert caught.value.field == "state"


@pytest.mark.parametrize("prompts", [1, 2, 7, 64, 513])
def test_sample_weight_summary_matches_numpy_quantiles(prompts):
    from spard.service.runs.records import sample_weight_summary

    rng = np.random.default_rng(prompts)
    for _ in range(20):
        weights, zero_signal = rng.random(prompts), rng.random(prompts) < 0.3
        summary = sample_weight_summary(weights, zero_signal)
        assert summary["prompts"] == prompts
        assert summary["zero_signal"] == int(zero_signal.sum())
        got = [summary[name] for name in ("min", "p10", "p50", "p90", "max")]
        informative = weights[~zero_signal]
        if informative.size == 0:
            assert got == [None] * 5
        else:
            expected = np.quantile(informative, [0.0, 0.1, 0.5, 0.9, 1.0])
            np.testing.assert_allclose(got, expected, rtol=1e-14, atol=0)


def test_no_step_follows_the_largest_index():
    from spard.config import MAX_STEP

    _, state = spard.step(spard.init(["a", "b"]), batch(0), step=MAX_STEP)
    with pytest.raises(spard.InputError, match="no step can follow") as refused:
        spard.step(state, batch(1))
    assert refused.value.field == "step"
    replay, _ = spard.step(state, batch(0), step=MAX_STEP)  # the last one still replays
    assert replay.replayed


@pytest.mark.anyio
async def test_the_service_refuses_a_step_after_the_largest_index(client):
    from spard.config import MAX_STEP

    await client.post("/v1/runs", json={"run_id": "end", "objectives": ["a", "b"]})
    last = await client.post(
        "/v1/runs/end/steps", json={"step": MAX_STEP, "scores": batch(0).tolist()}
    )
    assert last.status_code == 200
    after = await client.post("/v1/runs/end/steps", json={"scores": batch(1).tolist()})
    assert after.status_code == 422
    assert after.json()["field"] == "step"
    state = await client.get("/v1/runs/end/state")
    assert state.json()["last_step"] == MAX_STEP
    assert (await client.put("/v1/runs/end/state", json=state.json())).status_code == 422
