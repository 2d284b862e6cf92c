"""Streaming: observations from reward workers, step commits, and cheap weight reads."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Path, Request, Response

from spard.config import MAX_STEP
from spard.service.http.dependencies import CurrentSettings, Observations, Run, Runs
from spard.service.protocol.codec import JSON, read_json
from spard.service.protocol.documents import CommitResponse, ObserveResponse, WeightsResponse
from spard.service.protocol.errors import PayloadTooLargeError
from spard.service.protocol.schemas import (
    BODY_ERRORS,
    ERROR_RESPONSES,
    CommitRequest,
    Observation,
    ObservationBatch,
    error_statuses,
    inline_definitions,
)
from spard.service.protocol.streaming import parse_observations
from spard.service.runs.records import commit_payload

router = APIRouter(prefix="/v1/runs", tags=["streaming"], responses=ERROR_RESPONSES)


def _parse_observations(body: bytes, limit: int) -> list[Observation]:
    observations = parse_observations(read_json(body))
    if len(observations) > limit:
        raise PayloadTooLargeError(
            f"observations: {len(observations)} in one request; the limit is {limit}",
            field="observations",
        )
    return observations


@router.post(
    "/{run_id}/observations",
    response_model=ObserveResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": {
                        "anyOf": [
                            inline_definitions(ObservationBatch.model_json_schema()),
                            Observation.model_json_schema(),
                        ]
                    }
                }
            },
        }
    },
    responses=error_statuses(
        {
            **BODY_ERRORS,
            409: "one more open step than SPARD_MAX_OPEN_STEPS, or the run was recreated",
            413: "the body, or the observations in one request, over the limit",
        }
    ),
)
async def post_observations(
    request: Request, run: Run, observing: Observations, settings: CurrentSettings
) -> Response:
    """Record scores as reward workers produce them: one observation, or
    ``{"observations": [...]}``. Idempotent per (step, group_id, rollout_index); a step
    already committed makes its observations ``late`` (reported, not stored)."""
    observations = _parse_observations(await request.body(), settings.max_observations)
    report = await observing.observe(run, observations)
    return Response(orjson.dumps(report.to_dict()), media_type=JSON)


@router.post(
    "/{run_id}/steps/{step}/commit",
    response_model=CommitResponse,
    responses=error_statuses({**BODY_ERRORS, 409: "nothing to commit, or the step conflicts"}),
)
async def commit_step(
    run: Run,
    observing: Observations,
    step: Annotated[int, Path(ge=0, le=MAX_STEP, description="the step to close")],
    body: CommitRequest | None = None,
) -> Response:
    """Close a step and run the engine once on the observations that arrived (groups ordered
    by id). Sending it again, to any replica, returns the stored result (``replayed``)."""
    options = body or CommitRequest()
    commit = await observing.commit(run, step, return_advantages=options.return_advantages)
    payload = commit_payload(run.run_id, commit.result, commit.batch, commit.committed_before)
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), media_type=JSON)


@router.get(
    "/{run_id}/weights",
    response_model=WeightsResponse,
    responses={304: {"description": "unchanged since the ETag given in If-None-Match"}},
)
async def get_weights(
    run: Run,
    runs: Runs,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The current reward weights; cheap, with an ETag (send it back in If-None-Match to get
    304 while nothing changed)."""
    current = await runs.weights(run)
    tag = f'"{current.etag}"'
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if if_none_match is not None and _matches(if_none_match, tag):
        return Response(status_code=304, headers=headers)
    return Response(current.weights, media_type=JSON, headers=headers)


def _matches(if_none_match: str, tag: str) -> bool:
    candidates = [part.strip().removeprefix("W/") for part in if_none_match.split(",")]
    return "*" in candidates or tag in candidates
