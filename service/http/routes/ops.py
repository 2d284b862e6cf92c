"""Operations: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import PlainTextResponse

from spard.service.http.auth import metrics_scope
from spard.service.http.dependencies import CurrentSettings, RunStore
from spard.service.http.errors import error_response
from spard.service.http.metrics import STORE_ERRORS, render_metrics
from spard.service.protocol.errors import StoreUnavailableError
from spard.service.protocol.schemas import error_statuses

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (liveness)."""
    return {"status": "ok"}


@router.get("/readyz", responses=error_statuses({503: "the store is unreachable"}))
async def readyz(store: RunStore) -> Response:
    """The run store answers (readiness)."""
    try:
        await store.ping()
    except StoreUnavailableError as exc:
        STORE_ERRORS.inc()
        return error_response(503, f"not ready: {exc}", None)
    return Response(b'{"status":"ready"}', media_type="application/json")


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **error_statuses({401: "an API key that is not known"}),
    },
)
async def metrics(
    store: RunStore,
    settings: CurrentSettings,
    tenants: Annotated[str | None, Depends(metrics_scope)],
) -> Response:
    """Prometheus exposition: request latency, step outcomes, store errors; per-run gauges
    (tenant, run, objective) only for the caller's tenant, or every tenant with
    ``SPARD_METRICS_KEY``, when auth is on."""
    body, content_type = await render_metrics(store, settings, tenants)
    return Response(body, media_type=content_type)
