"""Local mode: the service itself, in this process, behind an httpx transport.

``SpardClient.local()`` sends its requests to :class:`LocalRuns`, the real service running in
this process on its in-memory store (:mod:`spard.service.inprocess`): the same routes,
validation, run layer and errors as a server, with no socket. A sync and an async client can
share one :class:`LocalRuns`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from spard.service.inprocess import InProcessService

LOCAL_URL = "http://spard.local"  # the base URL of a local client (nothing is resolved)
_INSTALL_HINT = (
    "local mode runs the SPARD service in this process and needs its extra: "
    "pip install '.[service]' in a clone of spard"
)


class LocalRuns:
    """Runs that live in this process: the service's app on its in-memory store.

    ``step_retention`` and ``history_retention`` are the service settings of the same names;
    authentication is off (nothing outside this process can reach the app).
    """

    def __init__(self, step_retention: int = 8, history_retention: int = 2000) -> None:
        try:
            from spard.service.inprocess import InProcessService
        except ImportError as error:
            raise ImportError(f"{_INSTALL_HINT} ({error})") from error
        self.service: InProcessService = InProcessService(step_retention, history_retention)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Serve one (read) request from any thread."""
        return self.service.handle(request)

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        """Serve one (read) request from any event loop."""
        return await self.service.handle_async(request)

    def close(self) -> None:
        """Stop the service (its runs are gone); further requests raise."""
        self.service.close()


class LocalTransport(httpx.BaseTransport):
    """Sync httpx transport over :class:`LocalRuns`."""

    def __init__(self, runs: LocalRuns | None = None) -> None:
        self._owns_runs = runs is None  # runs shared with other clients outlive this one
        self.runs = runs or LocalRuns()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        return self.runs.handle(request)

    def close(self) -> None:
        if self._owns_runs:
            self.runs.close()


class AsyncLocalTransport(httpx.AsyncBaseTransport):
    """Async httpx transport over :class:`LocalRuns`."""

    def __init__(self, runs: LocalRuns | None = None) -> None:
        self._owns_runs = runs is None
        self.runs = runs or LocalRuns()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return await self.runs.handle_async(request)

    async def aclose(self) -> None:
        if self._owns_runs:
            await asyncio.to_thread(self.runs.close)
