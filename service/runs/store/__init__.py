"""Where run state lives: Redis for production, process memory for ``spard serve`` alone.

:mod:`~spard.service.runs.store.base` is the interface, ``memory`` and ``redis`` implement it
with the same semantics (the Redis one in Lua, one atomic round trip per write).
"""

from spard.service.runs.store.base import (
    CurrentWeights,
    HistoryRecord,
    RunKey,
    RunMeta,
    RunRecord,
    RunRecreatedError,
    Store,
    StoredRun,
    StoreOptions,
    StoreUnavailableError,
    WriteStatus,
)

__all__ = [
    "CurrentWeights",
    "HistoryRecord",
    "RunKey",
    "RunMeta",
    "RunRecord",
    "RunRecreatedError",
    "Store",
    "StoreOptions",
    "StoreUnavailableError",
    "StoredRun",
    "WriteStatus",
]
