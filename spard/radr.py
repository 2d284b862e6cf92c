"""RADR: per-prompt data weights from a reward-attribute matrix built on score dispersion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spard.scores import BatchStatistics
from spard.types import BoolArray, FloatArray


def prompt_importance(
    dispersion: FloatArray,
    scale: FloatArray,
    reward_weights: FloatArray,
    scored: BoolArray | None = None,
) -> FloatArray:
    """(N,) raw importance ``v_i = sum_k w_k * A_ik`` with ``A_ik = D_ik / s_k``.

    With ``scored`` ``(N, K)`` (objective k has a valid score for prompt i), ``v_i`` is divided
    by ``sum_{k scored for i} w_k`` (the ``radr_mass`` rule), so a prompt scored on more
    objectives does not gain importance just by having more terms; a prompt scored on nothing
    gets 0.

    ``dispersion`` is ``(N, K)``; ``scale`` ``(K,)`` is the dispersion scale *including* this
    batch, so ``s_k = 0`` (or NaN) only when every ``D_ik`` is 0; ``A_ik`` is then 0. That is
    why algorithm.md's ``+ eps`` is not needed here, and leaving it out keeps ``A`` exactly
    invariant to rescaling an objective, however small its scores. ``reward_weights`` ``(K,)``.
    """
    positive_scale = scale > 0.0  # False for NaN too
    safe_scale = np.where(positive_scale, scale, 1.0)
    attribute_matrix = np.where(positive_scale, dispersion / safe_scale, 0.0)
    importance: FloatArray = attribute_matrix @ reward_weights
    if scored is None:
        return importance
    mass = scored.astype(np.float64) @ reward_weights
    normalised: FloatArray = np.where(mass > 0.0, importance / np.where(mass > 0.0, mass, 1.0), 0.0)
    return normalised


def data_weights(
    importance: FloatArray, power: float, minimum: float, maximum: float
) -> tuple[FloatArray, BoolArray]:
    """Temper (``v ** power``), normalise and clip (to ``[minimum, maximum]``) ``(N,)``
    importances into data weights.

    Returns ``(sample_weights, zero_signal)``: prompts with ``v_i = 0`` get weight 0 and are
    flagged zero-signal; the others have mean weight exactly 1.
    """
    zero_signal = importance <= 0.0
    informative = ~zero_signal
    weights = np.zeros_like(importance)
    if not informative.any():
        return weights, zero_signal
    values = importance[informative]
    tempered = np.ones(values.size) if power == 0.0 else values**power
    tempered = tempered / tempered.mean()
    tempered = np.clip(tempered, minimum, maximum)
    weights[informative] = tempered / tempered.mean()
    return weights, zero_signal


@dataclass(frozen=True)
class NoDataWeights:
    """Data rule ``none``: every prompt weighs 1; zero-signal prompts are still reported."""

    def update(
        self, batch: BatchStatistics, scale: FloatArray, reward_weights: FloatArray
    ) -> tuple[FloatArray, BoolArray]:
        """``(ones, zero_signal)``, both ``(N,)``: a prompt has no signal when RADR's
        importance ``v_i`` is 0."""
        importance = prompt_importance(batch.dispersion, scale, reward_weights)
        return np.ones_like(importance), importance <= 0.0


@dataclass(frozen=True)
class Radr:
    """Data rule ``radr`` (``by_mass``: ``radr_mass``): RADR's data weights.

    ``power`` gamma tempers the importances, ``minimum`` and ``maximum`` (d_min, d_max) clip
    them; ``by_mass`` divides each prompt's importance by the weight mass it was scored on.
    """

    power: float
    minimum: float
    maximum: float
    by_mass: bool = False

    def update(
        self, batch: BatchStatistics, scale: FloatArray, reward_weights: FloatArray
    ) -> tuple[FloatArray, BoolArray]:
        """``(sample_weights, zero_signal)``, both ``(N,)``."""
        scored = batch.valid_counts > 0 if self.by_mass else None
        importance = prompt_importance(batch.dispersion, scale, reward_weights, scored)
        return data_weights(importance, self.power, self.minimum, self.maximum)
