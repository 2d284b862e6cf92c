"""spard.service: the stateless HTTP face of the engine (FastAPI over Redis)."""
