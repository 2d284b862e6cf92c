"""``SpardClient``: the sync driver of the flows of :class:`~spard.client._base.BaseClient`
(sends with retries, a background thread flushes observations); its async twin is
:mod:`spard.client._async`, as httpx keeps ``Client`` and ``AsyncClient``."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx

from spard.client._base import BaseClient, Flow, T
from spard.client._core import Call, ClientCore, Fallback, check_base_url
from spard.client._streaming import ObserveSummary, RunWeights
from spard.client.local import LOCAL_URL, LocalRuns, LocalTransport
from spard.client.models import CommitOutcome, RunInfo, StepOutcome
from spard.service.protocol.documents import HistoryEntry


class SpardClient(BaseClient):
    """Sync client of the SPARD service.

    ``SpardClient("http://host:8000", api_key="...")``; ``SpardClient.local()`` runs the service
    in-process with the same API. Steps are idempotent, so connection errors and 5xx answers are
    retried (``retries`` times, exponential backoff from ``backoff_s``). ``fallback="hold"``
    keeps a trainer going while the service stays down: the last weights, uniform sample
    weights, a warning once, and normal service when it is back.

    Reward workers stream scores with ``observe`` (batched by ``observe_batch_size`` or every
    ``flush_interval_s``), a trainer closes a step with ``commit``; ``weights`` is cached for
    ``weights_max_age_s``.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.2,
        fallback: Fallback = "raise",
        binary_threshold: int = 16384,
        observe_batch_size: int = 512,
        flush_interval_s: float = 0.05,
        weights_max_age_s: float = 1.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            retries=retries,
            backoff_s=backoff_s,
            fallback=fallback,
            binary_threshold=binary_threshold,
            observe_batch_size=observe_batch_size,
            flush_interval_s=flush_interval_s,
            weights_max_age_s=weights_max_age_s,
        )
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=check_base_url(base_url),
            timeout=timeout_s,
            headers=headers,
            transport=transport,
        )
        self._wake = threading.Event()
        self._stopping = False
        self._flusher: threading.Thread | None = None
        self._flusher_lock = threading.Lock()
        self._send_lock = threading.Lock()

    @classmethod
    def local(cls, runs: LocalRuns | None = None, **options: Any) -> SpardClient:
        """A client of the service running in this process (no server to start)."""
        return cls(LOCAL_URL, transport=LocalTransport(runs), retries=0, **options)

    def create_run(
        self,
        objectives: list[str],
        *,
        strategy: str | None = None,
        config: dict[str, Any] | None = None,
        prior_weights: Any = None,
        run_id: str | None = None,
        streaming: dict[str, Any] | None = None,
    ) -> RunInfo:
        """Create a run; returns it (``reward_weights`` are the prior). ``streaming``: how
        observations become steps (``group_size``, ``incomplete_groups``,
        ``commit_after_groups``, ``commit_on_next_step``)."""
        return self._run(
            self._create_flow(objectives, strategy, config, prior_weights, run_id, streaming)
        )

    def get_run(self, run_id: str) -> RunInfo:
        """The run's config, last applied step, current weights and stats."""
        return self._run(self._get_run_flow(run_id))

    def step(
        self,
        run_id: str,
        scores: Any,
        *,
        step: int | None = None,
        return_advantages: bool = False,
        prompt_ids: list[str | int] | None = None,
    ) -> StepOutcome:
        """Send one batch of scores (N, G, K); NaN = missing. Safe to retry."""
        return self._run(self._step_flow(run_id, scores, step, return_advantages, prompt_ids))

    def history(
        self, run_id: str, *, after: int | None = None, limit: int | None = None
    ) -> list[HistoryEntry]:
        """Per-step history entries (weights, stats) in step order, all pages."""
        return self._run(self._history_flow(run_id, after, limit))

    def export_state(self, run_id: str) -> dict[str, Any]:
        """The run's curriculum state (save it with the trainer checkpoint)."""
        return self._run(self._export_flow(run_id))

    def import_state(self, run_id: str, state: dict[str, Any]) -> RunInfo:
        """Resume the run from a saved state."""
        return self._run(self._import_flow(run_id, state))

    def delete_run(self, run_id: str) -> None:
        """Delete the run and its history."""
        self._run(self._delete_flow(run_id))

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
            self._send_pending(None)

    def flush(self) -> ObserveSummary:
        """Send every buffered observation now; returns what the service did with all the
        observations flushed since the last call (late, conflicting ones listed)."""
        self._send_pending(None)
        return self._take_summary()

    def commit(self, run_id: str, step: int, *, return_advantages: bool = False) -> CommitOutcome:
        """Flush the run's observations, then close ``step``: the engine runs once on what
        arrived. Safe to retry; a second commit returns the stored result (``replayed``)."""
        self._send_pending(run_id)
        return self._run(self._commit_flow(run_id, step, return_advantages))

    def weights(self, run_id: str, *, max_age_s: float | None = None) -> RunWeights:
        """The run's current reward weights, cached for ``max_age_s`` (client default 1 s),
        then revalidated with the ETag (a 304 costs no body)."""
        return self._run(self._weights_flow(run_id, max_age_s))

    def close(self) -> None:
        """Send buffered observations, then release connections."""
        try:
            self._stopping = True
            self._wake.set()
            if self._flusher is not None:
                self._flusher.join(timeout=30)
            if len(self._buffer):
                self._send_pending(None)
        finally:
            self._http.close()

    def __enter__(self) -> SpardClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # I/O ------------------------------------------------------------------------------------
    def _run(self, flow: Flow[T]) -> T:
        try:
            call = next(flow)
            while True:
                try:
                    payload = self._send(call)
                except BaseException as error:
                    call = flow.throw(error)
                else:
                    call = flow.send(payload)
        except StopIteration as done:
            result: T = done.value
            return result

    def _send(self, call: Call) -> Any:
        attempt = 0
        while True:
            try:
                response = self._http.send(call.to_httpx(self._http))
            except httpx.TransportError as error:
                if not self._core.should_retry(attempt, error, None):
                    raise self._core.transport_error(error) from error
            else:
                if not self._core.should_retry(attempt, None, response.status_code):
                    return ClientCore.payload(response, call, attempt)
            time.sleep(self._core.delay(attempt))
            attempt += 1

    def _send_pending(self, run_id: str | None) -> None:
        # One sender at a time: a commit must not overtake a batch the flusher has in flight
        # (its observations would arrive late).
        with self._send_lock:
            self._run(self._batches_flow(self._buffer.take(run_id)))

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
                self._send_pending(None)
            except Exception as error:  # kept for the caller's next observe/flush
                self._flush_failed(error)
                self._wake.wait(self._core.backoff_s)
