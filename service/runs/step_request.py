"""One step request, from its body to its response document: the step route of the HTTP
shell and local mode's step both run this, so the hot path has one implementation."""

from __future__ import annotations

import orjson

from spard.service.protocol.codec import decode_step_body
from spard.service.runs.records import step_payload
from spard.service.runs.run_service import RunService
from spard.service.runs.store import RunKey


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
    # The scores are checked once, by the engine (spard.scores.parse_scores), against the run's K.
    decoded = decode_step_body(content_type, body, max_scores)
    result = await runs.step(
        key, decoded.step, decoded.scores, decoded.return_advantages, request_id=request_id
    )
    payload = step_payload(key.run_id, result, decoded.prompt_ids)
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
