"""The store interface: what the run layer needs, with exactly-once writes by compare-and-set.

Both stores (:class:`~spard.service.runs.store.memory.MemoryStore`,
:class:`~spard.service.runs.store.redis.RedisStore`, standalone or Cluster) implement it;
every value and outcome is one of :mod:`spard.service.runs.store.types`.
"""

from __future__ import annotations

from typing import Protocol

from spard.service.runs.store.types import (
    CurrentWeights,
    HistoryRecord,
    ObservationItem,
    ObserveLimits,
    ObserveOutcome,
    RecentRun,
    RunAbsent,
    RunKey,
    RunMeta,
    RunRecord,
    SealedStep,
    StoredRun,
    WriteOutcome,
)


class Store(Protocol):
    """Async storage of runs. Every method raises
    :class:`~spard.service.protocol.errors.StoreUnavailableError` on outage.

    A read answers its value or ``RunAbsent.MISSING``; a write its :class:`WriteOutcome`.
    A run written by an earlier version of the service is upgraded by the store where it is
    read (see :class:`~spard.service.runs.store.types.LegacyRun`): callers only ever see this
    version's records.
    """

    async def create(self, key: RunKey, record: RunRecord, meta: RunMeta) -> WriteOutcome:
        """Store a new run: APPLIED, or EXISTS if the id is taken."""
        ...

    async def load(self, key: RunKey) -> StoredRun | RunAbsent:
        """The run."""
        ...

    async def load_summary(self, key: RunKey) -> bytes | RunAbsent:
        """Just the summary document of a run (cheap)."""
        ...

    async def load_weights(self, key: RunKey) -> CurrentWeights | RunAbsent:
        """The run's etag and weights document (cheap)."""
        ...

    async def commit(
        self, key: RunKey, expected_etag: str, record: RunRecord, entry: HistoryRecord
    ) -> WriteOutcome:
        """Write ``record`` and add ``entry`` if the stored etag is still ``expected_etag``:
        APPLIED, STALE (it is not) or MISSING."""
        ...

    async def replace(self, key: RunKey, record: RunRecord) -> WriteOutcome:
        """Overwrite a run's record (import); history and observations after
        ``record.last_step`` are dropped. APPLIED or MISSING."""
        ...

    async def delete(self, key: RunKey) -> WriteOutcome:
        """Delete a run, its history and observations: APPLIED or MISSING."""
        ...

    async def observe(
        self,
        key: RunKey,
        incarnation: str,
        step: int | None,
        items: list[ObservationItem],
        limits: ObserveLimits,
    ) -> ObserveOutcome | RunAbsent:
        """Record observations of one step (None: the open step) atomically, refusing a new step
        past ``limits.max_open_steps`` not yet applied (FULL) and a request that could grow
        the step's batch past ``limits.max_cells`` (TOO_LARGE); see
        :class:`spard.service.runs.store.ledger.ObservationLedger` for the semantics.
        RECREATED if the run is no longer ``incarnation``."""
        ...

    async def seal(
        self, key: RunKey, incarnation: str, step: int, retention: int
    ) -> SealedStep | RunAbsent:
        """Close ``step`` for commit and return what arrived; RECREATED if the run is no longer
        ``incarnation``."""
        ...

    async def history(
        self, key: RunKey, after: int | None, limit: int
    ) -> list[HistoryRecord] | RunAbsent:
        """History entries with step > ``after``, in step order."""
        ...

    async def recent_runs(
        self, since: float, limit: int, tenant: str | None = None
    ) -> list[RecentRun]:
        """Up to ``limit`` runs written since ``since`` (unix time), most recently written
        first; only ``tenant``'s when given (filtered before the limit applies)."""
        ...

    async def ping(self) -> None:
        """Raise ``StoreUnavailableError`` unless the store answers."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
