"""Where run state lives: Redis for production, process memory for ``spard serve`` alone.

:mod:`~spard.service.runs.store.types` holds every value and outcome, and
:mod:`~spard.service.runs.store.base` the interface; ``memory`` and ``redis`` implement it with
the same semantics (the Redis one in Lua, one atomic round trip per write). Nothing here
imports the run layer above it.
"""

from spard.service.runs.store.base import Store
from spard.service.runs.store.types import (
    DEFAULT_MAX_OPEN_STEPS,
    CurrentWeights,
    HistoryRecord,
    LegacyRun,
    LegacyUpgrade,
    ObservationItem,
    ObserveLimits,
    ObserveOutcome,
    ObserveStatus,
    RecentRun,
    RunAbsent,
    RunKey,
    RunMeta,
    RunRecord,
    SealedStep,
    StoredRun,
    StoreOptions,
    StoreUnavailableError,
    WriteOutcome,
)

__all__ = [
    "DEFAULT_MAX_OPEN_STEPS",
    "CurrentWeights",
    "HistoryRecord",
    "LegacyRun",
    "LegacyUpgrade",
    "ObservationItem",
    "ObserveLimits",
    "ObserveOutcome",
    "ObserveStatus",
    "RecentRun",
    "RunAbsent",
    "RunKey",
    "RunMeta",
    "RunRecord",
    "SealedStep",
    "Store",
    "StoreOptions",
    "StoreUnavailableError",
    "StoredRun",
    "WriteOutcome",
]
