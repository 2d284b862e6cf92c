"""spard.service: the stateless HTTP face of the engine (FastAPI over Redis or memory).

``create_app(settings)`` builds the app; ``spard serve`` runs it with uvicorn. Layers:
:mod:`spard.service.protocol` (documents, shared with the SDK), :mod:`spard.service.runs`
(the HTTP-free run layer and its stores), :mod:`spard.service.http` (the FastAPI shell);
:mod:`spard.service.cli` is the ``spard`` command (``replay`` needs only the engine).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spard.service.http.app import create_app
    from spard.service.settings import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    # Lazy: the SDK imports spard.service.protocol with the light install (no fastapi).
    if name == "create_app":
        from spard.service.http.app import create_app

        return create_app
    if name == "Settings":
        from spard.service.settings import Settings

        return Settings
    raise AttributeError(f"module 'spard.service' has no attribute {name!r}")
