"""Streaming for the clients (no I/O): the observation buffer, report and weight cache.

Reward workers call ``observe`` once per sample from many threads; the buffer batches those
into few requests. Observations without a rollout index or a step get an ``observation_id``
here, so a request retried after a lost answer is a duplicate on the service, not a new
rollout, even when its step was committed in between.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spard.client.models import FloatArray
from spard.service.protocol.documents import ObserveResponse, WeightsResponse


def observation_body(
    group_id: int | str,
    scores: Mapping[str, float | None],
    step: int | None,
    rollout_index: int | None,
    observation_id: str | None,
) -> dict[str, Any]:
    """One observation as the API takes it; NaN and None are missing, inf is refused."""
    values: dict[str, float | None] = {}
    for name, value in scores.items():
        number = None if value is None else float(value)
        if number is not None and math.isinf(number):
            raise ValueError(f"scores[{name!r}] is {number}; use None (or NaN) for missing")
        values[name] = None if number is None or math.isnan(number) else number
    body: dict[str, Any] = {"group_id": group_id, "scores": values}
    if step is not None:
        body["step"] = step
    if rollout_index is not None:
        body["rollout_index"] = rollout_index
    # Without an index or a step the service places the observation itself, so a resend
    # needs an id to be recognised (in its step, or in an earlier one the step moved past).
    if observation_id or rollout_index is None or step is None:
        body["observation_id"] = observation_id or secrets.token_hex(12)
    return body


@dataclass
class ObserveSummary:
    """What the service did with flushed observations (the observations themselves for the
    ones that were not stored)."""

    accepted: int = 0
    duplicates: int = 0
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    overflow: list[dict[str, Any]] = field(default_factory=list)
    late: list[dict[str, Any]] = field(default_factory=list)
    committed: list[tuple[str, int]] = field(default_factory=list)

    def add(self, run_id: str, sent: list[dict[str, Any]], report: ObserveResponse) -> None:
        self.accepted += report["accepted"]
        self.duplicates += report["duplicates"]
        self.conflicts += [sent[i] for i in report["conflicts"]]
        self.overflow += [sent[i] for i in report["overflow"]]
        self.late += [sent[i] for i in report["late"]]
        self.committed += [(run_id, step) for step in report["committed"]]

    def merge(self, other: ObserveSummary) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.conflicts += other.conflicts
        self.overflow += other.overflow
        self.late += other.late
        self.committed += other.committed

    def problems(self) -> str | None:
        """A one-line warning when some observations were not stored, else None."""
        counts = [(len(self.late), "late"), (len(self.conflicts), "conflicting")]
        counts.append((len(self.overflow), "beyond group_size"))
        parts = [f"{n} {what}" for n, what in counts if n]
        return f"observations not stored: {', '.join(parts)}" if parts else None


class ObservationBuffer:
    """Thread-safe queue of observations per run, taken out in request-sized batches."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._count = 0

    def add(self, run_id: str, body: dict[str, Any]) -> int:
        with self._lock:
            self._pending.setdefault(run_id, []).append(body)
            self._count += 1
            return self._count

    def take(self, run_id: str | None = None) -> list[tuple[str, list[dict[str, Any]]]]:
        """Everything pending (for one run, or all), as (run, batch) pairs."""
        with self._lock:
            runs = [run_id] if run_id is not None else list(self._pending)
            batches = []
            for run in runs:
                items = self._pending.pop(run, [])
                self._count -= len(items)
                for start in range(0, len(items), self.batch_size):
                    batches.append((run, items[start : start + self.batch_size]))
            return batches

    def restore(self, run_id: str, items: list[dict[str, Any]]) -> None:
        """Put back a batch that could not be sent (sending it again is idempotent)."""
        with self._lock:
            self._pending[run_id] = items + self._pending.get(run_id, [])
            self._count += len(items)

    def __len__(self) -> int:
        return self._count


@dataclass(frozen=True)
class RunWeights:
    """A run's current reward weights, as ``GET .../weights`` returned them."""

    run_id: str
    step: int | None
    objectives: list[str]
    reward_weights: FloatArray  # (K,)
    etag: str
    fetched_at: float

    def weights_by_objective(self) -> dict[str, float]:
        return dict(zip(self.objectives, self.reward_weights.tolist(), strict=True))

    @classmethod
    def from_json(cls, data: WeightsResponse) -> RunWeights:
        names = list(data["reward_weights"])
        weights = np.array([data["reward_weights"][n] for n in names], dtype=np.float64)
        return cls(data["run_id"], data["step"], names, weights, data["etag"], time.monotonic())

    def fresh(self, max_age_s: float) -> bool:
        return time.monotonic() - self.fetched_at < max_age_s

    @staticmethod
    def now() -> float:
        return time.monotonic()
