"""RADR: per-prompt data weights from a reward-attribute matrix built on score dispersion."""

from __future__ import annotations

import numpy as np

from spard.config import SpardConfig
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


def data_weights(importance: FloatArray, config: SpardConfig) -> tuple[FloatArray, BoolArray]:
    """Temper, normalise and clip ``(N,)`` importances into data weights.

    Returns ``(sample_weights, zero_signal)``: prompts with ``v_i = 0`` get weight 0 and are
    flagged zero-signal; the others have mean weight exactly 1.
    """
    zero_signal = importance <= 0.0
    informative = ~zero_signal
    weights = np.zeros_like(importance)
    if not informative.any():
        return weights, zero_signal
    if config.data_weight_power == 0.0:
        tempered = np.ones(int(informative.sum()))
    else:
        tempered = importance[informative] ** config.data_weight_power
    tempered = tempered / tempered.mean()
    tempered = np.clip(tempered, config.data_weight_min, config.data_weight_max)
    weights[informative] = tempered / tempered.mean()
    return weights, zero_signal
