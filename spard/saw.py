"""SAW baseline: reward weights from each objective's coefficient of variation in the batch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from spard.rules import StepInputs
from spard.scores import BatchStatistics
from spard.types import FloatArray

_CV_EPS = 1e-8


def saw_weights(
    batch: BatchStatistics, offsets: FloatArray, prior_weights: FloatArray
) -> FloatArray:
    """(K,) weights proportional to ``CV_k = std_k / (|mean_k| + 1e-8)`` over the whole batch.

    ``offsets`` ``(K,)`` shift each objective's scores before the CV, as SAW's code shifts its
    correctness range. The std is Bessel-corrected (torch's default). SAW's weights sum to K
    in its code; ours are normalised to 1. Absent objectives, and those with prior weight 0, get
    0; when no other objective varies the prior weights are returned.
    """
    counts = batch.valid_counts.sum(axis=0)
    means = np.nan_to_num(batch.objective_means, nan=0.0)
    centred = batch.filled - means  # the std does not depend on the offset; the mean does
    if not batch.all_valid:
        centred *= batch.valid_float
    squares = np.einsum("ngk,ngk->k", centred, centred)
    with np.errstate(invalid="ignore", divide="ignore"):
        stds = np.sqrt(squares / (counts - 1))
    # An objective with prior weight 0 is tracked, never trained on: SAW gives it nothing.
    trained = (counts >= 2) & (prior_weights > 0.0)
    coefficient = np.where(trained, stds / (np.abs(means + offsets) + _CV_EPS), 0.0)
    total = coefficient.sum()
    if not np.isfinite(total) or total <= 0.0:
        return prior_weights.copy()
    weights: FloatArray = coefficient / total
    return weights


@dataclass(frozen=True)
class Saw:
    """Reward rule ``saw``: each batch's coefficient-of-variation weights, no memory.

    ``offsets`` map objective names to the shift added before the CV (0 for the others).
    Its state is the last batch's weights (what the state's ``reward_weights`` holds).
    """

    offsets: Mapping[str, float] = field(default_factory=dict)

    def init(self, prior_weights: FloatArray) -> FloatArray:
        """The prior weights, until a batch is seen."""
        return prior_weights.copy()

    def update(self, weights: FloatArray, inputs: StepInputs) -> tuple[FloatArray, FloatArray]:
        """This batch's weights, in force now and kept as the state."""
        shifts = np.array([self.offsets.get(name, 0.0) for name in inputs.objectives])
        current = saw_weights(inputs.batch, shifts, inputs.prior_weights)
        return current, current
