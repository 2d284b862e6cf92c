"""Pure ASGI middleware (no per-request task overhead): the request gate and request timing."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Coroutine
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spard.service.http.errors import error_response
from spard.service.http.metrics import observe_request
from spard.service.protocol.errors import UnauthorizedError, status_for
from spard.service.runs.admission import body_too_large, tenant_of
from spard.service.settings import Settings

MAX_HEADER_BYTES = 64 * 1024  # far above any real request's headers
AUTHENTICATED_PREFIX = "/v1/"  # every route under it needs the caller's tenant


def route_path(scope: Scope) -> str:
    """The path the router matches: behind a proxy's prefix (``root_path``), the path less
    that prefix, as Starlette's routing takes it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root + "/"):
        return path[len(root) :]
    return path


def first_headers(headers: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """Each header's first value by name: a repeated header is read as Starlette reads it, so
    the gate, the step door and the handlers judge the same Authorization header."""
    return dict(reversed(headers))


CLIENT_CLOSED = 499  # nginx's status for a request whose client left before the answer


class _BodyTooLargeError(Exception):
    pass


class _DisconnectedError(Exception):
    pass


class RequestGateMiddleware:
    """What a request must pass before the app sees it, cheapest first: headers within 64 KiB
    together (431); an API key, for the routes that need one, before any body byte is read
    (401: an unauthenticated client cannot make the service hold its body); then the body,
    read whole here within ``max_body_bytes`` (413, declared or streamed) and
    ``body_timeout_s`` (408: a stalled body cannot hold a connection for good).

    Reading the body here, not in the app, is what makes a streamed body over the limit a 413
    everywhere: an error raised from inside the app's body read is turned into a 400 by
    FastAPI's body parsing."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        if sum(len(name) + len(value) for name, value in headers) > MAX_HEADER_BYTES:
            message = f"request headers exceed {MAX_HEADER_BYTES} bytes together"
            await _refuse(431, message, "headers", scope, receive, send)
            return
        named = first_headers(headers)
        if route_path(scope).startswith(AUTHENTICATED_PREFIX):
            authorization = named.get(b"authorization", b"").decode("latin-1")
            try:
                tenant_of(self.settings, authorization, scope.get("server"))
            except UnauthorizedError as exc:
                await _refuse(401, exc.message, exc.field, scope, receive, send)
                return
        declared = named.get(b"content-length")
        limit = self.settings.max_body_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(scope, receive, send)
            return
        try:
            body = await _within(self._read(receive), self.settings.body_timeout_s)
        except _BodyTooLargeError:
            await self._too_large(scope, receive, send)
            return
        except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
            message = f"request body not received within {self.settings.body_timeout_s:g} s"
            await _refuse(408, message, "body", scope, receive, send)
            return
        except _DisconnectedError:
            return  # the client went away: nobody to answer
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _DisconnectedError
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.settings.max_body_bytes:
                raise _BodyTooLargeError
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = body_too_large(self.settings)
        await _refuse(status_for(error), error.message, error.field, scope, receive, send)


async def _refuse(
    status: int, message: str, field: str | None, scope: Scope, receive: Receive, send: Send
) -> None:
    """Answer a refused request and close its connection: kept alive, a client that goes on
    trickling bytes would hold it (uvicorn re-arms its keep-alive timer only after a response
    it completed), which is what refusing before the body is read exists to prevent."""
    response = error_response(status, message, field, headers={"Connection": "close"})
    await response(scope, receive, send)


async def _within(read: Coroutine[Any, Any, bytes], seconds: float) -> bytes:
    """``await read`` within ``seconds`` (:class:`asyncio.TimeoutError` after), in this task:
    ``asyncio.wait_for`` runs it as a task of its own, one more trip through the event loop
    on every request (it does so still on Python 3.10, which has no ``asyncio.timeout``)."""
    if sys.version_info < (3, 11):
        return await asyncio.wait_for(read, seconds)
    async with asyncio.timeout(seconds):
        return await read


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the app the body read already, then the client's own messages
    (a disconnect)."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


class TimingMiddleware:
    """Observe every request's latency, labelled by its route template (bounded cardinality)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status: int | None = None

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        except BaseException:
            status = 500 if status is None else status
            raise
        finally:
            # Neither an answer nor an error: the client went away before one could be sent,
            # recorded as nginx's 499, not as a server error.
            recorded = CLIENT_CLOSED if status is None else status
            observe_request(scope["method"], _route(scope), recorded, time.perf_counter() - start)


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
