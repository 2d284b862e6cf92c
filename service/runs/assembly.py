"""How observations become a step: the run layer's rules over the request models of
:mod:`spard.service.protocol.streaming` (checking them against a run, encoding them for a store,
grouping them by step, assembling a committed step's (N, G, K) batch, and which steps the
auto-commit rules close)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import orjson

from spard.errors import InputError
from spard.names import normal_name
from spard.service.protocol.errors import PayloadTooLargeError
from spard.service.protocol.streaming import GroupId, Observation, StreamingConfig
from spard.service.runs.store import ObservationItem, ObserveOutcome, ObserveStatus
from spard.types import FloatArray


def due_commits(config: StreamingConfig, outcome: ObserveOutcome) -> list[int]:
    """The steps a run's auto-commit rules close after ``outcome``, in order."""
    due = list(outcome.open_before) if config.commit_on_next_step else []
    threshold = config.commit_after_groups
    if (
        outcome.status is ObserveStatus.OK
        and threshold is not None
        and outcome.complete_groups >= threshold
    ):
        due.append(outcome.step)
    return due


def items_by_step(
    observations: Sequence[Observation], objectives: Sequence[str], config: StreamingConfig
) -> dict[int | None, tuple[list[int], list[ObservationItem]]]:
    """Check observations against a run and encode them, grouped by step (None: the open
    step); each group lists the observations' positions in the request and their store items."""
    by_step: dict[int | None, tuple[list[int], list[ObservationItem]]] = {}
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
            rollout_index=rollout,
            observation_id=observation.observation_id or None,
            scores=encode_scores(observation.scores, objectives, f"{where}.scores"),
        )
        positions, items = by_step.setdefault(observation.step, ([], []))
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
        # + 0.0 turns -0.0 into 0.0: the stored bytes decide duplicate or conflict.
        vector[position] = None if value is None else float(value) + 0.0
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
    observed: Mapping[tuple[str, int], bytes],
    num_objectives: int,
    config: StreamingConfig,
    max_scores: int,
) -> AssembledBatch:
    """Build the (N, G, K) batch from ``(group key, rollout index) -> encoded scores``; a
    batch over ``max_scores`` raises :class:`PayloadTooLargeError` before it is allocated
    (observations refuse it already; this guards steps stored before that check)."""
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
    size = len(kept) * width * num_objectives
    if size > max_scores:
        raise PayloadTooLargeError(
            f"step: its observations make {len(kept)} groups x {width} rollouts x "
            f"{num_objectives} objectives = {size} scores; the limit is {max_scores} "
            "(SPARD_MAX_SCORES)",
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
