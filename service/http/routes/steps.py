"""Steps: the one call a trainer makes per batch, answered by the run layer's front door
(:class:`~spard.service.runs.step_request.StepDoor`).

:class:`StepDoorMiddleware` hands step requests to the door before the router sees them
(FastAPI's routing and dependency solving cost more than the engine step); the route below
declares the operation (the OpenAPI document, 405s, the 422 of a malformed run id) and serves
the same door for a request the middleware leaves to the router.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from fastapi import APIRouter, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spard.service.http.dependencies import IdempotencyKey, Run
from spard.service.http.middleware import first_headers, route_path
from spard.service.protocol.codec import MSGPACK_TYPES
from spard.service.protocol.documents import StepResponse
from spard.service.protocol.schemas import (
    BODY_ERRORS,
    ERROR_RESPONSES,
    StepRequest,
    error_statuses,
)
from spard.service.protocol.wire import HEADER_SIZE, IDEMPOTENCY_HEADER, OCTET_STREAM
from spard.service.runs.answers import JSON_MEDIA_TYPE, Answer
from spard.service.runs.step_request import STEP_ROUTE, StepCall, StepDoor, step_run_id

router = APIRouter(prefix="/v1/runs", tags=["steps"], responses=ERROR_RESPONSES)

_BINARY_DOC = (
    f"`{OCTET_STREAM}`: a {HEADER_SIZE}-byte little-endian header (magic `SPRD`, version 1, "
    "flags with bit 0 = return_advantages, 2 reserved bytes, int64 step with -1 for the next, "
    "uint32 N, G, K, 4 reserved bytes) then N*G*K float32 scores, NaN = missing. "
    f"`{MSGPACK_TYPES[0]}`: a map with `step`, `shape` [N, G, K], `scores` (bytes, float32 "
    "little-endian), optional `prompt_ids` and `return_advantages`."
)
_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {"schema": StepRequest.model_json_schema()},
        OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}},
        MSGPACK_TYPES[0]: {"schema": {"type": "string", "format": "binary"}},
    },
    "description": "JSON for small batches; " + _BINARY_DOC,
}


@router.post(
    "/{run_id}/steps",
    response_model=StepResponse,
    openapi_extra={"requestBody": _REQUEST_BODY},
    responses=error_statuses(
        {
            409: "an older step no longer kept, or a step replayed with other scores",
            **BODY_ERRORS,
            413: "the body, or N*G*K, over the limit",
            415: "unsupported Content-Type",
        }
    ),
)
async def post_step(request: Request, run: Run, _key: IdempotencyKey) -> Response:
    """Apply one batch of scores (N, G, K), exactly once: a step sent again, to any replica,
    returns the stored result with ``replayed: true``; so does a step without an index sent
    again with the same ``Idempotency-Key`` (while that step is among the kept ones)."""
    # run and _key declare the path, the API key and the header to the OpenAPI document (and
    # refuse a malformed run id); the door decides each of them again, from the request.
    door: StepDoor = request.app.state.step_door
    headers = request.headers
    call = StepCall(
        run.run_id,
        await request.body(),
        headers.get("content-type"),
        headers.get("authorization", ""),
        headers.get(IDEMPOTENCY_HEADER),
        request.scope.get("server"),
    )
    answer = await door.answer(call)
    return Response(answer.body, answer.status, dict(answer.headers), JSON_MEDIA_TYPE)


class _Route(NamedTuple):
    path: str  # what the request timing labels a request with


_SERVED_ROUTE = _Route(STEP_ROUTE)
_IDEMPOTENCY = IDEMPOTENCY_HEADER.lower().encode()


class StepDoorMiddleware:
    """Pure ASGI: a step request (:func:`~spard.service.runs.step_request.step_run_id`) goes
    to the app's :class:`StepDoor` (``app.state.step_door``), every other request on to the
    router. Placed after the request gate, which has checked the headers' size and read the
    body within its limits."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        run_id = _step_run_id(scope) if scope["type"] == "http" else None
        if run_id is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = _SERVED_ROUTE
        named = first_headers(scope["headers"])
        body = await _body(receive)
        if body is None:
            return  # the client went away: nobody to answer
        door: StepDoor = scope["app"].state.step_door
        call = StepCall(
            run_id,
            body,
            _text(named.get(b"content-type")),
            _text(named.get(b"authorization")) or "",
            _text(named.get(_IDEMPOTENCY)),
            scope.get("server"),
        )
        await _send(await door.answer(call), send)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _step_run_id(scope: Scope) -> str | None:
    """The door's run id for the path the router would match (see :func:`route_path`)."""
    return step_run_id(scope["method"], route_path(scope))


async def _body(receive: Receive) -> bytes | None:
    """The whole body (the gate hands it over in one message); None if the client left."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send(answer: Answer, send: Send) -> None:
    extra = answer.headers.items()
    headers = [
        (b"content-type", JSON_MEDIA_TYPE.encode()),
        (b"content-length", str(len(answer.body)).encode()),
        *((name.lower().encode(), value.encode("latin-1")) for name, value in extra),
    ]
    start: Message = {"type": "http.response.start", "status": answer.status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": answer.body})
