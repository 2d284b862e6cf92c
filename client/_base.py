"""Everything the sync and async clients share: their state and every API flow, with no I/O.

A flow is a generator that yields the calls to send and receives their JSON payloads (or,
thrown into it, their errors), then returns the result: ``create_run`` with its conflict
recovery, ``history``'s pagination, ``commit``'s flush-then-commit are each written once, here.
:class:`~spard.client.SpardClient` and :class:`~spard.client.AsyncSpardClient` only drive them
(``_run``), each with its own I/O, as httpx does.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Generator, Mapping
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np

import spard
from spard.client._core import Call, ClientCore, Fallback, encode_json, idempotency
from spard.client._streaming import ObservationBuffer, ObserveSummary, RunWeights, observation_body
from spard.client.errors import InvalidRequestError, SpardClientError, SpardServiceError
from spard.client.models import CommitOutcome, RunInfo, StepOutcome
from spard.scores import parse_scores
from spard.service.protocol.documents import (
    CommitResponse,
    HistoryEntry,
    HistoryPage,
    ObserveResponse,
    RunSummary,
    StepResponse,
    WeightsResponse,
)
from spard.service.protocol.wire import OCTET_STREAM, encode_step

logger = logging.getLogger("spard.client")
T = TypeVar("T")
Flow = Generator[Call, Any, T]
"""Yields calls, receives each one's payload (or has its error thrown in), returns ``T``.
Each flow names the document type it receives
(:mod:`spard.service.protocol.documents`, the service's own), so mypy checks every key read."""
Batches = list[tuple[str, list[dict[str, Any]]]]


class BaseClient:
    """State and flows of both clients (see the module docstring)."""

    def __init__(
        self,
        *,
        retries: int,
        backoff_s: float,
        fallback: Fallback,
        binary_threshold: int,
        observe_batch_size: int,
        flush_interval_s: float,
        weights_max_age_s: float,
    ) -> None:
        self._core = ClientCore(retries, backoff_s, fallback, binary_threshold)
        self._buffer = ObservationBuffer(observe_batch_size)
        # Past this many buffered observations, observe() sends them itself before returning.
        self._max_buffered = max(8 * observe_batch_size, 8192)
        self._flush_interval_s = flush_interval_s
        self._weights_max_age_s = weights_max_age_s
        self._weights: dict[str, RunWeights] = {}
        self._summary = ObserveSummary()
        self._summary_lock = threading.Lock()
        self._flush_error: BaseException | None = None

    # Runs and steps -------------------------------------------------------------------------
    def _create_flow(
        self,
        objectives: list[str],
        strategy: str | None,
        config: dict[str, Any] | None,
        prior_weights: Any,
        run_id: str | None,
        streaming: dict[str, Any] | None,
    ) -> Flow[RunInfo]:
        # The id is chosen here, so that a retried create is recognisable by the service.
        body = {
            "run_id": run_id or f"run-{secrets.token_hex(8)}",
            "objectives": list(objectives),
            "config": config or {},
        }
        if strategy is not None:
            body["strategy"] = strategy
        if streaming:
            body["streaming"] = streaming
        if prior_weights is not None:
            body["prior_weights"] = _prior_weights_document(prior_weights)
        # A retry whose first attempt went through gets the run back: same Idempotency-Key.
        data: RunSummary = yield Call("POST", "/v1/runs", json=body, headers=idempotency())
        return self._core.remember(RunInfo.from_json(data))

    def _get_run_flow(self, run_id: str) -> Flow[RunInfo]:
        data: RunSummary = yield Call("GET", f"/v1/runs/{run_id}")
        return self._core.remember(RunInfo.from_json(data))

    def _step_flow(
        self,
        run_id: str,
        scores: Any,
        step: int | None,
        return_advantages: bool,
        prompt_ids: list[str | int] | None,
    ) -> Flow[StepOutcome]:
        try:
            # The service's own check, here: JSON cannot carry +/-inf (the service would only
            # see an unparsable body), and a mistake is cheaper to report before sending.
            array = parse_scores(scores, None)
        except spard.InputError as error:
            raise InvalidRequestError(422, error.message, error.field) from None
        if array.size >= self._core.binary_threshold and array.ndim == 3 and prompt_ids is None:
            content = encode_step(array, step, return_advantages=return_advantages)
            media_type = OCTET_STREAM
        else:
            body: dict[str, Any] = {"scores": array, "return_advantages": return_advantages}
            if step is not None:
                body["step"] = step
            if prompt_ids is not None:
                body["prompt_ids"] = list(prompt_ids)
            # The array's NaN (missing) goes as null; the scores are finite otherwise.
            content = encode_json(body)
            media_type = "application/json"
        headers = {"content-type": media_type, **idempotency()}
        call = Call("POST", f"/v1/runs/{run_id}/steps", content=content, headers=headers)
        try:
            data: StepResponse = yield call
        except SpardClientError as error:
            return self._core.hold(run_id, scores, step, return_advantages, error)
        return self._core.step_outcome(run_id, data)

    @staticmethod
    def _history_flow(
        run_id: str, after: int | None, limit: int | None
    ) -> Flow[list[HistoryEntry]]:
        entries: list[HistoryEntry] = []
        while limit is None or len(entries) < limit:
            params: dict[str, Any] = {
                "limit": 1000 if limit is None else min(1000, limit - len(entries))
            }
            if after is not None:
                params["after"] = after
            page: HistoryPage = yield Call("GET", f"/v1/runs/{run_id}/history", params=params)
            entries += page["entries"]
            after = page["next_after"]
            if after is None:
                break
        return entries

    @staticmethod
    def _export_flow(run_id: str) -> Flow[dict[str, Any]]:
        state: dict[str, Any] = yield Call("GET", f"/v1/runs/{run_id}/state")
        return state

    def _import_flow(self, run_id: str, state: dict[str, Any]) -> Flow[RunInfo]:
        data: RunSummary = yield Call("PUT", f"/v1/runs/{run_id}/state", json=state)
        return self._core.remember(RunInfo.from_json(data))

    @staticmethod
    def _delete_flow(run_id: str) -> Flow[None]:
        yield Call("DELETE", f"/v1/runs/{run_id}")

    # Observations ---------------------------------------------------------------------------
    def _buffer_observation(
        self,
        run_id: str,
        group_id: int | str,
        scores: Mapping[str, float | None],
        step: int | None,
        rollout_index: int | None,
        observation_id: str | None,
    ) -> bool:
        """Buffer one observation; True when a batch is full and should go now."""
        self._raise_flush_error()
        body = observation_body(group_id, scores, step, rollout_index, observation_id)
        return self._buffer.add(run_id, body) >= self._buffer.batch_size

    def _batches_flow(self, batches: Batches) -> Flow[ObserveSummary]:
        """Send batches in order; on failure the unsent ones (and a batch the service may not
        have stored: a 5xx or a lost connection) go back into the buffer, in order."""
        summary = ObserveSummary()
        for position, (run, batch) in enumerate(batches):
            try:
                report: ObserveResponse = yield Call(
                    "POST", f"/v1/runs/{run}/observations", json={"observations": batch}
                )
            except SpardServiceError as error:
                kept = position if error.status_code >= 500 else position + 1
                self._restore(batches[kept:])
                raise
            except BaseException:
                self._restore(batches[position:])
                raise
            summary.add(run, batch, report)
        self._record(summary)
        return summary

    def _commit_flow(self, run_id: str, step: int, return_advantages: bool) -> Flow[CommitOutcome]:
        body = {"return_advantages": return_advantages}
        data: CommitResponse = yield Call(
            "POST", f"/v1/runs/{run_id}/steps/{step}/commit", json=body
        )
        return self._core.commit_outcome(run_id, data)

    def _weights_flow(self, run_id: str, max_age_s: float | None) -> Flow[RunWeights]:
        cached = self._weights.get(run_id)
        age = self._weights_max_age_s if max_age_s is None else max_age_s
        if cached is not None and cached.fresh(age):
            return cached
        headers = {"if-none-match": f'"{cached.etag}"'} if cached else {}
        data: WeightsResponse | None = yield Call(
            "GET", f"/v1/runs/{run_id}/weights", headers=headers
        )
        if data is None:  # 304: unchanged since the cached etag
            assert cached is not None
            current = replace(cached, fetched_at=RunWeights.now())
        else:
            current = RunWeights.from_json(data)
        self._weights[run_id] = current
        self._core.remember_weights(run_id, current.objectives, current.reward_weights)
        return current

    def known_weights(self, run_id: str) -> RunWeights | None:
        """The last weights fetched for ``run_id`` (however old), without a request."""
        return self._weights.get(run_id)

    def _raise_flush_error(self) -> None:
        error, self._flush_error = self._flush_error, None
        if error is not None:
            raise error

    def _record(self, summary: ObserveSummary) -> None:
        problems = summary.problems()
        if problems:
            logger.warning("SPARD %s", problems)
        with self._summary_lock:
            self._summary.merge(summary)

    def _take_summary(self) -> ObserveSummary:
        self._raise_flush_error()
        with self._summary_lock:
            summary, self._summary = self._summary, ObserveSummary()
        return summary

    def _restore(self, batches: Batches) -> None:
        """Put unsent batches back, in order (sending them again is idempotent)."""
        for run, batch in reversed(batches):
            self._buffer.restore(run, batch)

    def _flush_failed(self, error: Exception) -> None:
        # Once per outage, not once per flush interval: a background retry loop that logs
        # every 50 ms buries everything else in the trainer's log.
        if self._flush_error is None:
            logger.warning("SPARD observations not sent (kept, retrying): %s", error)
        self._flush_error = error


def _prior_weights_document(prior_weights: Any) -> Any:
    """``prior_weights`` as the create body carries them. A NaN or inf would reach the service
    as null (JSON has neither) and be refused as "not a number", so it is refused here."""
    values = list(prior_weights.values()) if isinstance(prior_weights, dict) else prior_weights
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return prior_weights  # not numbers: the service names the field
    if not np.isfinite(array).all():
        raise InvalidRequestError(
            422, "prior_weights must be finite (JSON carries neither NaN nor inf)", "prior_weights"
        )
    return prior_weights if isinstance(prior_weights, dict) else array.tolist()
