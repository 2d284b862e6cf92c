"""PAWA: progress-aware reward weights by a closed-form exponentiated-gradient step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spard.rules import StepInputs
from spard.types import FloatArray


def exponentiated_gradient_step(
    reward_weights: FloatArray,
    prior_weights: FloatArray,
    utilities: FloatArray,
    rates: tuple[float, float, float],
) -> FloatArray:
    """Closed form of ``max_w <u,w> - KL(w||w_t)/eta - lambda KL(w||w0)`` on the simplex.

    Followed by the mix ``(1-rho) w + rho w0`` that keeps every weight >= rho * w0_k.
    ``rates`` are ``(eta, lambda, rho)``. All arrays are ``(K,)``; the result sums to 1. The
    step runs on the prior's support: an objective with ``w0_k = 0`` keeps weight 0 (a
    multiplicative step could never move it anyway, but ``log 0`` would turn ``0 * -inf``
    into NaN).
    """
    step_size, prior_strength, prior_mix = rates
    trained = prior_weights > 0.0
    inertia = 1.0 / (1.0 + step_size * prior_strength)
    logits = np.full(prior_weights.shape, -np.inf)
    logits[trained] = (
        inertia * np.log(reward_weights[trained])
        + (1.0 - inertia) * np.log(prior_weights[trained])
        + step_size * inertia * utilities[trained]
    )
    logits -= logits.max()
    updated = np.exp(logits)
    updated /= updated.sum()
    mixed: FloatArray = (1.0 - prior_mix) * updated + prior_mix * prior_weights
    normalised: FloatArray = mixed / mixed.sum()
    return normalised


@dataclass(frozen=True)
class Pawa:
    """Reward rule ``pawa``: an exponentiated-gradient step up the progress utilities.

    ``step_size`` eta, ``prior_strength`` lambda, ``prior_mix`` rho; the step is taken once
    ``warmup`` steps are applied, every ``update_every`` steps. The utilities are those of
    :class:`spard.progress.Progress`. State: the ``(K,)`` weights for the next batch.
    """

    step_size: float
    prior_strength: float
    prior_mix: float
    warmup: int
    update_every: int

    def init(self, prior_weights: FloatArray) -> FloatArray:
        """The prior weights: PAWA starts at w0."""
        return prior_weights.copy()

    def update(self, weights: FloatArray, inputs: StepInputs) -> tuple[FloatArray, FloatArray]:
        """``weights`` are in force for this batch (computed from earlier steps only); the new
        state is one step from them when one is due."""
        applied = inputs.steps_applied
        if applied < self.warmup or applied % self.update_every != 0:
            return weights, weights
        rates = (self.step_size, self.prior_strength, self.prior_mix)
        utilities = inputs.signals.utilities
        return weights, exponentiated_gradient_step(weights, inputs.prior_weights, utilities, rates)
