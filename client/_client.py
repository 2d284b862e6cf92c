"""``SpardClient`` and ``AsyncSpardClient``: the same API, sync and async (as httpx does)."""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any

import httpx

from spard.client._core import Call, ClientCore, Fallback, check_base_url
from spard.client._observing import AsyncObserving, SyncObserving
from spard.client.errors import SpardClientError
from spard.client.local import AsyncLocalTransport, LocalRuns, LocalTransport
from spard.client.models import RunInfo, StepOutcome

_LOCAL_URL = "http://spard.local"


class SpardClient(SyncObserving):
    """Sync client of the SPARD service.

    ``SpardClient("http://host:8000", api_key="...")``; ``SpardClient.local()`` runs the engine
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
        self._core = ClientCore(
            retries=retries,
            backoff_s=backoff_s,
            fallback=fallback,
            binary_threshold=binary_threshold,
        )
        self._init_observing(observe_batch_size, flush_interval_s, weights_max_age_s)
        self._init_flusher()
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=check_base_url(base_url),
            timeout=timeout_s,
            headers=headers,
            transport=transport,
        )

    @classmethod
    def local(cls, runs: LocalRuns | None = None, **options: Any) -> SpardClient:
        """A client whose runs live in this process (no server, nothing else installed)."""
        return cls(_LOCAL_URL, transport=LocalTransport(runs), retries=0, **options)

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
        call = ClientCore.create_call(
            objectives, strategy, config, prior_weights, run_id, streaming
        )
        # A retry whose first attempt went through gets the run back: same Idempotency-Key.
        return self._core.remember(RunInfo.from_json(self._send(call)))

    def get_run(self, run_id: str) -> RunInfo:
        """The run's config, last applied step, current weights and stats."""
        return self._core.remember(RunInfo.from_json(self._send(Call("GET", f"/v1/runs/{run_id}"))))

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
        call = self._core.step_call(run_id, scores, step, return_advantages, prompt_ids)
        try:
            return self._core.step_outcome(run_id, self._send(call))
        except SpardClientError as error:
            return self._core.hold(run_id, scores, step, return_advantages, error)

    def history(
        self, run_id: str, *, after: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Per-step history entries (weights, stats) in step order, all pages."""
        entries: list[dict[str, Any]] = []
        while limit is None or len(entries) < limit:
            params: dict[str, Any] = {
                "limit": 1000 if limit is None else min(1000, limit - len(entries))
            }
            if after is not None:
                params["after"] = after
            page = self._send(Call("GET", f"/v1/runs/{run_id}/history", params=params))
            entries += page["entries"]
            after = page["next_after"]
            if after is None:
                break
        return entries

    def export_state(self, run_id: str) -> dict[str, Any]:
        """The run's curriculum state (save it with the trainer checkpoint)."""
        state: dict[str, Any] = self._send(Call("GET", f"/v1/runs/{run_id}/state"))
        return state

    def import_state(self, run_id: str, state: dict[str, Any]) -> RunInfo:
        """Resume the run from a saved state."""
        data = self._send(Call("PUT", f"/v1/runs/{run_id}/state", json=state))
        return self._core.remember(RunInfo.from_json(data))

    def delete_run(self, run_id: str) -> None:
        """Delete the run and its history."""
        self._send(Call("DELETE", f"/v1/runs/{run_id}"))

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

    def close(self) -> None:
        """Send buffered observations, then release connections."""
        try:
            self._stop_flusher()
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


class AsyncSpardClient(AsyncObserving):
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
        self._core = ClientCore(
            retries=retries,
            backoff_s=backoff_s,
            fallback=fallback,
            binary_threshold=binary_threshold,
        )
        self._init_observing(observe_batch_size, flush_interval_s, weights_max_age_s)
        self._init_flusher()
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=check_base_url(base_url),
            timeout=timeout_s,
            headers=headers,
            transport=transport,
        )

    @classmethod
    def local(cls, runs: LocalRuns | None = None, **options: Any) -> AsyncSpardClient:
        """An async client whose runs live in this process."""
        return cls(_LOCAL_URL, transport=AsyncLocalTransport(runs), retries=0, **options)

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
        call = ClientCore.create_call(
            objectives, strategy, config, prior_weights, run_id, streaming
        )
        # A retry whose first attempt went through gets the run back: same Idempotency-Key.
        return self._core.remember(RunInfo.from_json(await self._send(call)))

    async def get_run(self, run_id: str) -> RunInfo:
        data = await self._send(Call("GET", f"/v1/runs/{run_id}"))
        return self._core.remember(RunInfo.from_json(data))

    async def step(
        self,
        run_id: str,
        scores: Any,
        *,
        step: int | None = None,
        return_advantages: bool = False,
        prompt_ids: list[str | int] | None = None,
    ) -> StepOutcome:
        call = self._core.step_call(run_id, scores, step, return_advantages, prompt_ids)
        try:
            return self._core.step_outcome(run_id, await self._send(call))
        except SpardClientError as error:
            return self._core.hold(run_id, scores, step, return_advantages, error)

    async def history(
        self, run_id: str, *, after: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        while limit is None or len(entries) < limit:
            params: dict[str, Any] = {
                "limit": 1000 if limit is None else min(1000, limit - len(entries))
            }
            if after is not None:
                params["after"] = after
            page = await self._send(Call("GET", f"/v1/runs/{run_id}/history", params=params))
            entries += page["entries"]
            after = page["next_after"]
            if after is None:
                break
        return entries

    async def export_state(self, run_id: str) -> dict[str, Any]:
        state: dict[str, Any] = await self._send(Call("GET", f"/v1/runs/{run_id}/state"))
        return state

    async def import_state(self, run_id: str, state: dict[str, Any]) -> RunInfo:
        data = await self._send(Call("PUT", f"/v1/runs/{run_id}/state", json=state))
        return self._core.remember(RunInfo.from_json(data))

    async def delete_run(self, run_id: str) -> None:
        await self._send(Call("DELETE", f"/v1/runs/{run_id}"))

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

    async def aclose(self) -> None:
        try:
            await self._stop_flusher()
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
