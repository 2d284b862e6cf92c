"""The embedded store: runs in this process's memory (one process, nothing to install).

Every method runs without awaiting in between, so on one event loop each is atomic, which is
all the compare-and-set semantics of the Redis store need.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field

from spard.service.runs.store.ledger import ObservationLedger
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
    StoreOptions,
    WriteOutcome,
)


@dataclass
class _Run:
    record: RunRecord
    updated: float
    meta: RunMeta
    observations: ObservationLedger = field(default_factory=ObservationLedger)
    history_steps: list[int] = field(default_factory=list)
    history: dict[int, bytes] = field(default_factory=dict)


class MemoryStore:
    """In-process store with the same semantics as :class:`RedisStore` (TTL included)."""

    def __init__(self, options: StoreOptions | None = None) -> None:
        options = options or StoreOptions()
        self._runs: dict[RunKey, _Run] = {}
        self._history_retention = options.history_retention
        self._ttl = options.run_ttl_s

    def _live(self, key: RunKey) -> _Run | None:
        run = self._runs.get(key)
        if run is not None and self._ttl and time.time() - run.updated > self._ttl:
            del self._runs[key]
            return None
        return run

    def _incarnation(self, key: RunKey, incarnation: str) -> _Run | RunAbsent:
        """The live run if it is still ``incarnation`` (not deleted and created anew)."""
        run = self._live(key)
        if run is None:
            return RunAbsent.MISSING
        if run.meta.incarnation != incarnation:
            return RunAbsent.RECREATED
        return run

    async def create(self, key: RunKey, record: RunRecord, meta: RunMeta) -> WriteOutcome:
        if self._live(key) is not None:
            return WriteOutcome.EXISTS
        self._runs[key] = _Run(record, time.time(), meta)
        return WriteOutcome.APPLIED

    async def load(self, key: RunKey) -> StoredRun | RunAbsent:
        run = self._live(key)
        return RunAbsent.MISSING if run is None else StoredRun(run.record, run.meta)

    async def load_weights(self, key: RunKey) -> CurrentWeights | RunAbsent:
        run = self._live(key)
        if run is None:
            return RunAbsent.MISSING
        return CurrentWeights(run.record.etag, run.record.weights)

    async def observe(
        self,
        key: RunKey,
        incarnation: str,
        step: int | None,
        items: list[ObservationItem],
        limits: ObserveLimits,
    ) -> ObserveOutcome | RunAbsent:
        run = self._incarnation(key, incarnation)
        if isinstance(run, RunAbsent):
            return run
        run.updated = time.time()
        return run.observations.observe(step, items, run.record.last_step, limits)

    async def seal(
        self, key: RunKey, incarnation: str, step: int, retention: int
    ) -> SealedStep | RunAbsent:
        run = self._incarnation(key, incarnation)
        if isinstance(run, RunAbsent):
            return run
        return run.observations.seal(step, run.record.last_step, retention)

    async def load_summary(self, key: RunKey) -> bytes | RunAbsent:
        run = self._live(key)
        return RunAbsent.MISSING if run is None else run.record.summary

    async def commit(
        self, key: RunKey, expected_etag: str, record: RunRecord, entry: HistoryRecord
    ) -> WriteOutcome:
        run = self._live(key)
        if run is None:
            return WriteOutcome.MISSING
        if run.record.etag != expected_etag:
            return WriteOutcome.STALE
        run.record, run.updated = record, time.time()
        if entry.step not in run.history:
            bisect.insort(run.history_steps, entry.step)
        run.history[entry.step] = entry.payload
        while len(run.history_steps) > self._history_retention:
            del run.history[run.history_steps.pop(0)]
        return WriteOutcome.APPLIED

    async def replace(self, key: RunKey, record: RunRecord) -> WriteOutcome:
        run = self._live(key)
        if run is None:
            return WriteOutcome.MISSING
        run.record, run.updated = record, time.time()
        run.observations.drop_after(record.last_step)
        keep_until = -1 if record.last_step is None else record.last_step
        for step in [s for s in run.history_steps if s > keep_until]:
            run.history_steps.remove(step)
            del run.history[step]
        return WriteOutcome.APPLIED

    async def delete(self, key: RunKey) -> WriteOutcome:
        found = self._runs.pop(key, None) is not None
        return WriteOutcome.APPLIED if found else WriteOutcome.MISSING

    async def history(
        self, key: RunKey, after: int | None, limit: int
    ) -> list[HistoryRecord] | RunAbsent:
        run = self._live(key)
        if run is None:
            return RunAbsent.MISSING
        start = 0 if after is None else bisect.bisect_right(run.history_steps, after)
        steps = run.history_steps[start : start + limit]
        return [HistoryRecord(step, run.history[step]) for step in steps]

    async def recent_runs(
        self, since: float, limit: int, tenant: str | None = None
    ) -> list[RecentRun]:
        keys = [k for k in list(self._runs) if tenant is None or k.tenant == tenant]
        live = [(k, r) for k in keys if (r := self._live(k)) and r.updated >= since]
        live.sort(key=lambda item: item[1].updated, reverse=True)
        return [RecentRun(key, run.record.summary) for key, run in live[:limit]]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
