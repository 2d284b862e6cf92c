"""What SPARD's reward-side adapters share (OpenRLHF's ``reward_func``, verl's reward manager):
they report each sample's per-objective scores to the service as observations and hand the
trainer one reward, the scores combined with the run's current PAWA weights."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from spard.client import ServiceUnavailableError, SpardClient, SpardConnectionError

logger = logging.getLogger("spard.trainer_adapters")
Row = dict[str, float | None]  # objective -> score, None where it does not apply


def prompt_group_id(prompt: str, label: Any) -> str:
    """The default group id: a digest of the prompt and its label (the same in every worker)."""
    text = f"{prompt}\x00{label!r}".encode()
    return hashlib.blake2b(text, digest_size=12).hexdigest()


def combine(scores: Mapping[str, float | None], weights: Mapping[str, float]) -> float:
    """The weighted mean of the present scores (weights renormalised over them); NaN if none."""
    present = [(weights[name], value) for name, value in scores.items() if value is not None]
    total = sum(weight for weight, _ in present)
    if not present or total <= 0:
        return math.nan
    return sum(weight * value for weight, value in present) / total


def checked_score(name: str, value: Any) -> float | None:
    """A scorer's value as a finite float, or None (not applicable)."""
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"scorer {name!r} returned {number}; return None for 'not applicable'")
    return number


class ProcessClient:
    """One SDK client per process (Ray workers fork and spawn; a client must not be shared)."""

    def __init__(self, factory: Callable[[], SpardClient]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._client: SpardClient | None = None
        self._pid = -1

    def get(self) -> SpardClient:
        """This process's client (made on first use in each process)."""
        if self._client is None or self._pid != os.getpid():
            with self._lock:
                if self._client is None or self._pid != os.getpid():
                    self._client, self._pid = self._factory(), os.getpid()
        return self._client


def report(
    client: SpardClient,
    run_id: str,
    rows: Sequence[Row],
    group_ids: Sequence[str],
    step: int | None,
) -> dict[str, float]:
    """The run's current weights, then the rows observed (one per sample, in ``group_ids``'
    groups) and stored before returning. ``step``: None is the run's open step.

    The weights are read before observing: a step is committed only once every one of its
    observations has arrived, so each sample gets the weights its step was opened with, never
    those of the step its own observation completes."""
    try:
        weights = client.weights(run_id).weights_by_objective()
    except (SpardConnectionError, ServiceUnavailableError) as error:
        # Down, not misconfigured: keep training on the last known (or uniform) weights.
        logger.warning("SPARD unavailable, rewards use the last known weights: %s", error)
        known = client.known_weights(run_id)
        weights = (
            known.weights_by_objective()
            if known is not None
            else {name: 1.0 / len(rows[0]) for name in rows[0]}
        )
    for row, group in zip(rows, group_ids, strict=True):
        client.observe(run_id, group, row, step=step)
    try:
        client.flush()  # concurrent callers' observations travel together (one request)
    except (SpardConnectionError, ServiceUnavailableError) as error:
        # The observations stay buffered and go out when the service is back.
        logger.warning("SPARD unavailable, observations kept for later: %s", error)
    return weights


def logged(value: float | None) -> float:
    """A score for a log: NaN where the objective does not apply."""
    return math.nan if value is None else value
