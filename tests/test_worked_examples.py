"""Worked examples computed by hand from algorithm.md, step by step."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import spard


def two_objective_batch(mean_a: float, mean_b: float) -> np.ndarray:
    """(1, 2, 2): each objective's two rollouts sit at mean -/+ 0.05, so D = 0.05 exactly."""
    return np.array([[[mean_a - 0.05, mean_b - 0.05], [mean_a + 0.05, mean_b + 0.05]]])


# The values the hand computations below use (algorithm.md's starting point), pinned so the
# tests do not depend on the frozen defaults.
HAND = {"level_decay": 0.9, "progress_decay": 0.9, "scale_decay": 0.9, "eps_rel": 1e-3, "eps": 1e-8}
HAND |= {"step_size": 0.2, "prior_strength": 1.0, "prior_mix": 0.05, "warmup": 4, "update_every": 1}
HAND |= {"utility_clip": 3.0, "gain_window": 16, "data_weight_power": 0.5}
HAND |= {"data_weight_min": 0.2, "data_weight_max": 5.0}


def run_pawa(means_a, mode: str, means_b=None):
    config = spard.SpardConfig(strategy="pawa", pawa_mode=mode, **HAND)
    state = spard.init(["a", "b"], config)
    results = []
    for t, mean_a in enumerate(means_a):
        mean_b = 0.5 if means_b is None else means_b[t]
        result, state = spard.step(state, two_objective_batch(mean_a, mean_b), step=t)
        results.append(result)
    return results, state


def test_pawa_first_update_matches_the_hand_computation():
    # Objective a improves by 0.1 per step (means 0, .1, .2, .3); b is flat at 0.5.
    # a: mu0 = 0; d1 = .1, mu1 = .01, g1 = .01; d2 = .19, mu2 = .029, g2 = .028;
    #    d3 = .271, mu3 = .0561, g3 = .0523. Gains {.1, .19, .271}: median .19,
    #    |d - .19| = {.09, 0, .081}: MAD .081, sigma = 1.4826 * .081. s = .05 (D is .05).
    sigma = 1.4826 * 0.081
    z_a = 0.0523 / (sigma + 1e-3 * 0.05 + 1e-8)
    # b never moves: z_b = 0. Warmup 4 is reached after step 3: one update,
    # log w = (1/1.2) log w + (0.2/1.2) log w0 + (0.2/1.2) u  with w = w0 = (1/2, 1/2).
    w_a = math.exp(0.2 / 1.2 * z_a) / (math.exp(0.2 / 1.2 * z_a) + 1.0)
    w_a = 0.95 * w_a + 0.05 * 0.5
    results, state = run_pawa([0.0, 0.1, 0.2, 0.3], "gain")
    for result in results:  # no update before warmup: w0 is applied to steps 0..3
        np.testing.assert_allclose(result.reward_weights, [0.5, 0.5])
    assert results[-1].stats["a"]["reliability"] == pytest.approx(z_a, rel=1e-9)
    assert results[-1].stats["a"]["noise"] == pytest.approx(sigma, rel=1e-9)
    assert results[-1].stats["a"]["progress"] == pytest.approx(0.0523, rel=1e-9)
    assert results[-1].stats["b"]["reliability"] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(state.reward_weights, [w_a, 1.0 - w_a], rtol=1e-9)
    assert w_a == pytest.approx(0.51722, abs=1e-5)


@pytest.mark.parametrize(
    ("mode", "improving_gains_weight"), [("gain", True), ("absolute", True), ("lag", False)]
)
def test_pawa_modes_move_weights_the_way_they_say_for_an_improving_objective(
    mode, improving_gains_weight
):
    _, state = run_pawa([0.05 * t for t in range(20)], mode)
    w_a = state.reward_weights[0]
    assert bool(w_a > 0.5) is improving_gains_weight
    assert abs(w_a - 0.5) > 0.05


@pytest.mark.parametrize(
    ("mode", "declining_gains_weight"), [("gain", False), ("absolute", True), ("lag", True)]
)
def test_pawa_modes_move_weights_the_way_they_say_for_a_declining_objective(
    mode, declining_gains_weight
):
    # absolute |z| re-weights an objective that is being forgotten; gain lets it go.
    _, state = run_pawa([1.0 - 0.05 * t for t in range(20)], mode)
    assert bool(state.reward_weights[0] > 0.5) is declining_gains_weight


def test_pawa_weights_move_monotonically_while_progress_is_steady():
    results, _ = run_pawa([0.05 * t for t in range(15)], "gain")
    weights_a = [r.reward_weights[0] for r in results[4:]]
    assert all(later > earlier for earlier, later in itertools.pairwise(weights_a))


def binary_group(correct: int, rollouts: int = 8) -> list[float]:
    return [1.0] * correct + [0.0] * (rollouts - correct)


def radr_batch(*correct_counts: int) -> np.ndarray:
    return np.array([binary_group(c) for c in correct_counts])[:, :, None]


def test_radr_binary_rewards_2_of_8_vs_8_of_8_vs_0_of_8():
    # D: 2-of-8 -> (2 * .75 + 6 * .25) / 8 = .375; 8-of-8 and 0-of-8 -> 0; 4-of-8 -> .5.
    # s = mean D over the 4 groups = .21875; v = D / s; gamma = .5 -> sqrt(v); mean 1 over
    # informative prompts: weights 2 sqrt(.375) / (sqrt(.375) + sqrt(.5)) and the rest.
    state = spard.init(["correct"], spard.SpardConfig(strategy="radr", **HAND))
    result, state = spard.step(state, radr_batch(2, 8, 0, 4))
    low = 2 * math.sqrt(0.375) / (math.sqrt(0.375) + math.sqrt(0.5))
    np.testing.assert_allclose(result.sample_weights, [low, 0.0, 0.0, 2.0 - low], rtol=1e-12)
    np.testing.assert_array_equal(result.zero_signal, [False, True, True, False])
    assert low == pytest.approx(0.928203, abs=1e-6)
    assert state.tracks.scale[0] == pytest.approx(0.21875)


def test_radr_clips_then_renormalises():
    # gamma = 1, D = (.21875, .21875, .5): normalised (.7, .7, 1.6); clip at 1.5 gives
    # (.7, .7, 1.5), mean 29/30, renormalised (21/29, 21/29, 45/29).
    config = spard.SpardConfig(
        strategy="radr", **{**HAND, "data_weight_power": 1.0, "data_weight_max": 1.5}
    )
    state = spard.init(["correct"], config)
    result, _ = spard.step(state, radr_batch(1, 1, 4))
    np.testing.assert_allclose(result.sample_weights, [21 / 29, 21 / 29, 45 / 29], rtol=1e-12)


def test_radr_gamma_zero_is_uniform_over_informative_prompts():
    state = spard.init(["correct"], spard.SpardConfig(strategy="radr", data_weight_power=0.0))
    result, _ = spard.step(state, radr_batch(1, 8, 4, 0))
    np.testing.assert_array_equal(result.sample_weights, [1.0, 0.0, 1.0, 0.0])


def test_radr_weighs_objectives_by_the_reward_weights_in_force():
    # Prompt 0 disperses only on objective x, prompt 1 only on y, identically: with prior
    # weights (.8, .2) prompt 0 must matter 4 times as much before tempering (2x after sqrt).
    x = [[1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]
    y = [[0.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 1.0]]
    scores = np.stack([np.array(x), np.array(y)])
    state = spard.init(
        ["x", "y"], spard.SpardConfig(strategy="radr", **HAND), prior_weights=[0.8, 0.2]
    )
    result, _ = spard.step(state, scores)
    assert result.sample_weights[0] / result.sample_weights[1] == pytest.approx(2.0)


def test_saw_weights_are_the_normalised_coefficients_of_variation():
    rng = np.random.default_rng(3)
    scores = np.stack([rng.random((4, 6)), rng.random((4, 6)) * 3 + 1], axis=-1)
    config = spard.SpardConfig(strategy="saw", saw_offsets={"b": 2.0})
    result, _ = spard.step(spard.init(["a", "b"], config), scores)
    flat_a, flat_b = scores[..., 0].ravel(), scores[..., 1].ravel() + 2.0
    cv = [np.std(v, ddof=1) / (abs(v.mean()) + 1e-8) for v in (flat_a, flat_b)]
    np.testing.assert_allclose(result.reward_weights, np.array(cv) / sum(cv), rtol=1e-12)


def test_saw_gives_a_constant_objective_exactly_zero_weight_in_any_prompt_order():
    # Group sizes 2, 3, 3, 1 of the constant 0.7: a count-weighted mean of group means is an
    # ulp off 0.7 in some orders, which once gave a CV of 4e-16 instead of 0.
    nan = np.nan
    binary = [[1, nan, nan, 1], [nan, 0, 1, nan], [1, nan, 1, nan], [nan, nan, 1, 1]]
    constant = [[nan, nan, 0.7, 0.7], [0.7, 0.7, 0.7, nan], [0.7, nan, 0.7, 0.7]]
    constant.append([0.7, nan, nan, nan])
    scores = np.stack([np.array(binary, float), np.array(constant)], axis=-1)
    state = spard.init(["a", "b"], spard.SpardConfig(strategy="saw"))
    for order in ([0, 1, 2, 3], [0, 1, 3, 2], [3, 2, 1, 0]):
        result, _ = spard.step(state, scores[order])
        np.testing.assert_array_equal(result.reward_weights, [1.0, 0.0])
        assert result.stats["b"]["mean"] == 0.7
