"""Group-relative advantages: GRPO (weighted sum, then normalise), GDPO (decoupled), two
rules between them that equalise objectives' scales without GDPO's per-group division, and
MO-GRPO (per-objective group z-scores, weighted, then normalised in their group again).

All follow TRL's conventions: Bessel-corrected standard deviations and a 1e-4 floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from spard.scores import BatchStatistics
from spard.types import BoolArray, FloatArray

if TYPE_CHECKING:
    from spard.config import SpardConfig

MissingScores = Literal["renormalise", "zero"]
ScaleRewards = Literal["group", "batch", "none"]


def compute_advantages(
    batch: BatchStatistics,
    reward_weights: FloatArray,
    sample_weights: FloatArray,
    config: SpardConfig,
    objective_scales: FloatArray | None = None,
) -> FloatArray:
    """(N, G) advantages of a batch by ``config``'s advantage rule (see the rules below)."""
    rule = config.build().advantages
    return rule.update(batch, reward_weights, sample_weights, objective_scales)


@dataclass(frozen=True)
class Summed:
    """Advantage rules ``sum`` (GRPO on the weighted sum) and, with ``scaled``, ``scaled``
    (each objective divided by its running scale ``s_k`` before the sum).

    ``missing_scores`` and ``scale_rewards`` as the config's fields; ``eps`` the std floor.
    Rollouts without any valid score, and groups with fewer than two, get 0.
    """

    missing_scores: MissingScores
    scale_rewards: ScaleRewards
    eps: float
    scaled: bool = False

    def update(
        self,
        batch: BatchStatistics,
        reward_weights: FloatArray,
        sample_weights: FloatArray,
        scales: FloatArray | None,
    ) -> FloatArray:
        """(N, G) advantages, each prompt's row scaled by its ``(N,)`` data weight."""
        weights = reward_weights
        if self.scaled:  # no scale yet (NaN or 0): the objective is left as it is
            weights = reward_weights / _usable_scales(scales, weights.size, 1.0)
        return _summed(batch, weights, self) * sample_weights[:, None]


@dataclass(frozen=True)
class Decoupled:
    """Advantage rules ``decoupled`` (GDPO) and, with ``floored``, ``decoupled_floor`` (each
    group's std floored at its objective's running scale ``s_k``). ``eps`` the std floor."""

    eps: float
    floored: bool = False

    def update(
        self,
        batch: BatchStatistics,
        reward_weights: FloatArray,
        sample_weights: FloatArray,
        scales: FloatArray | None,
    ) -> FloatArray:
        """(N, G) advantages, each prompt's row scaled by its ``(N,)`` data weight."""
        floors = (
            _usable_scales(scales, reward_weights.size, missing=0.0)
            if self.floored
            else np.zeros(reward_weights.size)
        )
        return _decoupled(batch, reward_weights, floors, self.eps) * sample_weights[:, None]


@dataclass(frozen=True)
class GroupDecoupled:
    """Advantage rule ``mo_grpo`` (our reading of MO-GRPO, arXiv 2509.22047): each objective's
    group z-score, weighted and summed, then that sum normalised within its group as GRPO does
    (GDPO whitens it over the batch instead). ``eps`` the std floor of both normalisations.

    A missing score adds 0 to its rollout's sum; a rollout without any valid score, and a group
    with fewer than two, get 0 (docs/field-methods.md).
    """

    eps: float

    def update(
        self,
        batch: BatchStatistics,
        reward_weights: FloatArray,
        sample_weights: FloatArray,
        scales: FloatArray | None,
    ) -> FloatArray:
        """(N, G) advantages, each prompt's row scaled by its ``(N,)`` data weight."""
        combined = np.einsum("ngk,k->ng", group_z_scores(batch, self.eps), reward_weights)
        scored: BoolArray = np.any(batch.valid[:, :, reward_weights > 0.0], axis=2)
        centred, group_std, usable = _centre_in_groups(combined, scored)
        advantages = np.where(usable, centred / (group_std[:, None] + self.eps), 0.0)
        return advantages * sample_weights[:, None]


def group_z_scores(batch: BatchStatistics, eps: float) -> FloatArray:
    """(N, G, K) each score's z-score in its group and objective, ``(x - mean) / (std + eps)``
    with the Bessel-corrected std over the group's valid scores; 0 where the score is missing
    or the group has fewer than two valid ones."""
    centred, group_std = _group_spread(batch)
    divisor = np.where(batch.valid_counts >= 2, group_std + eps, np.inf)
    z_scores: FloatArray = centred / divisor[:, None, :]
    return z_scores


def _group_spread(batch: BatchStatistics) -> tuple[FloatArray, FloatArray]:
    """``(centred, group_std)``: the ``(N, G, K)`` scores minus their group's mean (0 where
    missing) and the ``(N, K)`` Bessel-corrected std over the valid ones (0 under two)."""
    counts = batch.valid_counts
    centred = batch.filled - batch.group_means[:, None, :]
    if not batch.all_valid:
        centred *= batch.valid_float
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = np.einsum("ngk,ngk->nk", centred, centred) / (counts - 1)
    group_std: FloatArray = np.where(counts >= 2, np.sqrt(variance), 0.0)
    return centred, group_std


def _usable_scales(scales: FloatArray | None, count: int, missing: float) -> FloatArray:
    """(K,) the running scales, ``missing`` where an objective has none (NaN or 0) yet."""
    if scales is None:
        return np.full(count, missing)
    return np.where(np.isfinite(scales) & (scales > 0.0), scales, missing)


def _summed(batch: BatchStatistics, reward_weights: FloatArray, rule: Summed) -> FloatArray:
    weighted_sum = batch.filled @ reward_weights
    if batch.all_valid:
        rewards, scored = weighted_sum / reward_weights.sum(), np.ones(weighted_sum.shape, bool)
    else:
        present_weight = batch.valid_float @ reward_weights
        scored = present_weight > 0.0
        if rule.missing_scores == "zero":
            # TRL's and verl's nansum: a missing score adds 0 to the rollout's reward.
            rewards = np.where(scored, weighted_sum / reward_weights.sum(), 0.0)
        else:
            # Weights renormalised over the objectives present for each entry (algorithm.md).
            with np.errstate(invalid="ignore", divide="ignore"):
                rewards = np.where(scored, weighted_sum / present_weight, 0.0)
    centred, group_std, usable = _centre_in_groups(rewards, scored)
    if rule.scale_rewards == "group":
        centred = centred / (group_std[:, None] + rule.eps)
    elif rule.scale_rewards == "batch":
        centred = centred / (_batch_std(rewards, usable) + rule.eps)
    return np.where(usable, centred, 0.0)


def _decoupled(
    batch: BatchStatistics, reward_weights: FloatArray, std_floors: FloatArray, eps: float
) -> FloatArray:
    # As TRL's normalize_then_sum: per-objective group z-scores, weighted nansum, batch
    # whitening. With floors (decoupled_floor), a group's std is never taken below its
    # objective's typical spread, so a near-constant group's noise is not blown up to unit size.
    centred, group_std = _group_spread(batch)
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
