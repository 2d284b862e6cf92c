"""Run operations over a store: create, read, step exactly once, export/import, delete.

HTTP-free, so the routes stay thin. A replica keeps a small cache of decoded states keyed by
etag: in the common case (a trainer stepping its run) a step is one Redis round trip, the
compare-and-set commit; a stale cache only costs a retry.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import orjson

import spard
from spard.service.protocol.errors import RunExistsError, RunNotFoundError, ServiceUnavailableError
from spard.service.protocol.streaming import StreamingConfig
from spard.service.runs.records import (
    SampleWeightSummary,
    history_entry,
    run_summary,
    sample_weight_summary,
)
from spard.service.runs.store import (
    CommitOutcome,
    HistoryEntry,
    RunKey,
    RunRecord,
    Store,
)
from spard.service.settings import Settings

_MAX_ATTEMPTS = 16
_CACHE_SIZE = 4096


@dataclass(frozen=True)
class RunMeta:
    """What never changes in a run's life: checked by observations without decoding state."""

    incarnation: str  # tells this run from an earlier one with the same id
    objectives: tuple[str, ...]
    streaming: StreamingConfig
    created_by: str | None = None  # the create request's idempotency key, if it sent one

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "incarnation": self.incarnation,
                "objectives": self.objectives,
                "streaming": self.streaming.model_dump(mode="json"),
                "created_by": self.created_by,
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> RunMeta:
        meta = orjson.loads(data)
        streaming = StreamingConfig.model_validate(meta["streaming"])
        return cls(
            meta["incarnation"], tuple(meta["objectives"]), streaming, meta.get("created_by")
        )


@dataclass(frozen=True)
class _Loaded:
    etag: str
    state: spard.State
    created_at: float
    fresh: bool  # read from the store for this request, not from the cache
    meta: RunMeta


class RunService:
    """Everything the routes do to runs, on top of a :class:`Store`."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._cache: OrderedDict[RunKey, _Loaded] = OrderedDict()

    async def create(
        self,
        key: RunKey,
        objectives: list[str],
        config: spard.SpardConfig,
        prior_weights: Any,
        streaming: StreamingConfig,
        *,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Create a run; raises :class:`RunExistsError` if the id is taken, unless by a create
        with the same ``request_id`` (a retry whose first attempt went through): that one gets
        the run's summary."""
        state = spard.init(objectives, config, prior_weights=prior_weights)
        now = time.time()
        meta = RunMeta(secrets.token_hex(12), state.objectives, streaming, request_id)
        record = replace(_record(key, state, meta, created_at=now), meta=meta.to_json())
        if not await self.store.create(key, record, meta.incarnation):
            if request_id is not None:
                with contextlib.suppress(RunNotFoundError):
                    if (await self.meta(key, reload=True)).created_by == request_id:
                        return orjson.loads(await self.summary(key))  # type: ignore[no-any-return]
            raise RunExistsError(f"run {key.run_id!r} already exists", field="run_id")
        self._remember(key, _Loaded(record.etag, state, now, True, meta))
        return orjson.loads(record.summary)  # type: ignore[no-any-return]

    async def meta(self, key: RunKey, *, reload: bool = False) -> RunMeta:
        """The run's unchanging metadata (cached by this replica)."""
        cached = self._cache.get(key)
        if cached is not None and not reload:
            return cached.meta
        return (await self._load(key)).meta

    async def summary(self, key: RunKey) -> bytes:
        """The stored JSON summary of a run."""
        summary = await self.store.load_summary(key)
        if summary == b"":  # written by an earlier version: upgrade it, then read again
            await self._load(key)
            summary = await self.store.load_summary(key)
        if not summary:
            raise _not_found(key)
        return summary

    async def step(
        self,
        key: RunKey,
        step: int | None,
        scores: np.ndarray[Any, Any],
        return_advantages: bool,
        *,
        request_id: str | None = None,
    ) -> spard.StepResult:
        """Apply (or replay) one step exactly once, whatever the concurrency; ``request_id``
        (the client's idempotency key) is stored with the step, so a retry of a step without an
        index replays it rather than applying the batch again."""
        cached = self._cache.get(key)
        loaded = replace(cached, fresh=False) if cached else await self._load(key)
        for _ in range(_MAX_ATTEMPTS):
            try:
                result, state = spard.step(
                    loaded.state,
                    scores,
                    step,
                    return_advantages=return_advantages,
                    request_id=request_id,
                )
            except (spard.StepOrderError, spard.StepConflictError):
                if loaded.fresh:
                    raise
                loaded = await self._load(key)  # the cache may predate an import
                continue
            if result.replayed:
                if loaded.fresh:
                    return result
                loaded = await self._load(key)
                continue
            weights = sample_weight_summary(result.sample_weights, result.zero_signal)
            record = _record(key, state, loaded.meta, created_at=loaded.created_at, weights=weights)
            payload = orjson.dumps(history_entry(result, weights, applied_at=time.time()))
            entry = HistoryEntry(step=result.step, payload=payload)
            outcome, current = await self.store.commit(key, loaded.etag, record, entry)
            if outcome is CommitOutcome.APPLIED:
                self._remember(key, replace(loaded, etag=record.etag, state=state, fresh=False))
                return result
            if outcome is CommitOutcome.MISSING or current is None:
                self._cache.pop(key, None)
                raise _not_found(key)
            # Read the run afresh, metadata included: the run may have been deleted and
            # created again (other objectives, other streaming settings) by another replica.
            loaded = await self._load(key)
        raise ServiceUnavailableError(
            f"run {key.run_id!r} is contended: step not applied after {_MAX_ATTEMPTS} tries"
        )

    async def export_state(self, key: RunKey) -> bytes:
        """The run's engine state as JSON (``spard.State.to_dict``)."""
        record = await self.store.load(key)
        if record is None:
            raise _not_found(key)
        return record.state

    async def import_state(self, key: RunKey, data: Any) -> dict[str, Any]:
        """Replace the run's state with an exported one (same objectives); history after the
        imported last step is dropped, since the trainer will send those steps again."""
        state = spard.State.from_dict(data)
        loaded = await self._load(key)
        if state.objectives != loaded.state.objectives:
            raise spard.InputError(
                f"state.objectives {list(state.objectives)} differ from the run's "
                f"{list(loaded.state.objectives)}",
                field="state.objectives",
            )
        record = _record(key, state, loaded.meta, created_at=loaded.created_at)
        if not await self.store.replace(key, record, state.last_step):
            raise _not_found(key)
        self._remember(key, _Loaded(record.etag, state, loaded.created_at, False, loaded.meta))
        return orjson.loads(record.summary)  # type: ignore[no-any-return]

    async def delete(self, key: RunKey) -> None:
        """Delete a run and its history."""
        self._cache.pop(key, None)
        if not await self.store.delete(key):
            raise _not_found(key)

    async def history(self, key: RunKey, after: int | None, limit: int) -> list[bytes]:
        """A page of history entries (JSON) with step > ``after``."""
        entries = await self.store.history(key, after, limit)
        if entries is None:
            raise _not_found(key)
        return entries

    async def _load(self, key: RunKey) -> _Loaded:
        for _ in range(_MAX_ATTEMPTS):
            record = await self.store.load(key)
            if record is None:
                self._cache.pop(key, None)
                raise _not_found(key)
            if record.meta:
                loaded = self._decode(record, RunMeta.from_json(record.meta))
            else:
                upgraded = await self._upgrade(key, record)
                if upgraded is None:
                    continue  # written or upgraded meanwhile: read it again
                loaded = upgraded
            self._remember(key, loaded)
            return loaded
        raise ServiceUnavailableError(
            f"run {key.run_id!r} is contended: not upgraded after {_MAX_ATTEMPTS} tries"
        )

    async def _upgrade(self, key: RunKey, record: RunRecord) -> _Loaded | None:
        """Derive what an earlier version did not store (meta with default streaming, an
        incarnation, last_step, the weights) from the run's state; the etag stays, so writers
        holding it are not disturbed."""
        loaded = self._decode(record, RunMeta(secrets.token_hex(12), (), StreamingConfig()))
        meta = replace(loaded.meta, objectives=loaded.state.objectives)
        fields = _record(key, loaded.state, meta, created_at=loaded.created_at, etag=record.etag)
        fields = replace(fields, meta=meta.to_json())
        if not await self.store.upgrade(key, fields, meta.incarnation):
            return None
        return replace(loaded, meta=meta)

    @staticmethod
    def _decode(record: RunRecord, meta: RunMeta) -> _Loaded:
        state = spard.State.from_dict(orjson.loads(record.state))
        created_at = float(orjson.loads(record.summary)["created_at"])
        return _Loaded(record.etag, state, created_at, True, meta)

    def _remember(self, key: RunKey, loaded: _Loaded) -> None:
        self._cache[key] = loaded
        self._cache.move_to_end(key)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)


def _not_found(key: RunKey) -> RunNotFoundError:
    return RunNotFoundError(f"run {key.run_id!r} not found", field="run_id")


def _record(
    key: RunKey,
    state: spard.State,
    meta: RunMeta,
    *,
    created_at: float,
    weights: SampleWeightSummary | None = None,
    etag: str | None = None,
) -> RunRecord:
    summary = run_summary(
        key.run_id, state, created_at=created_at, updated_at=time.time(), weights=weights
    )
    summary["streaming"] = meta.streaming.model_dump(mode="json")
    etag = etag if etag is not None else secrets.token_hex(12)
    current = {
        "run_id": key.run_id,
        "etag": etag,
        "step": state.last_step,
        "reward_weights": summary["reward_weights"],
    }
    return RunRecord(
        state=state.to_json(),
        summary=orjson.dumps(summary),
        etag=etag,
        last_step=state.last_step,
        weights=orjson.dumps(current),
    )
