"""Bad input gets a clear error naming the field, and never touches the state."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest

import spard


@pytest.fixture
def state():
    return spard.init(["correctness", "fluency"])


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        (np.ones((4, 2)), r"shape \(N, G, K\).*2 dimension"),
        (np.ones((4, 3, 2, 1)), r"shape \(N, G, K\).*4 dimension"),
        (np.ones((4, 3, 3)), "K = 3 objectives.*the run has 2"),
        (np.ones((0, 3, 2)), r"no prompts \(N = 0\)"),
        (np.ones((4, 0, 2)), "at least 2 rollouts.*G = 0"),
        (np.ones((4, 1, 2)), "at least 2 rollouts.*G = 1"),
        (np.full((2, 3, 2), np.nan), "every entry is missing"),
        ([[[None, None], [None, None]]], "every entry is missing"),
        ([[[1.0, 2.0], [3.0]]], "ragged"),
        ([[["a", 1.0], [1.0, 1.0]]], "numbers or null"),
        ([[["1.0", "1.0"], ["1.0", "1.0"]]], "numbers or null"),
        ([[[{"x": 1}, 1.0], [1.0, 1.0]]], "numbers or null"),
        (np.ones((2, 2, 2), dtype=complex), "numbers or null"),
        (7.0, r"shape \(N, G, K\)"),
    ],
)
def test_malformed_scores_are_rejected_with_the_field_named(state, scores, message):
    with pytest.raises(spard.InputError, match=message) as caught:
        spard.step(state, scores)
    assert caught.value.field == "scores"
    assert state.last_step is None
    assert state.steps_applied == 0


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinite_scores_are_rejected_with_their_position(state, bad):
    scores = np.zeros((3, 4, 2))
    scores[1, 2, 1] = bad
    with pytest.raises(spard.InputError, match=r"inf \(first at index \(1, 2, 1\)\)"):
        spard.step(state, scores)


def test_none_and_nan_both_mean_missing(state):
    listed = [[[1.0, None], [0.0, 0.5]], [[1, 0.2], [0, None]]]
    as_array = np.array([[[1.0, np.nan], [0.0, 0.5]], [[1.0, 0.2], [0.0, np.nan]]])
    a, _ = spard.step(state, listed, return_advantages=True)
    b, _ = spard.step(state, as_array, return_advantages=True)
    assert a.to_dict() == b.to_dict()


@pytest.mark.parametrize(
    "scores",
    [
        [[[1.0, 0.5], [0.0, 0.5]], [[True, 0.2], [0.0, 0.1]]],  # numpy would read 1.0
        [[[1.0, None], [0.0, 0.5]], [[False, 0.2], [0.0, None]]],
        [[[np.True_, 0.5], [0.0, 0.5]]],
        np.array([[[True, False], [False, True]]]),
    ],
    ids=["with-numbers", "with-missing", "numpy-bool", "bool-array"],
)
def test_booleans_are_not_scores(state, scores):
    # The one rule, everywhere (engine, service, SDK): a reward of True is a bug upstream.
    with pytest.raises(spard.InputError, match="numbers or null, not true/false") as caught:
        spard.step(state, scores)
    assert caught.value.field == "scores"


@pytest.mark.parametrize("step", [-1, 1.5, "3", True, None.__class__, 2**53, 2**64 - 1])
def test_bad_step_indices_are_rejected(state, step):
    with pytest.raises(spard.InputError, match="step must be a non-negative integer") as caught:
        spard.step(state, np.ones((1, 2, 2)), step=step)
    assert caught.value.field == "step"


def test_numpy_integer_steps_are_accepted(state):
    result, _ = spard.step(state, np.ones((1, 2, 2)), step=np.int64(5))
    assert result.step == 5


@pytest.mark.parametrize(
    ("objectives", "message"),
    [
        ([], "at least one objective"),
        (["a", "a", "b"], r"\['a'\] more than once"),
        (["a", ""], "empty name"),
        ("abc", "list of objective names"),
        (["a", 3], "list of objective names"),
    ],
)
def test_bad_objectives_are_rejected(objectives, message):
    with pytest.raises(spard.InputError, match=message) as caught:
        spard.init(objectives)
    assert caught.value.field == "objectives"


@pytest.mark.parametrize(
    ("prior", "message"),
    [
        ([0.0, 0.0], "at least one > 0"),
        ([1.0, -1.0], "finite and >= 0"),
        ([1.0, float("nan")], "finite and >= 0"),
        ([1.0, 1e-12], "every positive weight must be at least"),
        ([1.0, 2.0, 3.0], "one entry per objective"),
        ({"a": 1.0}, r"missing \['b'\]"),
        ({"a": 1.0, "b": 1.0, "c": 1.0}, r"unknown \['c'\]"),
        (["x", "y"], "must be numbers"),
    ],
)
def test_bad_prior_weights_are_rejected(prior, message):
    with pytest.raises(spard.InputError, match=message) as caught:
        spard.init(["a", "b"], prior_weights=prior)
    assert caught.value.field == "prior_weights"


def test_prior_weights_are_normalised_and_accept_a_mapping():
    state = spard.init(["a", "b"], prior_weights={"b": 3.0, "a": 1.0})
    np.testing.assert_allclose(state.prior_weights, [0.25, 0.75])
    np.testing.assert_allclose(state.reward_weights, [0.25, 0.75])


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"strategy": "best"}, "strategy"),
        ({"pawa_mode": "fast"}, "pawa_mode"),
        ({"level_decay": 1.0}, "level_decay"),
        ({"gain_window": 1}, "gain_window"),
        ({"step_size": 0.0}, "step_size"),
        ({"prior_mix": 1.5}, "prior_mix"),
        ({"data_weight_min": 3.0, "data_weight_max": 2.0}, "data_weight_min"),
        ({"scale_rewards": "token"}, "scale_rewards"),
        ({"learning_rate": 0.1}, "learning_rate"),
    ],
)
def test_bad_config_values_are_rejected_naming_the_field(overrides, field):
    with pytest.raises(pydantic.ValidationError) as caught:
        spard.SpardConfig(**overrides)
    (error,) = caught.value.errors()
    assert field in (".".join(map(str, error["loc"])) or error["msg"])


def test_saw_offsets_must_name_known_objectives():
    config = spard.SpardConfig(strategy="saw", saw_offsets={"nope": 3.0})
    with pytest.raises(spard.InputError, match="unknown objectives") as caught:
        spard.init(["a"], config)
    assert caught.value.field == "config.saw_offsets"


def test_state_arrays_are_read_only(state):
    with pytest.raises(ValueError, match="read-only"):
        state.reward_weights[0] = 1.0
