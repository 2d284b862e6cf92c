"""The service in this process, for the SDK's local mode (``spard.client.LocalRuns``).

Requests go to the real FastAPI app over its in-memory store, through ASGI with no socket:
the same routes, validation, run layer and errors as a server, so local mode cannot drift from
it. The one exception is the call a trainer makes every batch, ``POST /v1/runs/{id}/steps``:
it goes straight to the function behind the step route
(:func:`~spard.service.runs.step_request.serve_step`), with the same errors and metrics,
because the framework's routing would otherwise cost more than the engine step.

The app's event loop is run by the calling thread itself (one caller at a time, under a lock),
so a sync step pays no thread hop; async callers, and callers inside a running event loop (a
notebook), reach it through a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import httpx

from spard.service.http.app import create_app
from spard.service.http.metrics import observe_request
from spard.service.protocol.errors import API_ERRORS, error_document
from spard.service.protocol.schemas import RUN_ID_PATTERN
from spard.service.protocol.wire import IDEMPOTENCY_HEADER, request_id_from_header
from spard.service.runs.run_service import RunService
from spard.service.runs.step_request import serve_step
from spard.service.runs.store import RunKey
from spard.service.settings import LOCAL_TENANT, Settings

logger = logging.getLogger("spard.service")
_T = TypeVar("_T")
_STEP_ROUTE = "/v1/runs/{run_id}/steps"
_JSON_HEADERS = {"content-type": "application/json"}


class InProcessService:
    """The service's app on its in-memory store, served to callers of this process (see the
    module docstring); ``spard.client.LocalRuns`` is its face in the SDK."""

    def __init__(self, step_retention: int, history_retention: int) -> None:
        # model_validate, not Settings(): SPARD_* variables of this process (a Redis URL, API
        # keys meant for a server) must not reach the in-process app.
        self._settings = Settings.model_validate(
            {
                "auth_disabled": True,
                "step_retention": step_retention,
                "history_retention": history_retention,
            }
        )
        self.app = create_app(self._settings)
        # A server answers an unexpected error with a 500; so does local mode (not a traceback).
        self._transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        self._step_path = re.compile(rf"/v1/runs/({RUN_ID_PATTERN.strip('^$')})/steps")
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()  # one thread runs the loop at a time
        self._closing = self._closed = False
        # Threads start on first use only.
        self._hop = ThreadPoolExecutor(1, thread_name_prefix="spard-local")
        self._lifespan: AbstractAsyncContextManager[Any] = self.app.router.lifespan_context(
            self.app
        )
        self._call(self._lifespan.__aenter__())
        self._runs: RunService = self.app.state.runs

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Serve one (read) request from any thread."""
        return self._call(self._serve(request))

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        """Serve one (read) request from any event loop."""
        return await asyncio.wrap_future(self._submit(self._serve(request)))

    def close(self) -> None:
        """Stop the app (its runs are gone); further requests raise."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        try:
            self._call(self._lifespan.__aexit__(None, None, None))
        finally:
            with self._lock:
                self._closed = True
                self._loop.close()
            self._hop.shutdown(wait=False)

    def _call(self, work: Coroutine[Any, Any, _T]) -> _T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._run(work)
        # This thread runs an event loop (a notebook's, an async caller's): it cannot run ours.
        return self._submit(work).result()

    def _submit(self, work: Coroutine[Any, Any, _T]) -> Future[_T]:
        """Run ``work`` on the worker thread."""
        try:
            return self._hop.submit(self._run, work)
        except RuntimeError:  # the worker was shut down by close()
            work.close()
            raise RuntimeError("these local runs were closed") from None

    def _run(self, work: Coroutine[Any, Any, _T]) -> _T:
        with self._lock:
            if self._closed:
                work.close()
                raise RuntimeError("these local runs were closed")
            return self._loop.run_until_complete(work)

    async def _serve(self, request: httpx.Request) -> httpx.Response:
        key = self._step_key(request)
        if key is None:
            response = await self._transport.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)
        start = time.perf_counter()
        response = await self._serve_step(key, request)
        observe_request("POST", _STEP_ROUTE, response.status_code, time.perf_counter() - start)
        return response

    def _step_key(self, request: httpx.Request) -> RunKey | None:
        """The run a step request addresses, when it can skip the framework: any request the
        app's middleware or dependencies would treat otherwise (a malformed run id, an API
        key, a body over the limit) goes through the app."""
        if (
            request.method != "POST"
            or "authorization" in request.headers
            or len(request.content) > self._settings.max_body_bytes
        ):
            return None
        match = self._step_path.fullmatch(request.url.path)
        return None if match is None else RunKey(LOCAL_TENANT, match[1])

    async def _serve_step(self, key: RunKey, request: httpx.Request) -> httpx.Response:
        try:
            document = await serve_step(
                self._runs,
                key,
                request.headers.get("content-type"),
                request.content,
                request_id=request_id_from_header(request.headers.get(IDEMPOTENCY_HEADER)),
                max_scores=self._settings.max_scores,
            )
        except API_ERRORS as error:
            failure = error_document(error)
            return httpx.Response(failure.status, content=failure.to_json(), headers=_JSON_HEADERS)
        except Exception:
            logger.exception("local step failed")
            return httpx.Response(500, text="Internal Server Error")
        return httpx.Response(200, content=document, headers=_JSON_HEADERS)
