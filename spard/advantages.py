"""Group-relative advantages: GRPO (weighted sum, then normalise), GDPO (decoupled), and two
rules between them that equalise objectives' scales without GDPO's per-group division.

All follow TRL's conventions: Bessel-corrected standard deviations and a 1e-4 floor.
"""

from __future__ import annotations

import numpy as np

from spard.config import SpardConfig
from spard.scores import BatchStatistics
from spard.types import BoolArray, FloatArray


def compute_advantages(
    batch: BatchStatistics,
    reward_weights: FloatArray,
    sample_weights: FloatArray,
    config: SpardConfig,
    objective_scales: FloatArray | None = None,
) -> FloatArray:
    """(N, G) advantages of a batch, each prompt's row scaled by its data weight.

    ``objective_scales`` (K,) are the running dispersion scales ``s_k`` the ``scaled`` and
    ``decoupled_floor`` rules divide by (NaN or 0 where an objective never dispersed; treated
    as 1 and as no floor). Rollouts without any valid score, and groups with fewer than two
    scored rollouts, get 0.
    """
    rule = config.resolved_advantage_mode
    if rule in ("decoupled", "decoupled_floor"):
        floors = (
            _usable_scales(objective_scales, reward_weights.size, missing=0.0)
            if rule == "decoupled_floor"
            else np.zeros(reward_weights.size)
        )
        advantages = _decoupled(batch, reward_weights, floors, config.advantage_eps)
    else:
        weights = reward_weights
        if rule == "scaled":
            weights = reward_weights / _usable_scales(objective_scales, weights.size, 1.0)
        advantages = _summed(batch, weights, config)
    return advantages * sample_weights[:, None]


def _usable_scales(scales: FloatArray | None, count: int, missing: float) -> FloatArray:
    """(K,) the running scales, ``missing`` where an objective has none (NaN or 0) yet."""
    if scales is None:
        return np.full(count, missing)
    return np.where(np.isfinite(scales) & (scales > 0.0), scales, missing)


def _summed(batch: BatchStatistics, reward_weights: FloatArray, config: SpardConfig) -> FloatArray:
    weighted_sum = batch.filled @ reward_weights
    if batch.all_valid:
        rewards, scored = weighted_sum / reward_weights.sum(), np.ones(weighted_sum.shape, bool)
    else:
        present_weight = batch.valid_float @ reward_weights
        scored = present_weight > 0.0
        if config.missing_scores == "zero":
            # TRL's and verl's nansum: a missing score adds 0 to the rollout's reward.
            rewards = np.where(scored, weighted_sum / reward_weights.sum(), 0.0)
        else:
            # Weights renormalised over the objectives present for each entry (algorithm.md).
            with np.errstate(invalid="ignore", divide="ignore"):
                rewards = np.where(scored, weighted_sum / present_weight, 0.0)
    centred, group_std, usable = _centre_in_groups(rewards, scored)
    if config.scale_rewards == "group":
        centred = centred / (group_std[:, None] + config.advantage_eps)
    elif config.scale_rewards == "batch":
        centred = centred / (_batch_std(rewards, usable) + config.advantage_eps)
    return np.where(usable, centred, 0.0)


def _decoupled(
    batch: BatchStatistics, reward_weights: FloatArray, std_floors: FloatArray, eps: float
) -> FloatArray:
    # As TRL's normalize_then_sum: per-objective group z-scores, weighted nansum, batch
    # whitening. With floors (decoupled_floor), a group's std is never taken below its
    # objective's typical spread, so a near-constant group's noise is not blown up to unit size.
    counts = batch.valid_counts
    centred = batch.filled - batch.group_means[:, None, :]
    if not batch.all_valid:
        centred *= batch.valid_float
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = np.einsum("ngk,ngk->nk", centred, centred) / (counts - 1)
    group_std = np.where(counts >= 2, np.sqrt(variance), 0.0)
    divisor = np.maximum(group_std, std_floors[None, :]) + eps
    combined = np.einsum("ngk,nk->ng", centred, reward_weights / divisor)
    scored: BoolArray = np.any(batch.valid, axis=2)
    mean = combined[scored].mean()
    whitened = (combined - mean) / (_batch_std(combined, scored) + eps)
    return np.where(scored, whitened, 0.0)


def _centre_in_groups(
    rewards: FloatArray, scored: BoolArray
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Centre (N, G) rewards on their group mean; also the group std and the usable mask."""
    counts = scored.sum(axis=1)
    safe_counts = np.maximum(counts, 1)
    means = (rewards * scored).sum(axis=1) / safe_counts
    centred = (rewards - means[:, None]) * scored
    with np.errstate(invalid="ignore", divide="ignore"):
        group_std = np.sqrt((centred**2).sum(axis=1) / (counts - 1))
    usable = scored & (counts >= 2)[:, None]
    return centred, np.where(counts >= 2, group_std, 0.0), usable


def _batch_std(values: FloatArray, mask: BoolArray) -> float:
    selected = values[mask]
    if selected.size < 2:
        return 0.0
    return float(selected.std(ddof=1))
