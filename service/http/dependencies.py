"""FastAPI dependencies shared by the routers.

All are ``async def``: FastAPI runs plain ``def`` dependencies in a thread pool, a thread hop
per dependency per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path, Request

from spard.service.http.auth import tenant_for
from spard.service.protocol.schemas import RUN_ID_PATTERN
from spard.service.protocol.wire import IDEMPOTENCY_HEADER, request_id_from_header
from spard.service.runs.observation_service import ObservationService
from spard.service.runs.run_service import RunService
from spard.service.runs.store import RunKey, Store
from spard.service.settings import Settings


async def get_runs(request: Request) -> RunService:
    """The run service of this app."""
    runs: RunService = request.app.state.runs
    return runs


async def get_observations(request: Request) -> ObservationService:
    """The observation service of this app."""
    observations: ObservationService = request.app.state.observations
    return observations


async def get_store(request: Request) -> Store:
    """The run store of this app (for what concerns the store itself: readiness, metrics)."""
    store: Store = request.app.state.store
    return store


async def get_settings(request: Request) -> Settings:
    """The settings of this app."""
    settings: Settings = request.app.state.settings
    return settings


async def run_key(
    run_id: Annotated[str, Path(pattern=RUN_ID_PATTERN, description="the run's id")],
    tenant: Annotated[str, Depends(tenant_for)],
) -> RunKey:
    """The addressed run, within the caller's tenant."""
    return RunKey(tenant=tenant, run_id=run_id)


Runs = Annotated[RunService, Depends(get_runs)]
Observations = Annotated[ObservationService, Depends(get_observations)]
RunStore = Annotated[Store, Depends(get_store)]
CurrentSettings = Annotated[Settings, Depends(get_settings)]
Tenant = Annotated[str, Depends(tenant_for)]
Run = Annotated[RunKey, Depends(run_key)]


async def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_HEADER,
            description="any unique string per logical request (the SDK sends one): a retry "
            "with the same key is answered from the first attempt and never applied twice",
        ),
    ] = None,
) -> str | None:
    """The request's validated idempotency key, if it sent one."""
    return request_id_from_header(key)


IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]
