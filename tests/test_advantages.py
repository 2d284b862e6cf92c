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


def loop_grpo(scores, weights, scale_rewards):
    n_prompts, n_rollouts, n_objectives = scores.shape
    rewards = [[None] * n_rollouts for _ in range(n_prompts)]
    for i in range(n_prompts):
        for j in range(n_rollouts):
            present = [k for k in range(n_objectives) if not math.isnan(scores[i, j, k])]
            total = sum(weights[k] for k in present)
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


def loop_gdpo(scores, weights):
    # TRL normalize_then_sum: per objective group z-score, weighted nansum, batch whitening.
    n_prompts, n_rollouts, n_objectives = scores.shape
    combined = np.zeros((n_prompts, n_rollouts))
    scored = np.zeros((n_prompts, n_rollouts), dtype=bool)
    for i in range(n_prompts):
        for k in range(n_objectives):
            values = [scores[i, j, k] for j in range(n_rollouts) if not math.isnan(scores[i, j, k])]
            if not values:
                continue
            mean = statistics.fmean(values)
            std = statistics.stdev(values) if len(values) >= 2 else 0.0
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
    config = spard.SpardConfig(strategy=strategy, scale_rewards=scale, warmup=1)
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
    result, _ = spard.step(spard.init(["a", "b"]), scores, return_advantages=True)
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
