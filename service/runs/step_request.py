"""The one front door of a step, ``POST /v1/runs/{run_id}/steps``, framework-free: from the
request as it arrived (the run id in its path, the headers that matter, its body) to its
answer (status, body, headers).

The HTTP app serves every step through it ahead of its router
(:class:`spard.service.http.routes.steps.StepDoorMiddleware`), and local mode sends its
requests through that same app; so routing, auth, limits, the idempotency key, decoding and
error rendering of the hot path are decided here and nowhere else. What only a socket needs
(the header limit, reading the body within a time limit) and the latency metric of every
route stay in the app's middleware, which both modes pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from spard.service.protocol.codec import decode_step_body
from spard.service.protocol.errors import (
    API_ERRORS,
    StoreUnavailableError,
    error_document,
)
from spard.service.protocol.schemas import RUN_ID_PATTERN
from spard.service.protocol.wire import request_id_from_header
from spard.service.runs.admission import check_body_size, tenant_of
from spard.service.runs.answers import Answer, error_answer
from spard.service.runs.records import step_payload
from spard.service.runs.run_service import RunService
from spard.service.runs.store import RunKey
from spard.service.settings import Settings

STEP_ROUTE = "/v1/runs/{run_id}/steps"
_STEP_PATH = re.compile(rf"/v1/runs/({RUN_ID_PATTERN.strip('^$')})/steps")
_NO_HEADERS: dict[str, str] = {}


def step_run_id(method: str, path: str) -> str | None:
    """The run a request addresses if the door serves it: a ``POST`` to the step route with
    a well-formed run id. Any other request is the app's (a malformed run id too: the app's
    path validation names what is wrong with it)."""
    if method != "POST":
        return None
    match = _STEP_PATH.fullmatch(path)
    return None if match is None else match[1]


@dataclass(frozen=True)
class StepCall:
    """A step request as it arrived."""

    run_id: str  # well-formed (see step_run_id)
    body: bytes
    content_type: str | None = None
    authorization: str = ""  # the Authorization header, "" without one
    idempotency_key: str | None = None  # the Idempotency-Key header
    server: Any = None  # the ASGI scope's (host, port): auth may depend on it


class StepDoor:
    """Answers step requests for one app: its run layer and its settings."""

    def __init__(self, runs: RunService, settings: Settings) -> None:
        self._runs = runs
        self._settings = settings

    async def answer(self, call: StepCall) -> Answer:
        """The caller's tenant (401), the body within ``max_body_bytes`` (413), the
        idempotency key (422), then :func:`serve_step`; every API error is rendered as the
        API renders it, and a store outage is reported to the run layer's events."""
        try:
            tenant = tenant_of(self._settings, call.authorization, call.server)
            check_body_size(len(call.body), self._settings)
            document = await serve_step(
                self._runs,
                RunKey(tenant, call.run_id),
                call.content_type,
                call.body,
                request_id=request_id_from_header(call.idempotency_key),
                max_scores=self._settings.max_scores,
            )
        except API_ERRORS as error:
            if isinstance(error, StoreUnavailableError):
                self._runs.events.store_unavailable()
            return error_answer(error_document(error))
        return Answer(200, document, _NO_HEADERS)


async def serve_step(
    runs: RunService,
    key: RunKey,
    content_type: str | None,
    body: bytes,
    *,
    request_id: str | None,
    max_scores: int,
) -> bytes:
    """Decode a step body of any supported media type, apply (or replay) the step exactly
    once, and return the JSON response document. Raises the API's errors
    (:mod:`spard.service.protocol.errors`, :class:`spard.SpardError`) for bad input."""
    # The scores are checked by the engine's one rule (spard.scores.parse_scores): all but K
    # by the decoder, before the run is read; K by the step.
    decoded = decode_step_body(content_type, body, max_scores)
    result = await runs.step(
        key, decoded.step, decoded.scores, decoded.return_advantages, request_id=request_id
    )
    payload = step_payload(key.run_id, result, decoded.prompt_ids)
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
