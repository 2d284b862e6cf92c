"""spard.service: the stateless HTTP face of the engine (FastAPI over Redis).

``create_app(settings)`` builds the app; ``spard serve`` runs it with uvicorn.
"""

from spard.service.app import create_app
from spard.service.settings import Settings

__all__ = ["Settings", "create_app"]
