"""What a request must pass before any work: the caller's tenant (``Authorization: Bearer
<key>``, each key mapped to one tenant) and the body limit.

Framework-free, so the HTTP app's request gate and dependencies and the step's front door
(:mod:`spard.service.runs.step_request`) decide them with the same functions.
"""

from __future__ import annotations

import hmac
from typing import Any

from spard.service.protocol.errors import PayloadTooLargeError, UnauthorizedError
from spard.service.settings import LOCAL_TENANT, Settings, is_loopback


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


def required_for(settings: Settings, server: Any) -> bool:
    """The settings' answer, checked against the address the server really listens on: the
    no-auth default for a local in-memory service holds only while it is bound to loopback
    (``uvicorn --host 0.0.0.0`` bypasses ``SPARD_HOST``)."""
    if settings.auth_required:
        return True
    if settings.auth_disabled:
        return False
    return server is not None and not is_loopback(str(server[0]))


def check_body_size(size: int, settings: Settings) -> None:
    """:func:`body_too_large` for a body of ``size`` bytes over ``max_body_bytes``."""
    if size > settings.max_body_bytes:
        raise body_too_large(settings)


def body_too_large(settings: Settings) -> PayloadTooLargeError:
    """The error of a body over ``max_body_bytes`` (declared, streamed or given whole)."""
    message = f"request body exceeds the limit of {settings.max_body_bytes} bytes"
    return PayloadTooLargeError(message, field="body")
