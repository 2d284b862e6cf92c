"""Run operations over a store: create, read, step exactly once, export/import, delete.

HTTP-free, so the FastAPI routes and local mode are thin shells over it. A replica keeps a
small cache of decoded states keyed by etag: in the common case (a trainer stepping its run) a
step is one store round trip, the compare-and-set commit; a stale cache only costs a retry.

Documents the store keeps ready to serve (a run's summary, its state, history entries) come
back as the JSON the store holds; computed results (a step) come back as engine values.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Literal, NewType, Protocol

import numpy as np
import orjson

import spard
from spard.service.protocol.errors import (
    IdempotencyKeyReusedError,
    RunExistsError,
    RunNotFoundError,
    ServiceUnavailableError,
)
from spard.service.protocol.streaming import StreamingConfig
from spard.service.runs.idempotency import step_once
from spard.service.runs.importing import checked_import
from spard.service.runs.records import (
    created_at_of,
    history_entry,
    run_record,
    sample_weight_summary,
)
from spard.service.runs.store import (
    DEFAULT_MAX_OPEN_STEPS,
    CurrentWeights,
    HistoryRecord,
    RunAbsent,
    RunKey,
    RunMeta,
    Store,
    StoredRun,
    WriteOutcome,
)

_MAX_ATTEMPTS = 16
_CACHE_SIZE = 4096

SummaryJson = NewType("SummaryJson", bytes)
"""A run's summary document (``GET /v1/runs/{id}``), as stored."""
StateJson = NewType("StateJson", bytes)
"""A run's engine state (``spard.State.to_json``), as stored."""

StepOutcomeName = Literal["applied", "replayed", "rejected"]


class RunRecreatedError(Exception):
    """The run was deleted and created again since the caller read its metadata."""


class RunEvents(Protocol):
    """What the run layer reports as it works (the HTTP shell counts it in Prometheus)."""

    def step(self, outcome: StepOutcomeName) -> None:
        """A step was applied, replayed, or rejected by the engine."""

    def observations(self, accepted: int, duplicates: int, late: int) -> None:
        """Observations were recorded."""

    def store_unavailable(self) -> None:
        """A request failed because the store could not be reached."""


class NoEvents:
    """Reports nothing."""

    def step(self, outcome: StepOutcomeName) -> None:
        return None

    def observations(self, accepted: int, duplicates: int, late: int) -> None:
        return None

    def store_unavailable(self) -> None:
        return None


@dataclass(frozen=True)
class RunOptions:
    """The run layer's knobs (the service's settings of the same names)."""

    step_retention: int = 8  # step responses kept per run (replays, commits of late steps)
    max_open_steps: int = DEFAULT_MAX_OPEN_STEPS  # steps holding observations not applied yet
    max_scores: int = 4 * 2**20  # N*G*K of a step, batch or assembled from observations
    cache_bytes: int = 256 * 2**20  # decoded states a replica keeps, by their stored size


@dataclass(frozen=True)
class _Loaded:
    etag: str
    state: spard.State
    created_at: float
    fresh: bool  # read from the store for this request, not from the cache
    meta: RunMeta
    size: int  # bytes of the stored state: what the cache counts


class RunService:
    """Everything the API does to runs, on top of a :class:`Store`."""

    def __init__(
        self, store: Store, options: RunOptions | None = None, events: RunEvents | None = None
    ) -> None:
        self._store = store
        self.options = options or RunOptions()
        self.events: RunEvents = events or NoEvents()
        self._cache: OrderedDict[RunKey, _Loaded] = OrderedDict()
        self._cached_bytes = 0

    async def create(
        self,
        key: RunKey,
        objectives: list[str],
        config: spard.SpardConfig,
        prior_weights: Any,
        streaming: StreamingConfig,
        *,
        request_id: str | None = None,
    ) -> SummaryJson:
        """Create a run; raises :class:`RunExistsError` if the id is taken, unless by a create
        with the same ``request_id`` (a retry whose first attempt went through): that one gets
        the run's summary if it asks for the same run, else :class:`IdempotencyKeyReusedError`."""
        state = spard.init(objectives, config, prior_weights=prior_weights)
        now = time.time()
        digest = None if request_id is None else _create_digest(state, streaming)
        meta = RunMeta(secrets.token_hex(12), state.objectives, streaming, request_id, digest)
        record = run_record(key.run_id, state, meta, created_at=now)
        if await self._store.create(key, record, meta) is WriteOutcome.EXISTS:
            if request_id is not None:
                with contextlib.suppress(RunNotFoundError):
                    existing = await self.meta(key, reload=True)
                    if existing.created_by == request_id:
                        if existing.create_digest not in (None, digest):
                            raise IdempotencyKeyReusedError(
                                f"Idempotency-Key {request_id!r} created run {key.run_id!r} "
                                "with another body: use a new key for another run",
                                field="Idempotency-Key",
                            )
                        return await self.summary(key)
            raise RunExistsError(f"run {key.run_id!r} already exists", field="run_id")
        self._remember(key, _Loaded(record.etag, state, now, True, meta, len(record.state)))
        return SummaryJson(record.summary)

    async def meta(self, key: RunKey, *, reload: bool = False) -> RunMeta:
        """The run's unchanging metadata (cached by this replica)."""
        cached = self._cache.get(key)
        if cached is not None and not reload:
            return cached.meta
        return (await self._load(key)).meta

    async def summary(self, key: RunKey) -> SummaryJson:
        """The run's summary document."""
        summary = await self._store.load_summary(key)
        if isinstance(summary, RunAbsent):
            raise _not_found(key)
        return SummaryJson(summary)

    async def list_runs(self, tenant: str, limit: int) -> list[SummaryJson]:
        """Summaries of up to ``limit`` of ``tenant``'s runs, most recently written first."""
        found = await self._store.recent_runs(0.0, limit, tenant)
        # The store's order is its index's, which a Redis replica refreshes only every few
        # seconds per run: the summaries' own times order them exactly.
        summaries = [SummaryJson(run.summary) for run in found]
        return sorted(summaries, key=lambda s: -float(orjson.loads(s)["updated_at"]))

    async def weights(self, key: RunKey) -> CurrentWeights:
        """The run's etag and weights document (a cheap read)."""
        found = await self._store.load_weights(key)
        if isinstance(found, RunAbsent):
            raise _not_found(key)
        return found

    async def step(
        self,
        key: RunKey,
        step: int | None,
        scores: np.ndarray[Any, Any],
        return_advantages: bool,
        *,
        request_id: str | None = None,
        incarnation: str | None = None,
    ) -> spard.StepResult:
        """Apply (or replay) one step exactly once, whatever the concurrency; ``request_id``
        (the client's idempotency key) is stored with the step, so a retry of a step without an
        index replays it rather than applying the batch again. With ``incarnation``, the step
        applies only to that incarnation of the run (observations of a run deleted meanwhile
        must not reach its successor): :class:`RunRecreatedError` otherwise."""
        try:
            result = await self._step(key, step, scores, return_advantages, request_id, incarnation)
        except spard.SpardError:
            self.events.step("rejected")
            raise
        self.events.step("replayed" if result.replayed else "applied")
        return result

    async def _step(
        self,
        key: RunKey,
        step: int | None,
        scores: np.ndarray[Any, Any],
        return_advantages: bool,
        request_id: str | None,
        incarnation: str | None,
    ) -> spard.StepResult:
        cached = self._cache.get(key)
        loaded = replace(cached, fresh=False) if cached else await self._load(key)
        for _ in range(_MAX_ATTEMPTS):
            if incarnation is not None and loaded.meta.incarnation != incarnation:
                if loaded.fresh:
                    raise RunRecreatedError(key.run_id)
                loaded = await self._load(key)
                continue
            try:
                result, state = step_once(
                    loaded.state,
                    scores,
                    step,
                    return_advantages=return_advantages,
                    request_id=request_id,
                )
            except (spard.StepOrderError, spard.StepConflictError, spard.InputError):
                if loaded.fresh:
                    raise
                # The cache may predate an import, or hold a run deleted and created again by
                # another replica (other objectives): only the stored run can refuse a step.
                loaded = await self._load(key)
                continue
            if result.replayed:
                if loaded.fresh:
                    return result
                loaded = await self._load(key)
                continue
            weights = sample_weight_summary(result.sample_weights, result.zero_signal)
            record = run_record(
                key.run_id, state, loaded.meta, created_at=loaded.created_at, weights=weights
            )
            entry = HistoryRecord(
                result.step, orjson.dumps(history_entry(result, weights, applied_at=time.time()))
            )
            outcome = await self._store.commit(key, loaded.etag, record, entry)
            if outcome is WriteOutcome.APPLIED:
                size = len(record.state)
                cached = replace(loaded, etag=record.etag, state=state, fresh=False, size=size)
                self._remember(key, cached)
                return result
            if outcome is WriteOutcome.MISSING:
                self._forget(key)
                raise _not_found(key)
            # Read the run afresh, metadata included: the run may have been deleted and
            # created again (other objectives, other streaming settings) by another replica.
            loaded = await self._load(key)
        raise ServiceUnavailableError(
            f"run {key.run_id!r} is contended: step not applied after {_MAX_ATTEMPTS} tries"
        )

    async def export_state(self, key: RunKey) -> StateJson:
        """The run's engine state as stored (``spard.State.to_json``)."""
        stored = await self._store.load(key)
        if isinstance(stored, RunAbsent):
            raise _not_found(key)
        return StateJson(stored.record.state)

    async def import_state(self, key: RunKey, data: Any) -> SummaryJson:
        """Replace the run's state with an exported one (same objectives); history after the
        imported last step is dropped, since the trainer will send those steps again."""
        state = checked_import(data)
        # The stored state is not decoded: an import must also repair a run whose state no
        # longer loads (the metadata and creation time are all it needs).
        stored = await self._store.load(key)
        if isinstance(stored, RunAbsent):
            raise _not_found(key)
        meta = stored.meta
        if state.objectives != meta.objectives:
            raise spard.InputError(
                f"state.objectives {list(state.objectives)} differ from the run's "
                f"{list(meta.objectives)}",
                field="state.objectives",
            )
        created_at = created_at_of(stored.record.summary)
        record = run_record(key.run_id, state, meta, created_at=created_at)
        if await self._store.replace(key, record) is WriteOutcome.MISSING:
            raise _not_found(key)
        self._remember(key, _Loaded(record.etag, state, created_at, False, meta, len(record.state)))
        return SummaryJson(record.summary)

    async def delete(self, key: RunKey) -> None:
        """Delete a run and its history."""
        self._forget(key)
        if await self._store.delete(key) is WriteOutcome.MISSING:
            raise _not_found(key)

    async def history(self, key: RunKey, after: int | None, limit: int) -> list[HistoryRecord]:
        """A page of history entries with step > ``after``."""
        entries = await self._store.history(key, after, limit)
        if isinstance(entries, RunAbsent):
            raise _not_found(key)
        return entries

    async def _load(self, key: RunKey) -> _Loaded:
        stored = await self._store.load(key)
        if isinstance(stored, RunAbsent):
            self._forget(key)
            raise _not_found(key)
        loaded = _decode(stored)
        self._remember(key, loaded)
        return loaded

    def _remember(self, key: RunKey, loaded: _Loaded) -> None:
        """Cache a decoded state, within a budget of bytes as well as runs: a few runs with
        large states must not grow a replica without bound. A state over the whole budget
        is not kept (every step of its run reads it from the store)."""
        self._forget(key)
        if loaded.size > self.options.cache_bytes:
            return
        self._cache[key] = loaded
        self._cached_bytes += loaded.size
        while len(self._cache) > _CACHE_SIZE or self._cached_bytes > self.options.cache_bytes:
            self._forget(next(iter(self._cache)))

    def _forget(self, key: RunKey) -> None:
        dropped = self._cache.pop(key, None)
        if dropped is not None:
            self._cached_bytes -= dropped.size

    @property
    def cached_bytes(self) -> int:
        """Bytes of the stored states this replica keeps decoded."""
        return self._cached_bytes


def _decode(stored: StoredRun) -> _Loaded:
    state = spard.State.from_dict(orjson.loads(stored.record.state))
    created_at = created_at_of(stored.record.summary)
    return _Loaded(
        stored.record.etag, state, created_at, True, stored.meta, len(stored.record.state)
    )


def _create_digest(state: spard.State, streaming: StreamingConfig) -> str:
    """What a create asked for, in canonical form: two bodies meaning the same run (names
    normalised, prior weights scaled, config defaults filled) have the same digest."""
    document = [
        state.objectives,
        state.config.model_dump(mode="json"),
        state.prior_weights.tolist(),
        streaming.model_dump(mode="json"),
    ]
    return hashlib.sha256(orjson.dumps(document)).hexdigest()[:32]


def _not_found(key: RunKey) -> RunNotFoundError:
    return RunNotFoundError(f"run {key.run_id!r} not found", field="run_id")
