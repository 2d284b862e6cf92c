"""``observe`` / ``flush`` / ``commit`` / ``weights`` of the sync and async clients.

Mixins over the clients' ``_send``: the sync one flushes from a daemon thread, the async one
from a task; both share the buffer, summary and weight cache of :mod:`spard.client._streaming`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from spard.client._core import Call, ClientCore
from spard.client._streaming import ObservationBuffer, ObserveSummary, RunWeights, observation_body
from spard.client.errors import SpardServiceError
from spard.client.models import CommitOutcome

logger = logging.getLogger("spard.client")


class _Observing:
    """State shared by both twins."""

    _core: ClientCore

    def _init_observing(
        self, batch_size: int, flush_interval_s: float, weights_max_age_s: float
    ) -> None:
        self._buffer = ObservationBuffer(batch_size)
        # Past this many buffered observations, observe() sends them itself before returning.
        self._max_buffered = max(8 * batch_size, 8192)
        self._flush_interval_s = flush_interval_s
        self._weights_max_age_s = weights_max_age_s
        self._weights: dict[str, RunWeights] = {}
        self._summary = ObserveSummary()
        self._summary_lock = threading.Lock()
        self._flush_error: BaseException | None = None

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
        with self._summary_lock:
            summary, self._summary = self._summary, ObserveSummary()
        return summary

    def _restore(self, batches: list[tuple[str, list[dict[str, Any]]]]) -> None:
        """Put unsent batches back, in order (sending them again is idempotent)."""
        for run, batch in reversed(batches):
            self._buffer.restore(run, batch)

    def known_weights(self, run_id: str) -> RunWeights | None:
        """The last weights fetched for ``run_id`` (however old), without a request."""
        return self._weights.get(run_id)

    def _cached_weights(self, run_id: str, max_age_s: float | None) -> RunWeights | None:
        cached = self._weights.get(run_id)
        age = self._weights_max_age_s if max_age_s is None else max_age_s
        return cached if cached is not None and cached.fresh(age) else None

    def _flush_failed(self, error: Exception) -> None:
        # Once per outage, not once per flush interval: a background retry loop that logs
        # every 50 ms buries everything else in the trainer's log.
        if self._flush_error is None:
            logger.warning("SPARD observations not sent (kept, retrying): %s", error)
        self._flush_error = error

    def _update_weights(self, run_id: str, data: dict[str, Any] | None) -> RunWeights:
        if data is None:  # 304: unchanged since the cached etag
            current = replace(self._weights[run_id], fetched_at=RunWeights.now())
        else:
            current = RunWeights.from_json(data)
        self._weights[run_id] = current
        self._core.remember_weights(run_id, current.objectives, current.reward_weights)
        return current

    def _weights_call(self, run_id: str) -> Call:
        cached = self._weights.get(run_id)
        return ClientCore.weights_call(run_id, cached.etag if cached else None)


class SyncObserving(_Observing):
    """Streaming methods of :class:`~spard.client.SpardClient`."""

    def _send(self, call: Call) -> Any:
        raise NotImplementedError

    def _init_flusher(self) -> None:
        self._wake = threading.Event()
        self._stopping = False
        self._flusher: threading.Thread | None = None
        self._flusher_lock = threading.Lock()
        self._send_lock = threading.Lock()

    def observe(
        self,
        run_id: str,
        group_id: int | str,
        scores: Mapping[str, float | None],
        *,
        step: int | None = None,
        rollout_index: int | None = None,
        observation_id: str | None = None,
    ) -> None:
        """Report one rollout's scores (objective -> score; None or NaN = missing). Buffered
        and sent in batches by a background thread; thread-safe. Without ``step`` the
        observation goes to the run's open step; without ``rollout_index`` the service
        assigns the group's next free index (retries stay idempotent)."""
        full = self._buffer_observation(
            run_id, group_id, scores, step, rollout_index, observation_id
        )
        self._start_flusher()
        if full:
            self._wake.set()
        if len(self._buffer) >= self._max_buffered:  # backpressure: help send, then go on
            self._record(self._send_pending(None))

    def flush(self) -> ObserveSummary:
        """Send every buffered observation now; returns what the service did with all the
        observations flushed since the last call (late, conflicting ones listed)."""
        self._record(self._send_pending(None))
        self._raise_flush_error()
        return self._take_summary()

    def commit(self, run_id: str, step: int, *, return_advantages: bool = False) -> CommitOutcome:
        """Flush the run's observations, then close ``step``: the engine runs once on what
        arrived. Safe to retry; a second commit returns the stored result (``replayed``)."""
        self._record(self._send_pending(run_id))
        data = self._send(ClientCore.commit_call(run_id, step, return_advantages))
        return self._core.commit_outcome(run_id, data)

    def weights(self, run_id: str, *, max_age_s: float | None = None) -> RunWeights:
        """The run's current reward weights, cached for ``max_age_s`` (client default 1 s),
        then revalidated with the ETag (a 304 costs no body)."""
        cached = self._cached_weights(run_id, max_age_s)
        if cached is not None:
            return cached
        return self._update_weights(run_id, self._send(self._weights_call(run_id)))

    def _send_pending(self, run_id: str | None) -> ObserveSummary:
        # One sender at a time: a commit must not overtake a batch the flusher has in flight
        # (its observations would arrive late).
        with self._send_lock:
            return self._send_batches(self._buffer.take(run_id))

    def _send_batches(self, batches: list[tuple[str, list[dict[str, Any]]]]) -> ObserveSummary:
        summary = ObserveSummary()
        for position, (run, batch) in enumerate(batches):
            try:
                report = self._send(ClientCore.observe_call(run, batch))
            except SpardServiceError as error:
                kept = position if error.status_code >= 500 else position + 1
                self._restore(batches[kept:])
                raise
            except BaseException:
                self._restore(batches[position:])
                raise
            summary.add(run, batch, report)
        return summary

    def _start_flusher(self) -> None:
        if self._flusher is not None:
            return
        with self._flusher_lock:
            if self._flusher is None:
                self._flusher = threading.Thread(
                    target=self._flush_loop, name="spard-observe", daemon=True
                )
                self._flusher.start()

    def _flush_loop(self) -> None:
        while not self._stopping:
            self._wake.wait(self._flush_interval_s)
            self._wake.clear()
            if not len(self._buffer):
                continue
            try:
                self._record(self._send_pending(None))
            except Exception as error:  # kept for the caller's next observe/flush
                self._flush_failed(error)
                self._wake.wait(self._core.backoff_s)

    def _stop_flusher(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join(timeout=30)
        if len(self._buffer):
            self._record(self._send_pending(None))


class AsyncObserving(_Observing):
    """Streaming methods of :class:`~spard.client.AsyncSpardClient` (awaited twins)."""

    async def _send(self, call: Call) -> Any:
        raise NotImplementedError

    def _init_flusher(self) -> None:
        self._flusher_task: asyncio.Task[None] | None = None
        self._wake_event: asyncio.Event | None = None
        self._send_lock = asyncio.Lock()

    async def observe(
        self,
        run_id: str,
        group_id: int | str,
        scores: Mapping[str, float | None],
        *,
        step: int | None = None,
        rollout_index: int | None = None,
        observation_id: str | None = None,
    ) -> None:
        full = self._buffer_observation(
            run_id, group_id, scores, step, rollout_index, observation_id
        )
        if self._flusher_task is None or self._flusher_task.done():
            self._wake_event = asyncio.Event()
            self._flusher_task = asyncio.get_running_loop().create_task(self._flush_loop())
        if full and self._wake_event is not None:
            self._wake_event.set()
        if len(self._buffer) >= self._max_buffered:  # backpressure, as in the sync client
            self._record(await self._send_pending(None))

    async def flush(self) -> ObserveSummary:
        self._record(await self._send_pending(None))
        self._raise_flush_error()
        return self._take_summary()

    async def commit(
        self, run_id: str, step: int, *, return_advantages: bool = False
    ) -> CommitOutcome:
        self._record(await self._send_pending(run_id))
        data = await self._send(ClientCore.commit_call(run_id, step, return_advantages))
        return self._core.commit_outcome(run_id, data)

    async def weights(self, run_id: str, *, max_age_s: float | None = None) -> RunWeights:
        cached = self._cached_weights(run_id, max_age_s)
        if cached is not None:
            return cached
        return self._update_weights(run_id, await self._send(self._weights_call(run_id)))

    async def _send_pending(self, run_id: str | None) -> ObserveSummary:
        async with self._send_lock:  # see SyncObserving._send_pending
            return await self._send_batches(self._buffer.take(run_id))

    async def _send_batches(
        self, batches: list[tuple[str, list[dict[str, Any]]]]
    ) -> ObserveSummary:
        summary = ObserveSummary()
        for position, (run, batch) in enumerate(batches):
            try:
                report = await self._send(ClientCore.observe_call(run, batch))
            except SpardServiceError as error:
                kept = position if error.status_code >= 500 else position + 1
                self._restore(batches[kept:])
                raise
            except BaseException:
                self._restore(batches[position:])
                raise
            summary.add(run, batch, report)
        return summary

    async def _flush_loop(self) -> None:
        assert self._wake_event is not None
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake_event.wait(), self._flush_interval_s)
            self._wake_event.clear()
            if not len(self._buffer):
                continue
            try:
                self._record(await self._send_pending(None))
            except Exception as error:
                self._flush_failed(error)
                await asyncio.sleep(self._core.backoff_s)

    async def _stop_flusher(self) -> None:
        if self._flusher_task is not None:
            self._flusher_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher_task
        if len(self._buffer):
            self._record(await self._send_pending(None))
