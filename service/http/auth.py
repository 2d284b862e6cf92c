"""API keys: ``Authorization: Bearer <key>``, each key mapped to one tenant."""

from __future__ import annotations

import hmac

from fastapi import Request

from spard.service.runs.admission import required_for, tenant_of
from spard.service.settings import Settings


async def tenant_for(request: Request) -> str:
    """FastAPI dependency: the tenant of the request's API key."""
    settings: Settings = request.app.state.settings
    header = request.headers.get("authorization", "")
    return tenant_of(settings, header, request.scope.get("server"))


def auth_required(request: Request) -> bool:
    """The settings' answer, checked against the address the server really listens on."""
    settings: Settings = request.app.state.settings
    return required_for(settings, request.scope.get("server"))


async def metrics_scope(request: Request) -> str | None:
    """FastAPI dependency: whose per-run series ``/metrics`` may show.

    ``ALL_TENANTS`` without auth or with ``SPARD_METRICS_KEY``; a tenant for its API key; None
    (process metrics only) for a request without credentials. A wrong key is 401.
    """
    settings: Settings = request.app.state.settings
    if not auth_required(request):
        return ALL_TENANTS
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key:
        return None
    metrics_key = settings.metrics_key
    if metrics_key and hmac.compare_digest(metrics_key.encode(), key.strip().encode()):
        return ALL_TENANTS
    return await tenant_for(request)


ALL_TENANTS = "*"  # not a valid tenant name (settings refuse it), so it cannot collide
