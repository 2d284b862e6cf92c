"""Where run state lives: Redis for production, process memory for ``spard serve`` alone."""

from __future__ import annotations

from spard.service.protocol.errors import StoreUnavailableError
from spard.service.runs.store.base import (
    CommitOutcome,
    HistoryEntry,
    RunKey,
    RunRecord,
    RunRecreatedError,
    Store,
)
from spard.service.settings import Settings


def make_store(settings: Settings) -> Store:
    """The store the settings ask for."""
    if settings.redis_url:
        from spard.service.runs.store.redis import RedisStore

        return RedisStore(settings)
    from spard.service.runs.store.memory import MemoryStore

    return MemoryStore(settings)


__all__ = [
    "CommitOutcome",
    "HistoryEntry",
    "RunKey",
    "RunRecord",
    "RunRecreatedError",
    "Store",
    "StoreUnavailableError",
    "make_store",
]
