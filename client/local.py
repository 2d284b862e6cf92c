"""Local mode: the service itself, in this process, behind an httpx transport.

``SpardClient.local()`` sends its requests to the real FastAPI app of :mod:`spard.service`
over its in-memory store, through ASGI with no socket: the same routes, validation, run layer
and errors as a server, so local mode cannot drift from it. The app runs on an event loop of
its own (a daemon thread), which lets a sync and an async client share one
:class:`LocalRuns`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import httpx

_T = TypeVar("_T")
LOCAL_URL = "http://spard.local"  # the base URL of a local client (nothing is resolved)
_INSTALL_HINT = (
    "local mode runs the SPARD service in this process and needs its extra: "
    "pip install 'spard[service]'"
)


class LocalRuns:
    """Runs that live in this process: the service's app on its in-memory store.

    ``step_retention`` and ``history_retention`` are the service settings of the same names;
    authentication is off (nothing outside this process can reach the app).
    """

    def __init__(self, step_retention: int = 8, history_retention: int = 2000) -> None:
        try:
            from spard.service.http.app import create_app
            from spard.service.settings import Settings
        except ImportError as error:
            raise ImportError(f"{_INSTALL_HINT} ({error})") from error
        # model_validate, not Settings(): SPARD_* variables of this process (a Redis URL, API
        # keys meant for a server) must not reach the in-process app.
        settings = Settings.model_validate(
            {
                "auth_disabled": True,
                "step_retention": step_retention,
                "history_retention": history_retention,
            }
        )
        self.app = create_app(settings)
        # A server answers an unexpected error with a 500; so does local mode (not a traceback).
        self._transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="spard-local", daemon=True
        )
        self._thread.start()
        self._lifespan: AbstractAsyncContextManager[Any] = self.app.router.lifespan_context(
            self.app
        )
        self._submit(self._lifespan.__aenter__()).result()

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Serve one (read) request from any thread."""
        return self._submit(self._serve(request)).result()

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        """Serve one (read) request from any event loop."""
        return await asyncio.wrap_future(self._submit(self._serve(request)))

    def close(self) -> None:
        """Stop the app (its runs are gone); further requests raise."""
        if self._loop.is_running():
            self._submit(self._lifespan.__aexit__(None, None, None)).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    async def _serve(self, request: httpx.Request) -> httpx.Response:
        response = await self._transport.handle_async_request(request)
        content = await response.aread()
        return httpx.Response(response.status_code, headers=response.headers, content=content)

    def _submit(self, work: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        # A coroutine sent to a stopped loop would never finish: refuse it instead.
        if not self._loop.is_running():
            work.close()
            raise RuntimeError("these local runs were closed")
        return asyncio.run_coroutine_threadsafe(work, self._loop)


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
