"""Runs: create, list, read, delete, history, and state export/import."""

from __future__ import annotations

import hashlib
import secrets
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Query, Response

from spard.config import MAX_STEP, config_from_overrides
from spard.service.http.dependencies import CurrentSettings, IdempotencyKey, Run, Runs, Tenant
from spard.service.protocol.codec import JSON
from spard.service.protocol.documents import HistoryPage, RunList, RunSummary
from spard.service.protocol.errors import BadRequestError
from spard.service.protocol.schemas import (
    BODY_ERRORS,
    ERROR_RESPONSES,
    CreateRunRequest,
    error_statuses,
    state_schema,
)
from spard.service.protocol.streaming import streaming_config
from spard.service.runs.store import RunKey

router = APIRouter(prefix="/v1/runs", tags=["runs"], responses=ERROR_RESPONSES)


@router.post(
    "",
    status_code=201,
    response_model=RunSummary,
    responses=error_statuses(
        {409: "the run id exists (created by another request)", **BODY_ERRORS}
    ),
)
async def create_run(
    body: CreateRunRequest,
    tenant: Tenant,
    runs: Runs,
    settings: CurrentSettings,
    request_id: IdempotencyKey,
) -> Response:
    """Create a run over named objectives, with a strategy and config overrides. A create sent
    again with the same ``Idempotency-Key`` gets the run it created, not 409."""
    if len(body.objectives) > settings.max_objectives:
        raise BadRequestError(
            f"objectives: {len(body.objectives)} given; the limit is {settings.max_objectives}",
            field="objectives",
        )
    config = config_from_overrides(
        body.config,
        strategy=body.strategy,
        defaults={"replay_window": settings.step_retention},
    )
    run_id = body.run_id or generated_run_id(request_id)
    key = RunKey(tenant=tenant, run_id=run_id)
    streaming = streaming_config(body.streaming)
    summary = await runs.create(
        key, list(body.objectives), config, body.prior_weights, streaming, request_id=request_id
    )
    return Response(summary, status_code=201, media_type=JSON)


def generated_run_id(request_id: str | None) -> str:
    """The id of a run created without one: derived from the idempotency key when there is
    one, so a retry finds the run its first attempt created instead of making another."""
    if request_id is None:
        return f"run-{secrets.token_hex(8)}"
    return f"run-{hashlib.sha256(request_id.encode()).hexdigest()[:16]}"


@router.get("", response_model=RunList)
async def list_runs(
    tenant: Tenant,
    runs: Runs,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """The caller's runs (its API key's tenant), most recently written first. On Redis, those
    written within the last day: the index of active runs forgets older ones until their next
    step."""
    summaries = await runs.list_runs(tenant, limit)
    return Response(b'{"runs":[%s]}' % b",".join(summaries), media_type=JSON)


@router.get("/{run_id}", response_model=RunSummary)
async def get_run(run: Run, runs: Runs) -> Response:
    """The run's config, last applied step, current weights and per-objective stats."""
    return Response(await runs.summary(run), media_type=JSON)


@router.delete("/{run_id}", status_code=204)
async def delete_run(run: Run, runs: Runs) -> Response:
    """Delete the run, its state and its history."""
    await runs.delete(run)
    return Response(status_code=204)


@router.get("/{run_id}/history", response_model=HistoryPage)
async def get_history(
    run: Run,
    runs: Runs,
    after: Annotated[
        int | None, Query(ge=-1, le=MAX_STEP, description="entries with step > after")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Per-step weights and stats, oldest first, a page at a time (for plots)."""
    entries = await runs.history(run, after, limit)
    next_after = entries[-1].step if len(entries) == limit else None
    body = b'{"run_id":%s,"entries":[%s],"next_after":%s}' % (
        orjson.dumps(run.run_id),
        b",".join(entry.payload for entry in entries),
        orjson.dumps(next_after),
    )
    return Response(body, media_type=JSON)


@router.get(
    "/{run_id}/state",
    responses={200: {"content": {JSON: {"schema": state_schema()}}, "description": "the state"}},
)
async def export_state(run: Run, runs: Runs) -> Response:
    """The curriculum state, to save with a trainer checkpoint (``spard.State.to_dict``)."""
    return Response(await runs.export_state(run), media_type=JSON)


@router.put(
    "/{run_id}/state",
    response_model=RunSummary,
    responses=error_statuses(BODY_ERRORS),
    openapi_extra={
        "requestBody": {"required": True, "content": {JSON: {"schema": state_schema()}}}
    },
)
async def import_state(
    run: Run,
    runs: Runs,
    state: Annotated[dict[str, Any], Body(description="a state from GET .../state")],
) -> Response:
    """Resume from a saved state: the run continues exactly as the saved one would have."""
    return Response(await runs.import_state(run, state), media_type=JSON)
