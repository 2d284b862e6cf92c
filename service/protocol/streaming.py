"""Streaming observations: scores that arrive one rollout at a time, assembled into a batch.

Reward workers (OpenRLHF's ``reward_func``, verl's reward loop) score one sample at a time and
cannot send an (N, G, K) batch. They send *observations* ``(step, group_id, rollout_index,
scores)``; a *commit* closes the step and turns what arrived into the batch the engine steps on.

The rules, shared by the service's stores and the client's local mode:

- An observation is idempotent per ``(step, group_id, rollout_index)``: the same scores again are
  a duplicate, different scores a conflict (the first ones stay).
- ``rollout_index`` may be left out: the next free index of the group is assigned in arrival
  order; an ``observation_id`` makes that idempotent too (a retried request is a duplicate).
- ``step`` may be left out: the run's open step takes it, except that an ``observation_id``
  already stored in an earlier kept step makes it a duplicate (a retry must not count twice).
- Groups are ordered by id: integer ids numerically, then string ids in code-point order.
- ``G`` is ``group_size`` when configured, else the largest rollout index seen plus one.
  A group with fewer than ``G`` rollouts is padded with missing scores (``incomplete_groups =
  "pad"``, the default: its observed rollouts still count) or left out of the batch (``"drop"``).
- Committing closes ("seals") the step first: an observation that arrives for a sealed or
  already applied step is *late* and is reported, never silently merged into a later step.

Everything here is pure; :mod:`spard.service.runs.store.ledger` holds the in-memory bookkeeping
that the Redis store mirrors in Lua.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)

from spard.config import MAX_STEP, input_error
from spard.names import OBJECTIVE_NAME_PATTERN
from spard.scores import MAX_SCORE

GroupId = int | str
MAX_GROUP_SIZE = 4096


class StreamingConfig(BaseModel):
    """How a run assembles streamed observations into steps (fixed at run creation)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    group_size: int | None = Field(
        None, ge=2, le=MAX_GROUP_SIZE, description="rollouts per group (G); None: inferred"
    )
    incomplete_groups: Literal["pad", "drop"] = Field(
        "pad", description="groups with fewer than G rollouts: pad with missing, or drop"
    )
    commit_after_groups: int | None = Field(
        None, ge=1, description="commit a step once this many groups are complete"
    )
    commit_on_next_step: bool = Field(
        False, description="commit open steps when an observation for a later step arrives"
    )

    @model_validator(mode="after")
    def _needs_group_size(self) -> StreamingConfig:
        if self.commit_after_groups is not None and self.group_size is None:
            raise ValueError("commit_after_groups needs group_size (when is a group complete?)")
        if self.incomplete_groups == "drop" and self.group_size is None:
            raise ValueError("incomplete_groups='drop' needs group_size")
        return self


def streaming_config(data: Mapping[str, object] | None) -> StreamingConfig:
    """Validate a ``streaming`` request field; :class:`InputError` names the bad key."""
    try:
        return StreamingConfig.model_validate(dict(data or {}))
    except ValidationError as exc:
        raise input_error(exc, "streaming", list(StreamingConfig.model_fields)) from exc


ObjectiveName = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=OBJECTIVE_NAME_PATTERN)
]
GroupIdText = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^|\x00-\x1f\x7f]+$")
]
ObservationId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]


def _within_score_bounds(value: float) -> float:
    if abs(value) > MAX_SCORE:
        raise ValueError(f"scores must lie within +/-{MAX_SCORE:g}")
    return value


# What a step's scores may hold, checked as a step checks them (spard.scores.parse_scores): a
# value the step would refuse, stored, would make its step uncommittable for good. Strict: no
# true/false, no numeric strings (an int is a number).
Score = Annotated[
    float,
    Strict(),
    AfterValidator(_within_score_bounds),
    Field(json_schema_extra={"minimum": -MAX_SCORE, "maximum": MAX_SCORE}),
]


class Observation(BaseModel):
    """One rollout's scores, from any reward worker."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    step: StrictInt | None = Field(
        None, ge=0, le=MAX_STEP, description="the step it belongs to; absent: the run's open step"
    )
    group_id: StrictInt | GroupIdText = Field(
        description="the prompt (group); groups are ordered by id in the committed batch"
    )
    rollout_index: StrictInt | None = Field(
        None, ge=0, lt=MAX_GROUP_SIZE, description="absent: the group's next free index"
    )
    observation_id: ObservationId | None = Field(
        None,
        description="unique per observation within a group: makes a resend a duplicate, not a "
        "new rollout (with no rollout_index) nor an observation of the next step (with no step)",
    )
    scores: dict[ObjectiveName, Score | None] = Field(
        # pydantic documents the key pattern as patternProperties: without this, the schema
        # would allow keys the validation refuses.
        json_schema_extra={"additionalProperties": False},
        description="objective -> score; absent or null = missing",
    )


class ObservationBatch(BaseModel):
    """Body of ``POST /v1/runs/{run_id}/observations`` (a single observation is accepted too)."""

    model_config = ConfigDict(extra="forbid")

    observations: list[Observation] = Field(min_length=1)


def parse_observations(data: Any) -> list[Observation]:
    """A decoded JSON body (one observation, or ``{"observations": [...]}``) as observations;
    :class:`InputError` names the field (``observations.<i>.<key>``)."""
    single = not (isinstance(data, dict) and "observations" in data)
    try:
        if single:
            return [Observation.model_validate(data)]
        return ObservationBatch.model_validate(data).observations
    except ValidationError as exc:
        raise input_error(exc, "observations.0" if single else "") from None
