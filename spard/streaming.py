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

Everything here is pure; :mod:`spard.ledger` holds the in-memory bookkeeping that the Redis
store mirrors in Lua.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)

from spard.config import MAX_STEP, input_error
from spard.errors import InputError
from spard.ledger import ObservationItem, ObserveOutcome
from spard.names import OBJECTIVE_NAME_PATTERN, normal_name
from spard.types import FloatArray

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


def due_commits(config: StreamingConfig, outcome: ObserveOutcome) -> list[int]:
    """The steps a run's auto-commit rules close after ``outcome``, in order."""
    due = list(outcome.open_before) if config.commit_on_next_step else []
    threshold = config.commit_after_groups
    if outcome.status == "ok" and threshold is not None and outcome.complete_groups >= threshold:
        due.append(outcome.step)
    return due


def streaming_config(data: Mapping[str, object] | None) -> StreamingConfig:
    """Validate a ``streaming`` request field; :class:`InputError` names the bad key."""
    try:
        return StreamingConfig.model_validate(dict(data or {}))
    except ValidationError as exc:
        raise input_error(exc, "streaming") from exc


ObjectiveName = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=OBJECTIVE_NAME_PATTERN)
]
GroupIdText = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^|\x00-\x1f\x7f]+$")
]
ObservationId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]


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
    scores: dict[ObjectiveName, float | None] = Field(
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


def items_by_step(
    observations: Sequence[Observation], objectives: Sequence[str], config: StreamingConfig
) -> dict[int, tuple[list[int], list[ObservationItem]]]:
    """Check observations against a run and encode them, grouped by step (-1: the open step);
    each group lists the observations' positions in the request and their store items."""
    by_step: dict[int, tuple[list[int], list[ObservationItem]]] = {}
    for position, observation in enumerate(observations):
        where = f"observations.{position}"
        rollout = observation.rollout_index
        if config.group_size is not None and rollout is not None and rollout >= config.group_size:
            raise InputError(
                f"{where}.rollout_index: {rollout} is not below the run's group_size "
                f"{config.group_size}",
                field=f"{where}.rollout_index",
            )
        item = ObservationItem(
            group=group_key(observation.group_id),
            rollout_index=-1 if rollout is None else rollout,
            observation_id=observation.observation_id or "",
            scores=encode_scores(observation.scores, objectives, f"{where}.scores"),
        )
        step = -1 if observation.step is None else observation.step
        positions, items = by_step.setdefault(step, ([], []))
        positions.append(position)
        items.append(item)
    return by_step


def group_key(group_id: GroupId) -> str:
    """The stored form of a group id (type-tagged, so 7 and "7" stay different groups)."""
    return f"i:{group_id}" if isinstance(group_id, int) else f"s:{group_id}"


def group_id_of(key: str) -> GroupId:
    """Inverse of :func:`group_key`."""
    return int(key[2:]) if key.startswith("i:") else key[2:]


def _group_order(key: str) -> tuple[int, int, str]:
    return (0, int(key[2:]), "") if key.startswith("i:") else (1, 0, key[2:])


def encode_scores(
    scores: Mapping[str, float | None], objectives: Sequence[str], where: str
) -> bytes:
    """One observation's scores as the canonical stored bytes: a JSON list in objective order,
    null for missing. Unknown objective names raise :class:`InputError` naming the key."""
    index = {name: k for k, name in enumerate(objectives)}
    vector: list[float | None] = [None] * len(objectives)
    for name, value in scores.items():
        position = index.get(normal_name(name))
        if position is None:
            raise InputError(
                f"{where}.{name}: unknown objective; the run has {list(objectives)}",
                field=f"{where}.{name}",
            )
        vector[position] = None if value is None else float(value)
    return orjson.dumps(vector)


@dataclass(frozen=True)
class AssembledBatch:
    """A committed step's batch: ``scores`` (N, G, K), NaN = missing, rows in ``group_ids``
    order; ``dropped_groups`` were left out (``incomplete_groups="drop"``)."""

    group_ids: list[GroupId]
    scores: FloatArray
    dropped_groups: list[GroupId]
    observations: int


def assemble(
    observed: Mapping[tuple[str, int], bytes], num_objectives: int, config: StreamingConfig
) -> AssembledBatch:
    """Build the (N, G, K) batch from ``(group key, rollout index) -> encoded scores``."""
    if not observed:
        raise InputError("no observations arrived for this step", field="step")
    keys = sorted({group for group, _ in observed}, key=_group_order)
    counts = dict.fromkeys(keys, 0)
    for group, _ in observed:
        counts[group] += 1
    width = config.group_size or 1 + max(rollout for _, rollout in observed)
    dropped = [k for k in keys if config.incomplete_groups == "drop" and counts[k] < width]
    kept = [k for k in keys if k not in set(dropped)]
    if not kept:
        raise InputError(
            f"every group of this step has fewer than group_size={width} rollouts "
            "(incomplete_groups='drop')",
            field="step",
        )
    row = {k: n for n, k in enumerate(kept)}
    entries = [(row[g], r, v) for (g, r), v in observed.items() if g in row]
    rows, columns, values = zip(*entries, strict=True)
    decoded = orjson.loads(b"[" + b",".join(values) + b"]")
    scores = np.full((len(kept), width, num_objectives), np.nan)
    scores[np.asarray(rows), np.asarray(columns)] = np.array(decoded, dtype=np.float64)
    return AssembledBatch(
        group_ids=[group_id_of(k) for k in kept],
        scores=scores,
        dropped_groups=[group_id_of(k) for k in dropped],
        observations=len(observed),
    )
