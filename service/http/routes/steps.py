"""Steps: the one call a trainer makes per batch."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from spard.service.http.dependencies import IdempotencyKey, Run
from spard.service.protocol.codec import MSGPACK_TYPES
from spard.service.protocol.documents import StepResponse
from spard.service.protocol.schemas import (
    BODY_ERRORS,
    ERROR_RESPONSES,
    StepRequest,
    error_statuses,
)
from spard.service.protocol.wire import HEADER_SIZE, OCTET_STREAM
from spard.service.runs.run_service import RunService
from spard.service.runs.step_request import serve_step
from spard.service.settings import Settings

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
async def post_step(request: Request, run: Run, request_id: IdempotencyKey) -> Response:
    """Apply one batch of scores (N, G, K), exactly once: a step sent again, to any replica,
    returns the stored result with ``replayed: true``; so does a step without an index sent
    again with the same ``Idempotency-Key`` (while that step is among the kept ones)."""
    # The hot path: app state read directly rather than through two more dependencies.
    runs: RunService = request.app.state.runs
    settings: Settings = request.app.state.settings
    document = await serve_step(
        runs,
        run,
        request.headers.get("content-type"),
        await request.body(),
        request_id=request_id,
        max_scores=settings.max_scores,
    )
    return Response(document, media_type="application/json")
