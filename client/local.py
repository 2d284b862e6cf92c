"""Local mode: the service itself, in this process, behind an httpx transport.

``SpardClient.local()`` sends its requests to :class:`LocalRuns`: the service's real FastAPI
app on its in-memory store, reached through ASGI with no socket. Every request passes the
same middleware, routes, validation, run layer, errors and metrics as on a server, so local
mode cannot drift from it; the call a trainer makes every batch, ``POST
/v1/runs/{id}/steps``, is as cheap here as in a server, since the app hands it to the run
layer's front door (:class:`~spard.service.runs.step_request.StepDoor`) before its router, and
the ASGI exchange below is the least ASGI needs.

The app's event loop is run by the calling thread itself (one caller at a time, under a lock),
so a sync step pays no thread hop; async callers, and callers inside a running event loop (a
notebook), reach it through a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine, MutableMapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

if TYPE_CHECKING:
    from fastapi import FastAPI

LOCAL_URL = "http://spard.local"  # the base URL of a local client (nothing is resolved)
_INSTALL_HINT = (
    "local mode runs the SPARD service in this process and needs its extra: "
    "pip install '.[service]' in a clone of spard"
)
logger = logging.getLogger("spard.service")
_T = TypeVar("_T")
_CLIENT = ("127.0.0.1", 123)  # httpx's ASGI transport's default peer
Message = MutableMapping[str, Any]


class LocalRuns:
    """Runs that live in this process: the service's app on its in-memory store (see the
    module docstring). A sync and an async client can share one.

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
        self.app: FastAPI = create_app(settings)
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()  # one thread runs the loop at a time
        self._closing = self._closed = False
        # Threads start on first use only.
        self._hop = ThreadPoolExecutor(1, thread_name_prefix="spard-local")
        self._lifespan: AbstractAsyncContextManager[Any] = self.app.router.lifespan_context(
            self.app
        )
        self._call(self._lifespan.__aenter__())

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
        """One ASGI exchange with the app, as httpx's ASGI transport makes it (an app error
        is a 500, as a server answers it), less its generality: the body is whole already."""
        url = request.url
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(name.lower(), value) for name, value in request.headers.raw],
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "server": (url.host, url.port),
            "client": _CLIENT,
            "root_path": "",
        }
        exchange = _Exchange(request.content)
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except Exception:
            logger.exception("local request failed")
            exchange.done.set()
        if exchange.status is None:  # the app failed before it answered
            return httpx.Response(500)
        body = b"" if request.method == "HEAD" else b"".join(exchange.body)
        return httpx.Response(exchange.status, headers=exchange.headers, content=body)


class _Exchange:
    """The two ASGI callables of one request whose body is all there."""

    def __init__(self, body: bytes) -> None:
        self._request: Message | None = {"type": "http.request", "body": body}
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.done = asyncio.Event()

    async def receive(self) -> Message:
        if self._request is not None:
            message, self._request = self._request, None
            return message
        await self.done.wait()  # nothing more to read: the client "leaves" once answered
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body.append(message.get("body", b""))
            if not message.get("more_body", False):
                self.done.set()


class LocalTransport(httpx.BaseTransport):
    """Sync httpx transport over :class:`LocalRuns`."""

    def __init__(self, runs: LocalRuns | None = None) -> None:
        self._owns_runs = runs is None  # runs shared with other clients outlive this one
        self.runs = runs if runs is not None else LocalRuns()

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
        self.runs = runs if runs is not None else LocalRuns()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return await self.runs.handle_async(request)

    async def aclose(self) -> None:
        if self._owns_runs:
            await asyncio.to_thread(self.runs.close)
