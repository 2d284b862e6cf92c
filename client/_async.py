"""``AsyncSpardClient``: the async driver of the flows of :class:`~spard.client._base.BaseClient`
(the same methods as :class:`~spard.client.SpardClient`, awaited; a task flushes observations)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx

from spard.client._base import BaseClient, Flow, T
from spard.client._core import Call, ClientCore, Fallback, check_base_url
from spard.client._streaming import ObserveSummary, RunWeights
from spard.client.local import LOCAL_URL, AsyncLocalTransport, LocalRuns
from spard.client.models import CommitOutcome, RunInfo, StepOutcome
from spard.service.protocol.documents import HistoryEntry


class AsyncSpardClient(BaseClient):
    """Async twin of :class:`SpardClient`: the same methods, awaited."""

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
        transport: httpx.AsyncBaseTransport | None = None,
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
        self._http = httpx.AsyncClient(
            base_url=check_base_url(base_url),
            timeout=timeout_s,
            headers=headers,
            transport=transport,
        )
        self._flusher_task: asyncio.Task[None] | None = None
        self._wake_event: asyncio.Event | None = None
        self._send_lock = asyncio.Lock()

    @classmethod
    def local(cls, runs: LocalRuns | None = None, **options: Any) -> AsyncSpardClient:
        """An async client of the service running in this process."""
        return cls(LOCAL_URL, transport=AsyncLocalTransport(runs), retries=0, **options)

    async def create_run(
        self,
        objectives: list[str],
        *,
        strategy: str | None = None,
        config: dict[str, Any] | None = None,
        prior_weights: Any = None,
        run_id: str | None = None,
        streaming: dict[str, Any] | None = None,
    ) -> RunInfo:
        return await self._run(
            self._create_flow(objectives, strategy, config, prior_weights, run_id, streaming)
        )

    async def get_run(self, run_id: str) -> RunInfo:
        return await self._run(self._get_run_flow(run_id))

    async def step(
        self,
        run_id: str,
        scores: Any,
        *,
        step: int | None = None,
        return_advantages: bool = False,
        prompt_ids: list[str | int] | None = None,
    ) -> StepOutcome:
        return await self._run(self._step_flow(run_id, scores, step, return_advantages, prompt_ids))

    async def history(
        self, run_id: str, *, after: int | None = None, limit: int | None = None
    ) -> list[HistoryEntry]:
        return await self._run(self._history_flow(run_id, after, limit))

    async def export_state(self, run_id: str) -> dict[str, Any]:
        return await self._run(self._export_flow(run_id))

    async def import_state(self, run_id: str, state: dict[str, Any]) -> RunInfo:
        return await self._run(self._import_flow(run_id, state))

    async def delete_run(self, run_id: str) -> None:
        await self._run(self._delete_flow(run_id))

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
            await self._send_pending(None)

    async def flush(self) -> ObserveSummary:
        await self._send_pending(None)
        return self._take_summary()

    async def commit(
        self, run_id: str, step: int, *, return_advantages: bool = False
    ) -> CommitOutcome:
        await self._send_pending(run_id)
        return await self._run(self._commit_flow(run_id, step, return_advantages))

    async def weights(self, run_id: str, *, max_age_s: float | None = None) -> RunWeights:
        return await self._run(self._weights_flow(run_id, max_age_s))

    async def aclose(self) -> None:
        """Send buffered observations, then release connections."""
        try:
            if self._flusher_task is not None:
                self._flusher_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._flusher_task
            if len(self._buffer):
                await self._send_pending(None)
        finally:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncSpardClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # I/O ------------------------------------------------------------------------------------
    async def _run(self, flow: Flow[T]) -> T:
        try:
            call = next(flow)
            while True:
                try:
                    payload = await self._send(call)
                except BaseException as error:
                    call = flow.throw(error)
                else:
                    call = flow.send(payload)
        except StopIteration as done:
            result: T = done.value
            return result

    async def _send(self, call: Call) -> Any:
        attempt = 0
        while True:
            try:
                response = await self._http.send(call.to_httpx(self._http))
            except httpx.TransportError as error:
                if not self._core.should_retry(attempt, error, None):
                    raise self._core.transport_error(error) from error
            else:
                if not self._core.should_retry(attempt, None, response.status_code):
                    return ClientCore.payload(response, call, attempt)
            await asyncio.sleep(self._core.delay(attempt))
            attempt += 1

    async def _send_pending(self, run_id: str | None) -> None:
        async with self._send_lock:  # see SpardClient._send_pending
            await self._run(self._batches_flow(self._buffer.take(run_id)))

    async def _flush_loop(self) -> None:
        assert self._wake_event is not None
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake_event.wait(), self._flush_interval_s)
            self._wake_event.clear()
            if not len(self._buffer):
                continue
            try:
                await self._send_pending(None)
            except Exception as error:
                self._flush_failed(error)
                await asyncio.sleep(self._core.backoff_s)
