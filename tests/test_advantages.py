"""GRPO and GDPO advantages against a direct loop implementation written out here."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from batches import objective_names, run_specs
from hypothesis import given
from hypothesis import strategies as st

import spard

EPS = 1e-4  # TRL's std floor


def loop_grpo(scores, weights, scale_rewards, missing="renormalise"):
    n_prompts, n_rollouts, n_objectives = scores.shape
    rewards = [[None] * n_rollouts for _ in range(n_prompts)]
    for i in range(n_prompts):
        for j in range(n_rollouts):
            present = [k for k in range(n_objectives) if not math.isnan(scores[i, j, k])]
            total = sum(
                weights[k] for k in (present if missing == "renormalise" else range(n_objectives))
            )
            if present and total > 0:
                rewards[i][j] = sum(weights[k] * scores[i, j, k] for k in present) / total
    usable = [
        [r for r in group if r is not None] if sum(r is not None for r in group) >= 2 else []
        for group in rewards
    ]
    batch = [r for group in usable for r in group]
    batch_std = statistics.stdev(batch) if len(batch) >= 2 else 0.0
    advantages = np.zeros((n_prompts, n_rollouts))
    for i in range(n_prompts):
        if not usable[i]:
            continue
        mean = statistics.fmean(usable[i])
        std = statistics.stdev(usable[i])
        for j in range(n_rollouts):
            if rewards[i][j] is None:
                continue
            centred = rewards[i][j] - mean
            if scale_rewards == "group":
                centred /= std + EPS
            elif scale_rewards == "batch":
                centred /= batch_std + EPS
            advantages[i, j] = centred
    return advantages


def loop_gdpo(scores, weights, floors=None):
    # TRL normalize_then_sum: per objective group z-score, weighted nansum, batch whitening;
    # with floors (decoupled_floor), each objective's group std is at least its floor.
    n_prompts, n_rollouts, n_objectives = scores.shape
    floors = [0.0] * n_objectives if floors is None else floors
    combined = np.zeros((n_prompts, n_rollouts))
    scored = np.zeros((n_prompts, n_rollouts), dtype=bool)
    for i in range(n_prompts):
        for k in range(n_objectives):
            values = [scores[i, j, k] for j in range(n_rollouts) if not math.isnan(scores[i, j, k])]
            if not values:
                continue
            mean = statistics.fmean(values)
            std = statistics.stdev(values) if len(values) >= 2 else 0.0
            std = max(std, floors[k])
            for j in range(n_rollouts):
                if not math.isnan(scores[i, j, k]):
                    combined[i, j] += weights[k] * (scores[i, j, k] - mean) / (std + EPS)
                    scored[i, j] = True
    values = [combined[i, j] for i in range(n_prompts) for j in range(n_rollouts) if scored[i, j]]
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) >= 2 else 0.0
    return np.where(scored, (combined - mean) / (std + EPS), 0.0)


@given(
    spec=run_specs(max_steps=3),
    scale=st.sampled_from(["group", "batch", "none"]),
    strategy=st.sampled_from(["static", "spard", "saw"]),
)
def test_grpo_advantages_match_the_loop(spec, scale, strategy):
    config = spard.SpardConfig(
        strategy=strategy, advantage_mode="sum", scale_rewards=scale, warmup=1
    )
    state = spard.init(objective_names(len(spec.kinds)), config)
    for scores in spec.batches():
        result, state = spard.step(state, scores, return_advantages=True)
        expected = loop_grpo(scores, result.reward_weights, scale)
        expected *= result.sample_weights[:, None]
        np.testing.assert_allclose(result.advantages, expected, rtol=1e-9, atol=1e-9)


@given(spec=run_specs(max_steps=2), data=st.data())
def test_gdpo_advantages_match_the_loop(spec, data):
    prior = data.draw(
        st.lists(st.floats(0.1, 5.0), min_size=len(spec.kinds), max_size=len(spec.kinds))
    )
    state = spard.init(
        objective_names(len(spec.kinds)), spard.SpardConfig(strategy="gdpo"), prior_weights=prior
    )
    for scores in spec.batches():
        result, state = spard.step(state, scores, return_advantages=True)
        np.testing.assert_allclose(result.reward_weights, np.array(prior) / sum(prior))
        expected = loop_gdpo(scores, result.reward_weights)
        np.testing.assert_allclose(result.advantages, expected, rtol=1e-8, atol=1e-8)


def test_grpo_static_equals_trl_on_a_plain_batch():
    # Two objectives, no missing entries: TRL's sum_then_normalize with reward_weights
    # (0.5, 0.5), i.e. GRPOavg, written with numpy as TRL writes it with torch.
    scores = np.array([[[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0, 1.0]]])
    state = spard.init(["a", "b"], spard.SpardConfig(strategy="static"))
    result, _ = spard.step(state, scores, return_advantages=True)
    rewards = (scores * 0.5).sum(axis=-1)[0]
    expected = (rewards - rewards.mean()) / (rewards.std(ddof=1) + EPS)
    np.testing.assert_allclose(result.advantages[0], expected, rtol=1e-12)


def test_advantages_are_scaled_by_data_weights():
    scores = np.array([[[1.0], [0.0], [0.0], [0.0]], [[1.0], [1.0], [0.0], [0.0]]])
    state = spard.init(["a"], spard.SpardConfig(strategy="radr"))
    result, _ = spard.step(state, scores, return_advantages=True)
    unweighted = np.array([loop_grpo(scores, [1.0], "group")[i] for i in range(2)])
    np.testing.assert_allclose(result.advantages, unweighted * result.sample_weights[:, None])
    assert result.sample_weights[0] != pytest.approx(1.0)


def test_advantages_are_not_computed_unless_asked():
    result, _ = spard.step(spard.init(["a"]), np.ones((2, 3, 1)))
    assert result.advantages is None


def running_scales(result):
    return np.array(
        [np.nan if stat["scale"] is None else stat["scale"] for stat in result.stats.values()]
    )


@given(spec=run_specs(max_steps=4), missing=st.sampled_from(["renormalise", "zero"]))
def test_scaled_advantages_are_grpo_over_scores_divided_by_their_running_scale(spec, missing):
    config = spard.SpardConfig(
        strategy="spard", advantage_mode="scaled", missing_scores=missing, warmup=1
    )
    state = spard.init(objective_names(len(spec.kinds)), config)
    for scores in spec.batches():
        result, state = spard.step(state, scores, return_advantages=True)
        scales = running_scales(result)
        usable = np.where(np.isfinite(scales) & (scales > 0), scales, 1.0)
        expected = loop_grpo(scores, result.reward_weights / usable, "group", missing)
        expected *= result.sample_weights[:, None]
        np.testing.assert_allclose(result.advantages, expected, rtol=1e-8, atol=1e-8)


@given(spec=run_specs(max_steps=3))
def test_decoupled_floor_is_gdpo_with_group_stds_floored_at_the_running_scale(spec):
    config = spard.SpardConfig(strategy="gdpo", advantage_mode="decoupled_floor")
    state = spard.init(objective_names(len(spec.kinds)), config)
    for scores in spec.batches():
        result, state = spard.step(state, scores, return_advantages=True)
        scales = running_scales(result)
        floors = np.where(np.isfinite(scales) & (scales > 0), scales, 0.0)
        expected = loop_gdpo(scores, result.reward_weights, floors.tolist())
        np.testing.assert_allclose(result.advantages, expected, rtol=1e-8, atol=1e-8)


def test_scaled_advantages_do_not_depend_on_an_objectives_units():
    # The same run with objective 1 reported in other units (x 40 - 7): summed advantages
    # change, scaled ones do not (s_k carries the units), up to the 1e-4 std floor.
    rng = np.random.default_rng(3)
    batches = [rng.random((6, 8, 2)).round(1) for _ in range(5)]
    answers = {}
    for mode in ("sum", "scaled"):
        for units in (1.0, 40.0):
            state = spard.init(["a", "b"], spard.SpardConfig(advantage_mode=mode))
            for scores in batches:
                scores = scores.copy()
                scores[..., 1] = units * scores[..., 1] - 7.0 * (units != 1.0)
                result, state = spard.step(state, scores, return_advantages=True)
            answers[(mode, units)] = result.advantages
    np.testing.assert_allclose(answers[("scaled", 1.0)], answers[("scaled", 40.0)], atol=2e-3)
    assert not np.allclose(answers[("sum", 1.0)], answers[("sum", 40.0)], atol=0.1)


def test_decoupled_floor_does_not_blow_up_a_near_constant_noisy_group():
    # Group 0 varies by judge noise alone (1e-3); GDPO scales it to the size of group 1's real
    # spread, the floored rule keeps it near 0.
    rng = np.random.default_rng(0)
    base = np.stack([0.5 + 1e-3 * rng.standard_normal(8), (np.arange(8) % 2).astype(float)])
    scores = base[:, :, None]
    answers = {}
    for mode in ("decoupled", "decoupled_floor"):
        state = spard.init(["judge"], spard.SpardConfig(strategy="gdpo", advantage_mode=mode))
        result, _ = spard.step(state, scores, return_advantages=True)
        answers[mode] = np.abs(result.advantages).max(axis=1)
    assert answers["decoupled"][0] > 0.5 * answers["decoupled"][1]
    assert answers["decoupled_floor"][0] < 0.05 * answers["decoupled_floor"][1]


def test_a_replayed_scaled_step_returns_the_advantages_it_was_answered_with():
    rng = np.random.default_rng(1)
    state = spard.init(["a", "b"], spard.SpardConfig(advantage_mode="scaled"))
    _first, state = spard.step(state, rng.random((4, 6, 2)), return_advantages=True)
    scores = rng.random((4, 6, 2))
    applied, state = spard.step(state, scores, return_advantages=True)
    _later, state = spard.step(state, rng.random((4, 6, 2)) * 9, return_advantages=True)
    replayed, _ = spard.step(state, scores, step=applied.step, return_advantages=True)
    assert replayed.replayed
    np.testing.assert_array_equal(replayed.advantages, applied.advantages)
