"""GD²PO (arXiv 2606.16771): GDPO whose rollouts with conflicting objectives are filtered out
and whose prompts are weighted by how many of their rollouts agree.

Transcribed from the authors' verl trainer (Qwen-Applications/GD2PO,
``tool-calling/verl/trainer/ppo/ray_trainer.py``: ``compute_advantage``'s branches
``gdpo_filter_group_ratio`` and ``gdpo_filter_ratio_conflict_group_ratio``); what is theirs and
what is our reading is in docs/field-methods.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spard.advantages import group_z_scores
from spard.scores import BatchStatistics
from spard.types import BoolArray, FloatArray

# Their constants: verl's GRPO std floor (compute_grpo_outcome_advantage's epsilon), the sign
# test of _get_mixed_sign_conflict_mask, the ratio's floor (gdpo_filter_ratio_conflict_eps in
# their scripts) and verl's masked_whiten, which adds 1e-8 to the variance.
GROUP_STD_EPS = 1e-6
SIGN_EPS = 1e-8
RATIO_EPS = 1e-8
WHITEN_EPS = 1e-8


@dataclass(frozen=True)
class ConsensusFiltered:
    """Advantage rules ``gd2po_hard`` (``threshold`` None) and ``gd2po_snr``.

    A rollout is in conflict when one trained objective's group z-score is positive and
    another's negative; ``gd2po_hard`` drops every such rollout, ``gd2po_snr`` only those whose
    agreement ratio ``|sum_k a_k| / sum_k |a_k|`` is below ``threshold`` (tau). Each prompt's
    weighted sum of z-scores is scaled by the share of its rollouts kept, then the kept
    rollouts are whitened over the batch (the dropped ones get 0): the consensus weight enters
    before the whitening, as in their code, so it is not a data weight.
    """

    threshold: float | None = None

    def update(
        self,
        batch: BatchStatistics,
        reward_weights: FloatArray,
        sample_weights: FloatArray,
        scales: FloatArray | None,
    ) -> FloatArray:
        """(N, G) advantages, each prompt's row scaled by its ``(N,)`` data weight."""
        trained = reward_weights > 0.0
        # Their code sums the active rewards with weight 1: the weights rescaled so that a
        # uniform prior over the trained objectives is exactly theirs.
        weights = reward_weights * np.count_nonzero(trained)
        z_scores = group_z_scores(batch, GROUP_STD_EPS)
        contributions = z_scores * weights
        keep = ~self._conflicts(z_scores[:, :, trained], contributions)
        scored: BoolArray = np.any(batch.valid[:, :, trained], axis=2)
        kept = keep & scored
        # The share of each prompt's (scored) rollouts kept: their group keep ratio.
        scored_counts = scored.sum(axis=1)
        keep_ratio = kept.sum(axis=1) / np.maximum(scored_counts, 1)
        combined = contributions.sum(axis=2) * keep_ratio[:, None]
        return _whiten(combined, kept) * sample_weights[:, None]

    def _conflicts(self, z_scores: FloatArray, contributions: FloatArray) -> BoolArray:
        """(N, G) rollouts dropped: mixed signs over the trained objectives' ``(N, G, K')``
        z-scores and, under a threshold, an agreement ratio below it."""
        mixed: BoolArray = np.any(z_scores > SIGN_EPS, axis=2) & np.any(
            z_scores < -SIGN_EPS, axis=2
        )
        if self.threshold is None:
            return mixed
        ratio = contributions.sum(axis=2) / (np.abs(contributions).sum(axis=2) + RATIO_EPS)
        conflicting: BoolArray = mixed & (np.abs(ratio) < self.threshold)
        return conflicting


def _whiten(values: FloatArray, mask: BoolArray) -> FloatArray:
    """(N, G) ``values`` whitened over the entries of ``mask``, 0 elsewhere (all 0 when none is
    kept), as verl's ``masked_whiten`` over the kept rollouts' tokens would with responses of
    equal length L: the mean is the rollouts' mean, and the variance the population variance
    (verl's Bessel factor counts tokens, nL / (nL - 1), which tends to 1 as L grows; the
    service knows no lengths, so it takes that limit), ``+ 1e-8`` under the root."""
    if not mask.any():
        return np.zeros_like(values)
    selected = values[mask]
    mean = selected.mean()
    variance = ((selected - mean) ** 2).mean()
    whitened: FloatArray = np.where(mask, (values - mean) / np.sqrt(variance + WHITEN_EPS), 0.0)
    return whitened
