"""Step semantics (causal, replays, order) and the versioned state format."""

from __future__ import annotations

import json

import numpy as np
import pytest

import spard


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


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(version=99), "state.version: 99 is not supported"),
        (lambda d: d.update(level=[0.0]), "state.level has 1 entries; expected 2"),
        (lambda d: d.update(reward_weights=[0.9, 0.9]), "reward_weights must be finite"),
        (lambda d: d.update(prior_weights=[1.0, 0.0]), "prior_weights must be finite, positive"),
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
