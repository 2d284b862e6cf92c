"""API keys: ``Authorization: Bearer <key>``, each key mapped to one tenant."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import Request

from spard.service.protocol.errors import UnauthorizedError
from spard.service.settings import LOCAL_TENANT, Settings, is_loopback


async def tenant_for(request: Request) -> str:
    """FastAPI dependency: the tenant of the request's API key."""
    settings: Settings = request.app.state.settings
    header = request.headers.get("authorization", "")
    return tenant_of(settings, header, request.scope.get("server"))


def tenant_of(settings: Settings, authorization: str, server: Any) -> str:
    """The tenant of an ``Authorization`` header; :class:`UnauthorizedError` for an unknown
    key, or for none where auth is required. ``server``: the ASGI scope's (host, port)."""
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() == "bearer" and key:
        for known, tenant in settings.api_keys.items():
            if hmac.compare_digest(known.encode(), key.strip().encode()):
                return tenant
        if not settings.api_keys and not required_for(settings, server):
            raise UnauthorizedError(
                "unknown API key: this service runs without auth and has no keys; "
                "send no Authorization header (SpardClient without api_key)",
                field="Authorization",
            )
        raise UnauthorizedError("unknown API key", field="Authorization")
    if required_for(settings, server):
        raise UnauthorizedError(
            "missing API key: send 'Authorization: Bearer <key>'", field="Authorization"
        )
    return LOCAL_TENANT


def auth_required(request: Request) -> bool:
    """The settings' answer, checked against the address the server really listens on."""
    settings: Settings = request.app.state.settings
    return required_for(settings, request.scope.get("server"))


def required_for(settings: Settings, server: Any) -> bool:
    """The settings' answer, checked against the address the server really listens on: the
    no-auth default for a local in-memory service holds only while it is bound to loopback
    (``uvicorn --host 0.0.0.0`` bypasses ``SPARD_HOST``)."""
    if settings.auth_required:
        return True
    if settings.auth_disabled:
        return False
    return server is not None and not is_loopback(str(server[0]))


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
