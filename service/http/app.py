"""The FastAPI application: stateless; every run lives in the store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import spard
from spard.service.http.errors import install_error_handlers
from spard.service.http.metrics import PrometheusEvents
from spard.service.http.middleware import RequestGateMiddleware, TimingMiddleware
from spard.service.http.routes import observations, ops, runs, steps
from spard.service.http.routes.docs import install_docs
from spard.service.http.routes.page import install_page
from spard.service.http.routes.steps import StepDoorMiddleware
from spard.service.runs.legacy import upgrade_legacy_run
from spard.service.runs.observation_service import ObservationService
from spard.service.runs.run_service import RunOptions, RunService
from spard.service.runs.step_request import StepDoor
from spard.service.runs.store import Store, StoreOptions
from spard.service.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (default: read from ``SPARD_*`` environment variables)."""
    settings = settings if settings is not None else Settings()  # validated as it is made

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = make_store(settings)
        options = RunOptions(settings.step_retention, settings.max_open_steps, settings.max_scores)
        runs = RunService(store, options, PrometheusEvents())
        # Each part is given the store (see http/dependencies.py): none reaches into another.
        app.state.store = store
        app.state.runs = runs
        app.state.observations = ObservationService(store, runs)
        app.state.step_door = StepDoor(runs, settings)
        try:
            yield
        finally:
            await store.close()

    app = FastAPI(
        title="SPARD",
        version=spard.__version__,
        summary="Self-paced reward curriculum for multi-objective GRPO",
        lifespan=lifespan,
        docs_url=None,  # served by routes.docs from a package, not from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(runs.router)
    app.include_router(steps.router)
    app.include_router(observations.router)
    app.include_router(ops.router)
    install_docs(app)
    install_page(app)
    # The last added runs first: timing, then the gate, then the step's door.
    app.add_middleware(StepDoorMiddleware)
    app.add_middleware(RequestGateMiddleware, settings=settings)
    app.add_middleware(TimingMiddleware)
    return app


def make_store(settings: Settings) -> Store:
    """The store the settings ask for."""
    options = StoreOptions(settings.history_retention, settings.run_ttl_s)
    if settings.redis_url:
        from spard.service.runs.store.redis import RedisStore

        return RedisStore(
            settings.redis_url,
            options,
            upgrade=upgrade_legacy_run,
            cluster=settings.redis_cluster,
            timeout_s=settings.redis_timeout_s,
            key_prefix=settings.key_prefix,
            password=settings.redis_password,
        )
    from spard.service.runs.store.memory import MemoryStore

    return MemoryStore(options)
