"""The two entry points: :func:`init` a curriculum, then :func:`step` it once per batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from spard.config import MAX_STEP, SpardConfig
from spard.errors import InputError, StepConflictError, StepOrderError
from spard.names import normal_name
from spard.rules import StepOutput
from spard.scores import BatchStatistics, batch_statistics, parse_scores, scores_digest
from spard.state import AppliedStep, ObjectiveStats, State, validate_objectives
from spard.types import BoolArray, FloatArray

MIN_PRIOR_WEIGHT = 1e-9


@dataclass(frozen=True)
class StepResult:
    """The engine's answer for one batch.

    ``reward_weights`` (K,) are the weights to apply to this batch; ``sample_weights`` (N,) the
    RADR data weights (mean 1 over informative prompts, 0 for zero-signal ones, all 1 for
    strategies without RADR); ``advantages`` (N, G) when asked for.
    """

    step: int
    objectives: tuple[str, ...]
    reward_weights: FloatArray
    sample_weights: FloatArray
    zero_signal: BoolArray
    advantages: FloatArray | None
    stats: ObjectiveStats
    replayed: bool

    def weights_by_objective(self) -> dict[str, float]:
        """The reward weights keyed by objective name."""
        return dict(zip(self.objectives, self.reward_weights.tolist(), strict=True))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of the result."""
        return {
            "step": self.step,
            "reward_weights": self.weights_by_objective(),
            "sample_weights": self.sample_weights.tolist(),
            "zero_signal": self.zero_signal.tolist(),
            "advantages": None if self.advantages is None else self.advantages.tolist(),
            "stats": self.stats,
            "replayed": self.replayed,
        }


def init(
    objectives: Sequence[str],
    config: SpardConfig | None = None,
    prior_weights: Sequence[float] | Mapping[str, float] | FloatArray | None = None,
) -> State:
    """A fresh curriculum over ``objectives`` (K names) with prior weights w0 (uniform if None).

    ``prior_weights`` may be a sequence of K non-negative numbers (at least one positive) or a
    mapping name -> weight; it is normalised to sum to 1. An objective with prior weight 0 is
    scored and tracked (its level, progress and reliability are reported) but never trained
    on: every rule keeps its reward weight at 0.
    """
    config = config if config is not None else SpardConfig()
    names = validate_objectives(objectives, config)
    prior = _prior_weights(prior_weights, names)
    strategy = config.build()
    return State(
        objectives=names,
        config=config,
        prior_weights=prior,
        reward_weights=strategy.reward.init(prior),
        tracks=strategy.progress.init(len(names)),
    )


def step(
    state: State,
    scores: Any,
    step: int | None = None,
    *,
    return_advantages: bool = False,
) -> tuple[StepResult, State]:
    """Apply one batch of ``scores`` (N, G, K) as step ``step`` (default: the next one).

    Returns ``(result, new_state)``. The result's reward weights were computed from earlier
    steps only; then the new state absorbs this batch. Sending an applied step again returns
    its stored result and the unchanged state; an older step that is no longer kept raises
    :class:`StepOrderError`, an applied step with different scores :class:`StepConflictError`.
    (The service's Idempotency-Key replays build on this: :mod:`spard.service.runs.idempotency`.)
    """
    batch_scores = parse_scores(scores, len(state.objectives))
    digest = scores_digest(batch_scores)
    index = step_index(state, step)
    if state.last_step is not None and index <= state.last_step:
        return _replay(state, index, digest, batch_scores, return_advantages), state

    batch = batch_statistics(batch_scores)
    out = state.config.build().update(
        state.reward_weights,
        state.tracks,
        batch,
        state.prior_weights,
        state.objectives,
        state.steps_applied,
        state.reward_scale_state,
    )
    stats = _objective_stats(state.objectives, batch, out)
    applied = AppliedStep(
        index,
        digest,
        out.reward_weights,
        out.sample_weights,
        out.zero_signal,
        stats,
        reward_scale=out.reward_scale,
    )
    new_state = replace(
        state,
        reward_weights=out.next_weights,  # the reward rule's state
        tracks=out.tracks,
        steps_applied=state.steps_applied + 1,
        last_step=index,
        recent=_kept_steps((*state.recent, applied), state.config),
        reward_scale_state=out.scale_state,
    )
    return _result(state, applied, batch, return_advantages, replayed=False), new_state


def step_index(state: State, step: int | None) -> int:
    """The index ``step`` names: the next one when None; :class:`InputError` if it is not an
    integer in [0, 2**53 - 1], or if no index can follow the last applied step."""
    if step is None:
        if state.last_step is not None and state.last_step >= MAX_STEP:
            # The next index would be one no store keeps exactly (nor the loader accepts).
            raise InputError(
                f"step: the last applied step is {state.last_step}, the largest index; no "
                "step can follow it",
                field="step",
            )
        return 0 if state.last_step is None else state.last_step + 1
    if (
        isinstance(step, bool)
        or not isinstance(step, int | np.integer)
        or not 0 <= step <= MAX_STEP
    ):
        raise InputError(
            f"step must be a non-negative integer up to 2**53 - 1; got {step!r}",
            field="step",
        )
    return int(step)


def _kept_steps(recent: tuple[AppliedStep, ...], config: SpardConfig) -> tuple[AppliedStep, ...]:
    """The last ``replay_window`` applied steps, fewer if their prompts exceed
    ``replay_max_prompts`` (the newest is always kept): the state's size stays bounded.

    A newest step with more prompts than that alone is kept without its (N,) arrays: its
    replay recomputes them from the state after it (see :func:`_replay`), so a state's size
    does not grow with N. Such an entry is dropped once another step follows."""
    *older, newest = recent
    if newest.sample_weights.size > config.replay_max_prompts:
        empty = np.empty(0)
        compact = replace(newest, sample_weights=empty, zero_signal=empty.astype(np.bool_))
        return (compact,)
    recent = (*(entry for entry in older if entry.sample_weights.size), newest)
    kept = recent[-config.replay_window :]
    sizes = np.array([entry.sample_weights.size for entry in kept])
    # Newest first: how many prompts the newest j+1 steps hold.
    newest_first = np.cumsum(sizes[::-1])
    count = max(1, int(np.searchsorted(newest_first, config.replay_max_prompts, side="right")))
    return kept[-count:]


def _replay(
    state: State, index: int, digest: str, scores: FloatArray, return_advantages: bool
) -> StepResult:
    applied = state.applied(index)
    if applied is None:
        kept = sorted(entry.step for entry in state.recent)
        raise StepOrderError(
            f"step {index} is older than the last applied step {state.last_step} and its "
            f"result is no longer kept (kept steps: {kept}); steps must be sent in order",
            field="step",
        )
    if applied.scores_digest != digest:
        raise StepConflictError(
            f"step {index} was already applied with different scores; a step index can only "
            "be replayed with the scores it was applied with",
            field="scores",
        )
    compact = applied.sample_weights.size == 0  # see _kept_steps: only ever the newest step
    batch = batch_statistics(scores) if return_advantages or compact else None
    if compact and batch is not None:
        data_rule = state.config.build().data
        sample_weights, zero_signal = data_rule.update(
            batch, state.tracks.scale, applied.reward_weights
        )
        applied = replace(applied, sample_weights=sample_weights, zero_signal=zero_signal)
    return _result(state, applied, batch, return_advantages, replayed=True)


def _result(
    state: State,
    applied: AppliedStep,
    batch: BatchStatistics | None,
    return_advantages: bool,
    *,
    replayed: bool,
) -> StepResult:
    advantages = None
    if return_advantages and batch is not None:
        if applied.reward_scale != 1.0:  # every reward scaled (DRW): the scores, as linear
            batch = _scaled(batch, applied.reward_scale)
        advantages = state.config.build().advantages.update(
            batch,
            applied.reward_weights,
            applied.sample_weights,
            _scales_of(applied.stats, state.objectives),
        )
    return StepResult(
        step=applied.step,
        objectives=state.objectives,
        reward_weights=applied.reward_weights,
        sample_weights=applied.sample_weights,
        zero_signal=applied.zero_signal,
        advantages=advantages,
        stats=applied.stats,
        replayed=replayed,
    )


def _scaled(batch: BatchStatistics, factor: float) -> BatchStatistics:
    """The statistics of the batch's scores times ``factor``: a weighted sum of them is the
    rollout's reward times ``factor``, as DRW multiplies its rewards."""
    scores = np.where(batch.valid, batch.filled, np.nan) * factor
    return batch_statistics(scores)


def _scales_of(stats: ObjectiveStats, objectives: tuple[str, ...]) -> FloatArray:
    """(K,) the running scales ``s_k`` a step was applied with (NaN where none yet): kept in
    its stats, so a replayed step's advantages are the ones it was first answered with."""
    return np.array([np.nan if (v := stats[name]["scale"]) is None else v for name in objectives])


def _objective_stats(
    objectives: tuple[str, ...], batch: BatchStatistics, out: StepOutput
) -> ObjectiveStats:
    tracks, signals = out.tracks, out.signals
    columns = {
        "mean": batch.objective_means,
        "level": tracks.level,
        "progress": tracks.progress,
        "noise": signals.noise,
        "reliability": signals.reliability,
        "scale": tracks.scale,
        "utility": signals.utilities,
    }
    # One (7, K) array and one tolist: NaN -> None on plain floats (x != x is NaN's test)
    # costs a fraction of np.isnan per entry, and this runs on every step.
    rows = np.stack(list(columns.values()), axis=1).tolist()
    keys = tuple(columns)
    return {
        name: {key: (None if v != v else v) for key, v in zip(keys, row, strict=True)}
        for name, row in zip(objectives, rows, strict=True)
    }


def _prior_weights(
    prior: Sequence[float] | Mapping[str, float] | FloatArray | None, names: tuple[str, ...]
) -> FloatArray:
    if prior is None:
        return np.full(len(names), 1.0 / len(names))
    if isinstance(prior, Mapping):
        prior = {normal_name(str(name)): weight for name, weight in prior.items()}
        missing = sorted(set(names) - set(prior))
        unknown = sorted(set(prior) - set(names))
        if missing or unknown:
            raise InputError(
                f"prior_weights must name exactly the objectives; missing {missing}, "
                f"unknown {unknown}",
                field="prior_weights",
            )
        prior = [prior[name] for name in names]
    try:
        values = np.asarray(prior, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("prior_weights must be numbers", field="prior_weights") from None
    if values.shape != (len(names),):
        raise InputError(
            f"prior_weights must have one entry per objective ({len(names)}); "
            f"got shape {values.shape}",
            field="prior_weights",
        )
    if not (np.isfinite(values).all() and (values >= 0).all() and (values > 0).any()):
        raise InputError(
            "prior_weights must be finite and >= 0, at least one > 0 (a weight of 0 tracks an "
            "objective without training on it; for a penalty, negate its scores)",
            field="prior_weights",
        )
    # Scaled by the largest first: a sum of values near 1e308 would overflow to inf.
    scaled = values / values.max()
    normalised: FloatArray = scaled / scaled.sum()
    smallest = normalised[values > 0.0].min()
    if smallest < MIN_PRIOR_WEIGHT:
        raise InputError(
            f"prior_weights: every positive weight must be at least {MIN_PRIOR_WEIGHT:g} of the "
            f"total (the smallest is {smallest:.3g}); a weight that small would round to 0",
            field="prior_weights",
        )
    return normalised
