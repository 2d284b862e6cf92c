"""Where run state lives: Redis for production, process memory for ``spard serve`` alone."""

from __future__ import annotations

from spard.service.settings import Settings
from spard.service.store.base import (
    CommitOutcome,
    HistoryEntry,
    RunKey,
    RunRecord,
    RunRecreatedError,
    Store,
    StoreUnavailableError,
)


def make_store(settings: Settings) -> Store:
    """The store the settings ask for."""
    if settings.redis_url:
        from spard.service.store.redis import RedisStore

        return RedisStore(settings)
    from spard.service.store.memory import MemoryStore

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
