"""DRW's hypervolume-guided reward scale (arXiv 2509.11452), from scores alone.

The authors (yining610/dynamic-reward-weighting: ``verl/utils/reward_score/dynamic_math/
hypervolumn_contribution.py`` and ``verl/trainer/ppo/ray_trainer_vanilla.py``) multiply every
reward of a step by a "meta reward" ``0.5 + 1.5 tanh(c)``, where ``c`` is the hypervolume the
policy's current performance point adds to a buffer of earlier points (the first being the
reference), and keep the point when it adds some. Their point is a validation-set evaluation;
a reward service has none, so ours is the batch's per-objective mean score
(docs/field-methods.md says what that changes, and what survives group normalisation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spard.rules import StepInputs
from spard.types import FloatArray

# The recursive slicing of M points in K objectives costs up to about M^K / (K-2)! steps when
# the points do not dominate one another (measured here: 0.6 s for 64 points in 4, 0.7 s for 15
# in 8): the buffer is kept below what this many allow, whatever drw_buffer_max says (at most
# about 0.1 s per step).
MAX_SLICES = 100_000

# verl's GRPO std floor (compute_grpo_outcome_advantage's epsilon): the advantage rule `drw`
# uses it, since the meta reward's only effect under group normalisation is through it.
VERL_GRPO_EPS = 1e-6


def hypervolume(points: list[tuple[float, ...]], reference: tuple[float, ...]) -> float:
    """Their ``_hypervolume``: Fonseca et al.'s recursive slicing, transcribed as written
    (all objectives maximised). Points not above the reference in some objective can make it
    negative, as in their code."""
    if not points:
        return 0.0
    if len(reference) == 1:
        return max(point[0] for point in points) - reference[0]
    remaining = sorted(points, key=lambda point: point[0])
    volume = 0.0
    edge = reference[0]
    while remaining:
        lowest = remaining[0]
        width = lowest[0] - edge
        if width > 0:
            volume += width * hypervolume([p[1:] for p in remaining], reference[1:])
            edge = lowest[0]
        remaining = [p for p in remaining if p[0] > lowest[0]]
    return volume


def meta_reward(buffer: list[tuple[float, ...]], point: tuple[float, ...]) -> tuple[float, float]:
    """Their ``compute_score``: ``(0.5 + 1.5 tanh(c), c)`` with ``c`` the hypervolume ``point``
    adds to ``buffer`` (its first entry the reference), floored at 0. Where their code raises on
    a negative contribution (possible for points below the reference), the floor applies."""
    reference, earlier = buffer[0], buffer[1:]
    contribution = hypervolume([*earlier, point], reference) - hypervolume(earlier, reference)
    contribution = max(contribution, 0.0)
    return 0.5 + 1.5 * math.tanh(contribution), contribution


@dataclass(frozen=True)
class HypervolumeScale:
    """Reward-scale rule of the advantage rule ``drw``. Its state is the buffer ``(M, K)`` of
    performance points (the first the reference), at most ``capacity`` kept (the reference and
    the newest; theirs is unbounded), fewer when many objectives would make the hypervolume
    too costly (:func:`affordable_points`)."""

    capacity: int

    def update(self, buffer: FloatArray, inputs: StepInputs) -> tuple[float, FloatArray]:
        """``(scale in force for this batch, new buffer)``. The point is the batch's mean score
        of each trained objective (untrained ones are held at 0); the first batch's is the
        reference (scale 1, their starting meta reward); a batch missing a trained objective
        leaves the buffer as it is, at scale 1."""
        trained = inputs.prior_weights > 0.0
        means = inputs.batch.objective_means
        if np.isnan(means[trained]).any():
            return 1.0, buffer
        point = np.where(trained, means, 0.0)
        if buffer.shape[0] == 0:
            return 1.0, point[None, :]
        rows = [tuple(row[trained].tolist()) for row in buffer]
        scale, contribution = meta_reward(rows, tuple(point[trained].tolist()))
        if contribution > 0.0:
            kept = np.concatenate([buffer, point[None, :]])
            capacity = min(self.capacity, affordable_points(int(trained.sum())))
            if kept.shape[0] > capacity:
                kept = np.concatenate([kept[:1], kept[kept.shape[0] - capacity + 1 :]])
            buffer = kept
        return scale, buffer


def affordable_points(objectives: int) -> int:
    """The most points (at least 2) whose hypervolume in ``objectives`` dimensions costs about
    :data:`MAX_SLICES` steps, ``M^K / (K-2)! <= MAX_SLICES``."""
    dimensions = max(objectives, 1)
    budget = MAX_SLICES * math.factorial(max(dimensions - 2, 0))
    return max(2, int(budget ** (1.0 / dimensions)))
