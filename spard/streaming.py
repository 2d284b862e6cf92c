"""Streaming observations: scores that arrive one rollout at a time, assembled into a batch.

Reward workers (OpenRLHF's ``reward_func``, verl's reward loop) score one sample at a time and
cannot send an (N, G, K) batch. They send *observations* ``(step, group_id, rollout_index,
scores)``; a *commit* closes the step and turns what arrived into the batch the engine steps on.

The rules, shared by the service's stores and the client's local mode:

- An observation is idempotent per ``(step, group_id, rollout_index)``: the same scores again are
  a duplicate, different scores a conflict (the first ones stay).
- ``rollout_index`` may be left out: the next free index of the group is assigned in arrival
  order; an ``observation_id`` makes that idempotent too (a retried request is a duplicate).
- Groups are ordered by id: integer ids numerically, then string ids in code-point order.
- ``G`` is ``group_size`` when configured, else the largest rollout index seen plus one.
  A group with fewer than ``G`` rollouts is padded with missing scores (``incomplete_groups =
  "pad"``, the default: its observed rollouts still count) or left out of the batch (``"drop"``).
- Committing closes ("seals") the step first: an observation that arrives for a sealed or
  already applied step is *late* and is reported, never silently merged into a later step.

Everything here is pure; :class:`ObservationLedger` is the in-memory bookkeeping that the
Redis store mirrors in Lua.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from spard.config import input_error
from spard.errors import InputError
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


def streaming_config(data: Mapping[str, object] | None) -> StreamingConfig:
    """Validate a ``streaming`` request field; :class:`InputError` names the bad key."""
    try:
        return StreamingConfig.model_validate(dict(data or {}))
    except ValidationError as exc:
        raise input_error(exc, "streaming") from exc


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
        position = index.get(name)
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


@dataclass(frozen=True)
class ObservationItem:
    """One observation as a store takes it (already validated and encoded)."""

    group: str  # group_key(group_id)
    rollout_index: int  # -1: assign the next free index
    observation_id: str  # "" when absent
    scores: bytes  # encode_scores(...)


@dataclass(frozen=True)
class ObserveOutcome:
    """What a store did with the observations of one step.

    ``status``: "ok"; "late" (the step is sealed or applied: nothing stored); "missing" (no
    such run); "reload" (the run was recreated: the caller's metadata is stale).
    ``conflicts`` / ``overflow`` index the observations passed in; ``open_before`` lists
    steps before ``step`` holding observations that are not applied yet.
    """

    status: Literal["ok", "late", "missing", "reload"]
    step: int = -1
    accepted: int = 0
    duplicates: int = 0
    complete_groups: int = 0
    conflicts: list[int] = field(default_factory=list)
    overflow: list[int] = field(default_factory=list)
    open_before: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class SealedStep:
    """A step closed for commit: what arrived, and the open steps before it."""

    observed: dict[tuple[str, int], bytes]
    last_step: int | None
    open_before: list[int]


def parse_observation_field(name: str) -> tuple[str, int] | None:
    """``o|<group>|<rollout>`` -> (group, rollout); None for bookkeeping fields."""
    if not name.startswith("o|"):
        return None
    group, _, rollout = name[2:].rpartition("|")
    return group, int(rollout)


class _StepBook:
    def __init__(self) -> None:
        self.observed: dict[tuple[str, int], bytes] = {}
        self.counts: dict[str, int] = {}
        self.by_id: dict[tuple[str, str], int] = {}
        self.complete = 0
        self.sealed = False


class ObservationLedger:
    """The observations of one run, in memory: the reference semantics of the Redis script."""

    def __init__(self) -> None:
        self._steps: dict[int, _StepBook] = {}

    def observe(
        self, step: int, items: Sequence[ObservationItem], last_step: int | None, group_size: int
    ) -> ObserveOutcome:
        """Record ``items`` for ``step`` (-1: the open step); ``group_size`` 0 when unset."""
        last = -1 if last_step is None else last_step
        if step < 0:
            step = last + 1
            while step in self._steps and self._steps[step].sealed:
                step += 1
        book = self._steps.get(step)
        if step <= last or (book is not None and book.sealed):
            return ObserveOutcome("late", step=step)
        book = self._steps.setdefault(step, _StepBook())
        accepted = duplicates = 0
        conflicts: list[int] = []
        overflow: list[int] = []
        for position, item in enumerate(items):
            rollout = item.rollout_index
            if rollout < 0:
                known = book.by_id.get((item.group, item.observation_id))
                if item.observation_id and known is not None:
                    rollout = known
                else:
                    rollout = book.counts.get(item.group, 0)
                    while (item.group, rollout) in book.observed:
                        rollout += 1
            previous = book.observed.get((item.group, rollout))
            if previous is None:
                if group_size and rollout >= group_size:
                    overflow.append(position)
                    continue
                book.observed[(item.group, rollout)] = item.scores
                if item.rollout_index < 0 and item.observation_id:
                    book.by_id[(item.group, item.observation_id)] = rollout
                book.counts[item.group] = book.counts.get(item.group, 0) + 1
                accepted += 1
                if group_size and book.counts[item.group] == group_size:
                    book.complete += 1
            elif previous == item.scores:
                duplicates += 1
            else:
                conflicts.append(position)
        open_before = sorted(s for s in self._steps if last < s < step)
        return ObserveOutcome(
            "ok", step, accepted, duplicates, book.complete, conflicts, overflow, open_before
        )

    def seal(self, step: int, last_step: int | None, retention: int) -> SealedStep:
        """Close ``step`` and return what arrived; forget steps older than the retention."""
        last = -1 if last_step is None else last_step
        book = self._steps.get(step)
        if book is not None:
            book.sealed = True
        for old in [s for s in self._steps if s <= last - retention]:
            del self._steps[old]
        open_before = sorted(s for s in self._steps if last < s < step)
        return SealedStep(dict(book.observed) if book else {}, last_step, open_before)

    def drop_after(self, last_step: int | None) -> None:
        """Forget the observations of steps after ``last_step`` (a state import rewound)."""
        last = -1 if last_step is None else last_step
        for step in [s for s in self._steps if s > last]:
            del self._steps[step]
