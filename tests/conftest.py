"""Shared fixtures: hypothesis profiles, a real throwaway redis-server, in-process service."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings

from tests.servers import RedisServer

settings.register_profile(
    "default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files that hold a ``slow`` test run first (in their own order, their other tests with
    them, so module fixtures are made once). Under ``-n 2`` a two-minute test collected last
    starts when the other worker is nearly done and runs alone: started first, it overlaps
    with everything else. ``-m "not slow"`` (``make test-quick``) leaves them out."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)  # stable: collection order otherwise


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server per test process, on a free port, with AOF so it can be restarted."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def service_settings(store: str, redis_server: RedisServer | None, **overrides: Any) -> Any:
    """Settings for one test: its own key prefix, so tests never share runs."""
    from spard.service import Settings

    options: dict[str, Any] = {"auth_disabled": True, "key_prefix": f"t{uuid.uuid4().hex[:10]}"}
    if store == "redis":
        assert redis_server is not None
        options["redis_url"] = redis_server.url
    return Settings(**{**options, **overrides})


@contextlib.asynccontextmanager
async def service_client(settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client wired to the app in-process, with the app's lifespan running."""
    from spard.service import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://spard.test") as client:
            yield client


@pytest.fixture(params=["memory", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def client(
    store_kind: str, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a fresh app on the parametrised store (the same tests run on both)."""
    redis = request.getfixturevalue("redis_server") if store_kind == "redis" else None
    async with service_client(service_settings(store_kind, redis)) as http:
        yield http
