"""The documents of a run: pure functions from engine values to JSON-ready data.

``run_summary`` is what ``GET /v1/runs/{id}`` returns, ``history_entry`` one entry of
``GET /v1/runs/{id}/history``, ``step_payload`` the body of a step response, and
``run_record`` all that a write stores (built once per write, served as stored).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import numpy as np
import orjson

from spard.engine import StepResult
from spard.service.protocol.documents import (
    CommitResponse,
    HistoryEntry,
    RunSummary,
    SampleWeightSummary,
    StepResponse,
    WeightsResponse,
)
from spard.service.runs.assembly import AssembledBatch
from spard.service.runs.store import RunMeta, RunRecord
from spard.state import State
from spard.types import BoolArray, FloatArray

_SUMMARY_QUANTILES = np.array([0.0, 0.1, 0.5, 0.9, 1.0])


def sample_weight_summary(
    sample_weights: FloatArray, zero_signal: BoolArray
) -> SampleWeightSummary:
    """Quantiles of the data weights over informative prompts, and the zero-signal count."""
    weights = np.sort(sample_weights[~zero_signal])
    quantiles: list[float | None] = [None] * 5
    if weights.size:
        # np.quantile's default (linear) rule on one sort: np.quantile itself costs ~10x more
        # per step, and this runs on every step.
        positions = _SUMMARY_QUANTILES * (weights.size - 1)
        lower = np.floor(positions).astype(np.intp)
        upper = np.minimum(lower + 1, weights.size - 1)
        fraction = positions - lower
        low, high = weights[lower], weights[upper]
        quantiles = (low + (high - low) * fraction).tolist()
    return {
        "prompts": int(sample_weights.size),
        "zero_signal": int(zero_signal.sum()),
        "min": quantiles[0],
        "p10": quantiles[1],
        "p50": quantiles[2],
        "p90": quantiles[3],
        "max": quantiles[4],
    }


def run_summary(
    run_id: str,
    state: State,
    *,
    created_at: float,
    updated_at: float,
    streaming: dict[str, Any],
    weights: SampleWeightSummary | None = None,
) -> RunSummary:
    """A run's config, position, current weights and latest per-objective stats.

    ``weights``: the last step's :func:`sample_weight_summary`, when the caller has it already;
    ``streaming``: the run's streaming settings, as their JSON dump.
    """
    names = state.objectives
    last = state.recent[-1] if state.recent else None
    if weights is None and last is not None:
        weights = sample_weight_summary(last.sample_weights, last.zero_signal)
    return {
        "run_id": run_id,
        "objectives": list(names),
        "strategy": state.config.strategy,
        "config": state.config.model_dump(mode="json"),
        "prior_weights": dict(zip(names, state.prior_weights.tolist(), strict=True)),
        "reward_weights": dict(zip(names, state.reward_weights.tolist(), strict=True)),
        "last_step": state.last_step,
        "steps_applied": state.steps_applied,
        "stats": None if last is None else last.stats,
        "last_sample_weights": weights,
        "created_at": created_at,
        "updated_at": updated_at,
        "streaming": streaming,
    }


def history_entry(
    result: StepResult, weights: SampleWeightSummary, applied_at: float
) -> HistoryEntry:
    """One applied step as the history endpoint lists it."""
    return {
        "step": result.step,
        "reward_weights": result.weights_by_objective(),
        "stats": result.stats,
        "sample_weights": weights,
        "applied_at": applied_at,
    }


def step_payload(
    run_id: str, result: StepResult, prompt_ids: list[str | int] | None
) -> StepResponse:
    """The body of a step response; arrays stay numpy (orjson serialises them directly)."""
    return {
        "run_id": run_id,
        "step": result.step,
        "replayed": result.replayed,
        "reward_weights": result.weights_by_objective(),
        "sample_weights": result.sample_weights,
        "zero_signal": result.zero_signal,
        "advantages": result.advantages,
        "stats": result.stats,
        "prompt_ids": prompt_ids,
    }


def commit_payload(
    run_id: str, result: StepResult, batch: AssembledBatch, committed_before: list[int]
) -> CommitResponse:
    """The body of a commit response: a step response whose ``prompt_ids`` are the batch's
    group ids, plus what the assembly left out and the earlier steps committed first."""
    return {
        **step_payload(run_id, result, batch.group_ids),
        "dropped_groups": batch.dropped_groups,
        "observations": batch.observations,
        "committed_before": committed_before,
    }


def run_record(
    run_id: str,
    state: State,
    meta: RunMeta,
    *,
    created_at: float,
    weights: SampleWeightSummary | None = None,
    etag: str | None = None,
) -> RunRecord:
    """What a write of ``state`` stores: the state, the summary and weights documents, and a
    new write token (``etag``, to keep one, for an upgrade in place)."""
    summary = run_summary(
        run_id,
        state,
        created_at=created_at,
        updated_at=time.time(),
        weights=weights,
        streaming=meta.streaming.model_dump(mode="json"),
    )
    etag = etag if etag is not None else secrets.token_hex(12)
    current: WeightsResponse = {
        "run_id": run_id,
        "etag": etag,
        "step": state.last_step,
        "reward_weights": summary["reward_weights"],
    }
    return RunRecord(
        state=state.to_json(),
        summary=orjson.dumps(summary),
        etag=etag,
        last_step=state.last_step,
        weights=orjson.dumps(current),
    )


def created_at_of(summary: bytes) -> float:
    """When the run was created, from its summary document."""
    return float(orjson.loads(summary)["created_at"])
