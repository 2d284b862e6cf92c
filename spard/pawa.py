"""PAWA: progress-aware reward weights by a closed-form exponentiated-gradient step."""

from __future__ import annotations

import numpy as np

from spard.config import SpardConfig
from spard.types import BoolArray, FloatArray


def utility(reliability: FloatArray, eligible: BoolArray, config: SpardConfig) -> FloatArray:
    """(K,) u_k from the reliability z_k by the PAWA mode; 0 where not ``eligible``.

    ``gain``: clip(z); ``absolute``: |clip(z)|; ``lag``: -clip(z).
    """
    clipped = np.clip(reliability, -config.utility_clip, config.utility_clip)
    if config.pawa_mode == "absolute":
        clipped = np.abs(clipped)
    elif config.pawa_mode == "lag":
        clipped = -clipped
    return np.where(eligible, clipped, 0.0)


def exponentiated_gradient_step(
    reward_weights: FloatArray,
    prior_weights: FloatArray,
    utilities: FloatArray,
    config: SpardConfig,
) -> FloatArray:
    """Closed form of ``max_w <u,w> - KL(w||w_t)/eta - lambda KL(w||w0)`` on the simplex.

    Followed by the mix ``(1-rho) w + rho w0`` that keeps every weight >= rho * w0_k.
    All arrays are ``(K,)``; the result sums to 1. The step runs on the prior's support: an
    objective with ``w0_k = 0`` keeps weight 0 (a multiplicative step could never move it
    anyway, but ``log 0`` would turn ``0 * -inf`` into NaN).
    """
    trained = prior_weights > 0.0
    inertia = 1.0 / (1.0 + config.step_size * config.prior_strength)
    logits = np.full(prior_weights.shape, -np.inf)
    logits[trained] = (
        inertia * np.log(reward_weights[trained])
        + (1.0 - inertia) * np.log(prior_weights[trained])
        + config.step_size * inertia * utilities[trained]
    )
    logits -= logits.max()
    updated = np.exp(logits)
    updated /= updated.sum()
    mixed: FloatArray = (1.0 - config.prior_mix) * updated + config.prior_mix * prior_weights
    normalised: FloatArray = mixed / mixed.sum()
    return normalised
