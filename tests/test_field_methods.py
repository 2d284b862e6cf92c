"""The field's multi-objective methods against independent loops written from their authors'
code (GD²PO) or paper (MO-GRPO), on random batches with missing scores, ties, constant groups
and objectives a prompt was never scored on; and each one through the service.

The loops go rollout by rollout as the authors' code does (GD²PO:
Qwen-Applications/GD2PO, tool-calling/verl/trainer/ppo/ray_trainer.py, and verl's
compute_grpo_outcome_advantage and masked_whiten); what they do with a missing score is our
reading (docs/field-methods.md), the same in the loop and in the engine.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import spard
from spard.scores import batch_statistics
from spard.strategies import ADVANTAGE_RULES, STRATEGY_TABLE, decoupled_variant

pytestmark = pytest.mark.anyio

FIELD_METHODS = ("gd2po_hard", "gd2po_snr", "mo_grpo")


def random_batch(seed: int, prompts: int = 7, rollouts: int = 6, objectives: int = 3):
    """Scores with ties (rounded), a constant group, an objective missing for a whole prompt,
    scattered missing scores and a rollout missing every score."""
    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=(prompts, rollouts, objectives)), 1)
    scores[:, :, 0] = rng.integers(0, 2, size=(prompts, rollouts))  # binary: many ties
    scores[1, :, 1] = 0.5  # a constant group
    scores[2, :, 2] = np.nan  # a prompt never scored on one objective
    scores[rng.random(scores.shape) < 0.1] = np.nan
    scores[3, 0, :] = np.nan  # a rollout without any score
    return scores


# --- the authors' computations, one rollout at a time (test-only) ---------------------------


def loop_group_z(scores, eps):
    """verl's compute_grpo_outcome_advantage per objective: (x - mean) / (std + eps) with
    torch.std (Bessel) over the group; a missing score (and a group with fewer than two valid
    ones, where verl would keep the score itself for a group of one) gives 0."""
    prompts, rollouts, objectives = scores.shape
    z = np.zeros(scores.shape)
    for i in range(prompts):
        for k in range(objectives):
            values = [scores[i, g, k] for g in range(rollouts) if not math.isnan(scores[i, g, k])]
            if len(values) < 2:
                continue
            mean = sum(values) / len(values)
            std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
            for g in range(rollouts):
                if not math.isnan(scores[i, g, k]):
                    z[i, g, k] = (scores[i, g, k] - mean) / (std + eps)
    return z


def loop_gd2po(scores, weights, threshold):
    prompts, rollouts, objectives = scores.shape
    active = [k for k in range(objectives) if weights[k] > 0]
    scale = [weights[k] * len(active) for k in range(objectives)]  # 1 each for a uniform prior
    z = loop_group_z(scores, 1e-6)
    combined = np.zeros((prompts, rollouts))
    kept = np.zeros((prompts, rollouts), bool)
    for i in range(prompts):
        for g in range(rollouts):
            if all(math.isnan(scores[i, g, k]) for k in active):
                continue  # not scored: neither kept nor counted
            terms = [scale[k] * z[i, g, k] for k in active]
            positive = any(z[i, g, k] > 1e-8 for k in active)
            negative = any(z[i, g, k] < -1e-8 for k in active)
            conflict = positive and negative  # _get_mixed_sign_conflict_mask
            if threshold is not None:  # _compute_gdpo_ratio_conflict_advantages
                ratio = sum(terms) / (sum(abs(t) for t in terms) + 1e-8)
                conflict = conflict and abs(ratio) < threshold
            kept[i, g] = not conflict
            combined[i, g] = sum(terms)
    for i in range(prompts):  # _compute_gdpo_group_keep_ratio, applied before the whitening
        scored = [
            g for g in range(rollouts) if not all(math.isnan(scores[i, g, k]) for k in active)
        ]
        ratio = sum(kept[i, g] for g in scored) / max(len(scored), 1)
        for g in range(rollouts):
            combined[i, g] *= ratio
    # _apply_gdpo_keep_mask: verl's masked_whiten over the kept rollouts' tokens, in the limit
    # of long responses of equal length (its Bessel factor counts tokens: nL / (nL - 1) -> 1).
    values = [combined[i, g] for i in range(prompts) for g in range(rollouts) if kept[i, g]]
    out = np.zeros((prompts, rollouts))
    if not values:
        return out
    mean = sum(values) / len(values)
    variance = sum((v - mean) ** 2 for v in values) / len(values)
    for i in range(prompts):
        for g in range(rollouts):
            if kept[i, g]:
                out[i, g] = (combined[i, g] - mean) / math.sqrt(variance + 1e-8)
    return out


def loop_mo_grpo(scores, weights, eps):
    """Our reading of MO-GRPO: the weighted sum of per-objective group z-scores, normalised
    in its group as GRPO normalises a reward."""
    prompts, rollouts, objectives = scores.shape
    active = [k for k in range(objectives) if weights[k] > 0]
    z = loop_group_z(scores, eps)
    out = np.zeros((prompts, rollouts))
    for i in range(prompts):
        scored = [
            g for g in range(rollouts) if not all(math.isnan(scores[i, g, k]) for k in active)
        ]
        if len(scored) < 2:
            continue
        sums = {g: sum(weights[k] * z[i, g, k] for k in active) for g in scored}
        mean = sum(sums.values()) / len(scored)
        std = math.sqrt(sum((v - mean) ** 2 for v in sums.values()) / (len(scored) - 1))
        for g in scored:
            out[i, g] = (sums[g] - mean) / (std + eps)
    return out


def engine_advantages(strategy, scores, weights, **config):
    rule = spard.SpardConfig(strategy=strategy, **config).build().advantages
    batch = batch_statistics(scores)
    return rule.update(batch, np.asarray(weights), np.ones(scores.shape[0]), None)


WEIGHTS = ([1 / 3, 1 / 3, 1 / 3], [0.5, 0.3, 0.2], [0.0, 0.6, 0.4])


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("weights", WEIGHTS)
def test_gd2po_hard_is_the_authors_filter(seed, weights):
    scores = random_batch(seed)
    expected = loop_gd2po(scores, weights, threshold=None)
    np.testing.assert_allclose(
        engine_advantages("gd2po_hard", scores, weights), expected, atol=1e-9
    )


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("threshold", [0.8, 0.2, 0.0, 1.0])
def test_gd2po_snr_is_the_authors_ratio_filter(seed, weights, threshold):
    scores = random_batch(seed)
    expected = loop_gd2po(scores, weights, threshold)
    got = engine_advantages("gd2po_snr", scores, weights, agreement_threshold=threshold)
    np.testing.assert_allclose(got, expected, atol=1e-9)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("weights", WEIGHTS)
def test_mo_grpo_is_our_reading_of_the_paper(seed, weights):
    scores = random_batch(seed)
    expected = loop_mo_grpo(scores, weights, eps=1e-4)
    np.testing.assert_allclose(engine_advantages("mo_grpo", scores, weights), expected, atol=1e-9)


def test_gd2po_snr_at_threshold_one_filters_every_conflict_as_hard_does():
    # |ratio| < 1 for every rollout with mixed signs, so tau = 1 drops the same rollouts.
    for seed in range(5):
        scores = random_batch(seed)
        hard = engine_advantages("gd2po_hard", scores, WEIGHTS[0])
        snr = engine_advantages("gd2po_snr", scores, WEIGHTS[0], agreement_threshold=1.0)
        np.testing.assert_allclose(snr, hard, atol=1e-12)


def test_gd2po_drops_a_disagreeing_rollout_and_down_weights_its_prompt():
    # Prompt 0: rollout 0 is best on a and worst on b (a conflict); prompt 1 agrees.
    scores = np.array(
        [
            [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [1.0, 1.0]],
            [[1.0, 1.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]],
        ]
    )
    advantages = engine_advantages("gd2po_hard", scores, [0.5, 0.5])
    assert advantages[0, 0] == advantages[0, 1] == 0.0
    # Prompt 0 keeps half its rollouts: its advantages (before whitening) are halved.
    assert abs(advantages[0, 3]) < abs(advantages[1, 0])


def test_edge_cases_give_zero_not_nan():
    constant = np.ones((3, 4, 2))
    missing = np.full((3, 4, 2), np.nan)
    missing[0, :2, 0] = [0.0, 1.0]
    for strategy in FIELD_METHODS:
        for scores in (constant, missing):
            advantages = engine_advantages(strategy, scores, [0.5, 0.5])
            assert np.isfinite(advantages).all()
        np.testing.assert_array_equal(engine_advantages(strategy, constant, [0.5, 0.5]), 0.0)


def test_the_field_methods_are_engine_only_and_their_decoupled_variants_declared():
    for name in (*FIELD_METHODS, "drw"):
        entry = ADVANTAGE_RULES[STRATEGY_TABLE[name].advantages]
        assert entry.trainer_aggregation is None  # the adapters apply the engine's advantages
    for name in FIELD_METHODS:  # each already normalises every objective on its own
        assert decoupled_variant(STRATEGY_TABLE[name].advantages) == name
    assert decoupled_variant("drw") is None  # a summed rule with no GDPO counterpart


def test_agreement_threshold_is_validated_by_name():
    with pytest.raises(spard.InputError) as refused:
        spard.config.config_from_overrides({"agreement_threshold": 1.5})
    assert refused.value.field == "config.agreement_threshold"


@pytest.mark.parametrize("strategy", FIELD_METHODS)
async def test_each_field_method_steps_through_the_service(client, strategy):
    body = {"run_id": f"f-{strategy}", "objectives": ["a", "b", "c"], "strategy": strategy}
    assert (await client.post("/v1/runs", json=body)).status_code == 201
    for t in range(3):
        scores = random_batch(t, prompts=4, rollouts=4)
        scored = np.where(np.isnan(scores), None, scores).tolist()
        step = {"step": t, "scores": scored, "return_advantages": True}
        answer = await client.post(f"/v1/runs/f-{strategy}/steps", json=step)
        assert answer.status_code == 200, answer.text
        expected = engine_advantages(strategy, scores, [1 / 3, 1 / 3, 1 / 3])
        np.testing.assert_allclose(answer.json()["advantages"], expected, atol=1e-12)


def theirs_token_level_gd2po(scores, length, threshold):
    """GD2PO as the authors' verl trainer computes it on tokens (their ``compute_advantage``
    branches over ``compute_grpo_outcome_advantage`` and verl's ``masked_whiten``), in torch
    float64, every response ``length`` tokens with its reward on the last: (N, G) advantages.
    Uniform weights and no missing scores, as their trainer has."""
    import torch

    prompts, rollouts, objectives = scores.shape
    batch = prompts * rollouts
    mask = torch.ones(batch, length, dtype=torch.float64)
    flat = torch.as_tensor(scores.reshape(batch, objectives))
    per_reward = []
    for k in range(objectives):  # compute_grpo_outcome_advantage: group z-score, eps 1e-6
        grouped = flat[:, k].reshape(prompts, rollouts)
        z = (grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-6)
        per_reward.append(z.reshape(batch, 1) * mask)
    token_advantages = torch.stack(per_reward)  # (K, B, T)
    rollout_advantages = token_advantages.sum(-1)  # their sign test is on A_k * L
    conflict = (rollout_advantages > 1e-8).any(0) & (rollout_advantages < -1e-8).any(0)
    keep = ~conflict
    if threshold is not None:
        ratio = rollout_advantages.sum(0) / (rollout_advantages.abs().sum(0) + 1e-8)
        keep = ~(conflict & (ratio.abs() < threshold))
    kept = keep.to(torch.float64)
    group_ratio = kept.reshape(prompts, rollouts).mean(1, keepdim=True).expand(-1, rollouts)
    combined = token_advantages.sum(0) * group_ratio.reshape(batch, 1)
    whiten_mask = kept.unsqueeze(-1) * mask
    if whiten_mask.sum() == 0:
        return np.zeros((prompts, rollouts))
    filtered = combined * whiten_mask
    count = whiten_mask.sum()
    mean = filtered.sum() / count
    variance = (((filtered - mean) ** 2) * whiten_mask).sum() / count * (count / (count - 1))
    whitened = (filtered - mean) * torch.rsqrt(variance + 1e-8) * whiten_mask
    return whitened[:, 0].reshape(prompts, rollouts).numpy()


@pytest.mark.parametrize("threshold", [None, 0.8])
@pytest.mark.parametrize("seed", range(4))
def test_gd2po_matches_the_authors_token_level_code_on_long_responses(seed, threshold):
    """Their whitening counts tokens (Bessel factor nL / (nL - 1)); the service, without
    lengths, takes the long-response limit: at 2048 tokens the two agree to 1e-4."""
    pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 3, size=(6, 4, 3)).astype(float) + rng.normal(0, 0.1, (6, 4, 3))
    strategy = "gd2po_hard" if threshold is None else "gd2po_snr"
    ours = engine_advantages(strategy, scores, [1 / 3] * 3)
    theirs = theirs_token_level_gd2po(scores, 2048, threshold)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
