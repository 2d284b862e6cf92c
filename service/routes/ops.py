"""Operations: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from spard.service.dependencies import CurrentSettings, Runs
from spard.service.errors import error_response
from spard.service.metrics import render_metrics
from spard.service.store import StoreUnavailableError

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (liveness)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "the store is unreachable"}})
async def readyz(runs: Runs) -> Response:
    """The run store answers (readiness)."""
    try:
        await runs.store.ping()
    except StoreUnavailableError as exc:
        return error_response(503, f"not ready: {exc}", None)
    return Response(b'{"status":"ready"}', media_type="application/json")


@router.get("/metrics")
async def metrics(runs: Runs, settings: CurrentSettings) -> Response:
    """Prometheus exposition: request latency, step outcomes, store errors, per-run gauges."""
    body, content_type = await render_metrics(runs.store, settings)
    return Response(body, media_type=content_type)
