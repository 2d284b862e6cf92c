"""A strategy as a chain of small rules, the way optax chains gradient transformations.

Every step runs, in order: :class:`~spard.progress.Progress` (the statistics every strategy
reports), a :class:`RewardRule` (the weights in force for this batch, and those for the next),
a :class:`DataRule` (per-prompt data weights) and, when asked, an :class:`AdvantageRule`. Each
rule is a frozen object that holds its own parameters and no state; the state it needs is
handed in and handed back as plain data (the reward rule's slice is the state's
``reward_weights``). :class:`RuleChain` is the composition ``SpardConfig.build()`` returns.

A new rule is one class here or in its module and one line in a registry of
``spard.strategies``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from spard.progress import ObjectiveTracks, Progress, Signals
from spard.scores import BatchStatistics
from spard.types import BoolArray, FloatArray


@dataclass(frozen=True)
class StepInputs:
    """What a rule may read at one step; shapes in the field comments."""

    objectives: tuple[str, ...]  # (K,) names, for rules keyed by objective
    prior_weights: FloatArray  # (K,) w0
    batch: BatchStatistics  # this batch's statistics
    tracks: ObjectiveTracks  # the statistics after absorbing this batch
    signals: Signals  # (K,) noise, reliability, utilities of those tracks
    steps_applied: int  # steps applied, this one included


class RewardRule(Protocol):
    """Sets the reward weights. Its state is the ``(K,)`` weights for the next batch."""

    def init(self, prior_weights: FloatArray) -> FloatArray:
        """The state before any step, from the ``(K,)`` prior weights."""
        ...

    def update(self, weights: FloatArray, inputs: StepInputs) -> tuple[FloatArray, FloatArray]:
        """``(weights in force for this batch, new state)`` from the state ``weights``."""
        ...


class DataRule(Protocol):
    """Sets per-prompt data weights; stateless, so a replay can recompute them."""

    def update(
        self, batch: BatchStatistics, scale: FloatArray, reward_weights: FloatArray
    ) -> tuple[FloatArray, BoolArray]:
        """``(sample_weights, zero_signal)``, both ``(N,)``, of ``batch`` under the ``(K,)``
        ``reward_weights`` in force, with ``scale`` the ``(K,)`` running dispersion scales
        after the batch."""
        ...


class AdvantageRule(Protocol):
    """Turns a batch's scores into advantages; stateless, so a replay can recompute them."""

    def update(
        self,
        batch: BatchStatistics,
        reward_weights: FloatArray,
        sample_weights: FloatArray,
        scales: FloatArray | None,
    ) -> FloatArray:
        """(N, G) advantages from the ``(K,)`` weights and ``(N,)`` data weights in force.

        ``scales`` ``(K,)`` are the running scales ``s_k`` the step was applied with (NaN where
        none yet; None when unknown). Where the data weights enter is the rule's choice: the
        rules of ``spard.advantages`` scale the final advantages by them.
        """
        ...


class RewardScale(Protocol):
    """Scales every reward of a batch by one number (DRW's meta reward); its state is a
    ``(M, K)`` array (DRW: the buffer of performance points), ``(0, K)`` before any step."""

    def update(self, buffer: FloatArray, inputs: StepInputs) -> tuple[float, FloatArray]:
        """``(scale in force for this batch, new state)``."""
        ...


@dataclass(frozen=True)
class StepOutput:
    """What a strategy computes for one batch, before the engine's bookkeeping."""

    tracks: ObjectiveTracks  # the statistics after the batch
    signals: Signals  # (K,) noise, reliability, utilities
    reward_weights: FloatArray  # (K,) in force for this batch
    next_weights: FloatArray  # (K,) the reward rule's new state
    sample_weights: FloatArray  # (N,) data weights
    zero_signal: BoolArray  # (N,) prompts whose groups carry no signal
    reward_scale: float = 1.0  # what every reward of the batch is multiplied by
    scale_state: FloatArray | None = None  # (M, K) the reward-scale rule's new state


@dataclass(frozen=True)
class RuleChain:
    """The chain of one strategy: progress, then reward, data and advantage rules, and the
    reward scale of the advantage rules that take one (``drw``)."""

    progress: Progress
    reward: RewardRule
    data: DataRule
    advantages: AdvantageRule
    reward_scale: RewardScale | None = None

    def update(
        self,
        weights: FloatArray,
        tracks: ObjectiveTracks,
        batch: BatchStatistics,
        prior_weights: FloatArray,
        objectives: tuple[str, ...],
        steps_applied: int,
        scale_state: FloatArray | None = None,
    ) -> StepOutput:
        """Run the chain over one batch, given the state's ``(K,)`` ``weights``, ``tracks``,
        the count of steps applied before this one and the reward-scale rule's state."""
        tracks = self.progress.update(tracks, batch)
        signals = self.progress.signals(tracks, batch)
        inputs = StepInputs(objectives, prior_weights, batch, tracks, signals, steps_applied + 1)
        in_force, next_weights = self.reward.update(weights, inputs)
        sample_weights, zero_signal = self.data.update(batch, tracks.scale, in_force)
        out = StepOutput(tracks, signals, in_force, next_weights, sample_weights, zero_signal)
        if self.reward_scale is None:
            return out
        buffer = scale_state if scale_state is not None else np.empty((0, len(objectives)))
        scale, buffer = self.reward_scale.update(buffer, inputs)
        return replace(out, reward_scale=scale, scale_state=buffer)


@dataclass(frozen=True)
class FixedWeights:
    """Reward rule ``fixed``: the prior weights w0, never moved (GRPOavg, GDPO)."""

    def init(self, prior_weights: FloatArray) -> FloatArray:
        """The prior weights (a copy: the state's arrays are locked read-only)."""
        return prior_weights.copy()

    def update(self, weights: FloatArray, inputs: StepInputs) -> tuple[FloatArray, FloatArray]:
        """The state's weights, in force now and kept."""
        return weights, weights
