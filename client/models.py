"""What the client returns: numpy in, numpy out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from spard.service.protocol.documents import CommitResponse, RunSummary, StepResponse

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class RunInfo:
    """A run as the service describes it (``GET /v1/runs/{id}``)."""

    run_id: str
    objectives: list[str]
    strategy: str
    config: dict[str, Any]
    reward_weights: FloatArray  # (K,) the weights the next step will get
    prior_weights: FloatArray  # (K,)
    last_step: int | None
    steps_applied: int
    stats: dict[str, dict[str, float | None]] | None
    raw: RunSummary

    @classmethod
    def from_json(cls, data: RunSummary) -> RunInfo:
        names = list(data["objectives"])
        return cls(
            run_id=data["run_id"],
            objectives=names,
            strategy=data["strategy"],
            config=data["config"],
            reward_weights=np.array([data["reward_weights"][n] for n in names]),
            prior_weights=np.array([data["prior_weights"][n] for n in names]),
            last_step=data["last_step"],
            steps_applied=data["steps_applied"],
            stats=data["stats"],
            raw=data,
        )


@dataclass(frozen=True)
class StepOutcome:
    """The answer to one step.

    ``reward_weights`` (K,) in ``objectives`` order; ``sample_weights`` / ``zero_signal`` (N,);
    ``advantages`` (N, G) when asked for. ``held`` is True when the service was down and the
    ``hold`` fallback answered with the last known weights and uniform sample weights.
    """

    run_id: str
    step: int | None
    objectives: list[str]
    reward_weights: FloatArray
    sample_weights: FloatArray
    zero_signal: BoolArray
    advantages: FloatArray | None
    stats: dict[str, dict[str, float | None]] | None
    replayed: bool
    held: bool = False

    def weights_by_objective(self) -> dict[str, float]:
        """The reward weights keyed by objective name."""
        return dict(zip(self.objectives, self.reward_weights.tolist(), strict=True))

    @classmethod
    def from_json(cls, data: StepResponse, objectives: list[str] | None) -> StepOutcome:
        names = objectives if objectives is not None else list(data["reward_weights"])
        advantages = data["advantages"]
        return cls(
            run_id=data["run_id"],
            step=data["step"],
            objectives=names,
            reward_weights=np.array([data["reward_weights"][n] for n in names]),
            sample_weights=np.asarray(data["sample_weights"], dtype=np.float64),
            zero_signal=np.asarray(data["zero_signal"], dtype=np.bool_),
            advantages=None if advantages is None else np.asarray(advantages, dtype=np.float64),
            stats=data["stats"],
            replayed=data["replayed"],
        )


@dataclass(frozen=True)
class CommitOutcome(StepOutcome):
    """A step committed from streamed observations: ``group_ids`` (N,) are the batch's rows
    (``sample_weights[i]`` belongs to ``group_ids[i]``)."""

    group_ids: list[str | int] | None = None
    dropped_groups: list[str | int] | None = None
    observations: int = 0
    committed_before: list[int] | None = None

    @classmethod
    def from_commit_json(cls, data: CommitResponse, objectives: list[str] | None) -> CommitOutcome:
        outcome = StepOutcome.from_json(data, objectives)
        return cls(
            **{name: getattr(outcome, name) for name in StepOutcome.__dataclass_fields__},
            group_ids=data["prompt_ids"],
            dropped_groups=data["dropped_groups"],
            observations=data["observations"],
            committed_before=data["committed_before"],
        )
