"""API keys: ``Authorization: Bearer <key>``, each key mapped to one tenant."""

from __future__ import annotations

import hmac

from fastapi import Request

from spard.service.errors import UnauthorizedError
from spard.service.settings import LOCAL_TENANT, Settings


async def tenant_for(request: Request) -> str:
    """FastAPI dependency: the tenant of the request's API key."""
    settings: Settings = request.app.state.settings
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() == "bearer" and key:
        for known, tenant in settings.api_keys.items():
            if hmac.compare_digest(known.encode(), key.strip().encode()):
                return tenant
        raise UnauthorizedError("unknown API key", field="Authorization")
    if settings.auth_required:
        raise UnauthorizedError(
            "missing API key: send 'Authorization: Bearer <key>'", field="Authorization"
        )
    return LOCAL_TENANT
