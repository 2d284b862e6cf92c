"""The store interface: what the service needs, with exactly-once writes by compare-and-set."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

import orjson

from spard.service.protocol.errors import StoreUnavailableError as StoreUnavailableError
from spard.service.protocol.streaming import StreamingConfig
from spard.service.runs.ledger import ObservationItem, ObserveLimits, ObserveOutcome, SealedStep


@dataclass(frozen=True)
class RunKey:
    """A run, scoped to its tenant: one tenant can never address another's runs."""

    tenant: str
    run_id: str

    @property
    def hash_tag(self) -> str:
        """Redis Cluster hash tag: every key of a run lands in one slot."""
        return f"{{{self.tenant}:{self.run_id}}}"


@dataclass(frozen=True)
class RunMeta:
    """What never changes in a run's life, stored once at creation: observations check it
    without decoding the state."""

    incarnation: str  # tells this run from an earlier one with the same id
    objectives: tuple[str, ...]
    streaming: StreamingConfig
    created_by: str | None = None  # the create request's idempotency key, if it sent one
    create_digest: str | None = None  # what that create asked for (a retry must ask the same)

    def to_json(self) -> bytes:
        """The stored form."""
        return orjson.dumps(
            {
                "incarnation": self.incarnation,
                "objectives": self.objectives,
                "streaming": self.streaming.model_dump(mode="json"),
                "created_by": self.created_by,
                "create_digest": self.create_digest,
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> RunMeta:
        """Inverse of :meth:`to_json`."""
        meta = orjson.loads(data)
        streaming = StreamingConfig.model_validate(meta["streaming"])
        return cls(
            meta["incarnation"],
            tuple(meta["objectives"]),
            streaming,
            meta.get("created_by"),
            meta.get("create_digest"),  # absent in runs created before it was kept
        )


@dataclass(frozen=True)
class RunRecord:
    """A run as every write stores it: the engine state, documents for cheap reads, and a
    write token.

    ``etag`` changes on every write (a random token, not a counter, so a run deleted and
    created again never matches a token cached for its predecessor).
    """

    state: bytes  # JSON of spard.State.to_json()
    summary: bytes  # JSON served by GET /v1/runs/{id}
    etag: str
    last_step: int | None  # mirrors the state, for scripts that cannot decode it
    weights: bytes  # JSON served by GET /v1/runs/{id}/weights


@dataclass(frozen=True)
class StoredRun:
    """A run read back: its latest record and its creation-time metadata."""

    record: RunRecord
    meta: RunMeta


@dataclass(frozen=True)
class HistoryRecord:
    """One applied step as stored for the history endpoint."""

    step: int
    payload: bytes  # JSON of one history entry


@dataclass(frozen=True)
class CurrentWeights:
    """The run's write token and its weights document (a cheap read)."""

    etag: str
    weights: bytes  # JSON served by GET /v1/runs/{id}/weights


class WriteStatus(enum.Enum):
    """How a compare-and-set write ended."""

    APPLIED = "applied"
    STALE = "stale"  # another writer got there first: reload and retry
    MISSING = "missing"  # the run was deleted (or expired) meanwhile


@dataclass(frozen=True)
class StoreOptions:
    """What every store needs to know besides where it is."""

    history_retention: int = 2000  # history entries kept per run
    run_ttl_s: int = 30 * 86400  # idle runs expire after this; 0: never


class RunRecreatedError(Exception):
    """The run was deleted and created again since the caller read its metadata."""


class Store(Protocol):
    """Async storage of runs. Every method raises :class:`StoreUnavailableError` on outage.

    A run written by an earlier version of the service is upgraded by the store as it is read:
    callers only ever see this version's records.
    """

    async def create(self, key: RunKey, record: RunRecord, meta: RunMeta) -> bool:
        """Store a new run; False if the id already exists."""
        ...

    async def load(self, key: RunKey) -> StoredRun | None:
        """The run, or None if it does not exist."""
        ...

    async def load_summary(self, key: RunKey) -> bytes | None:
        """Just the summary document of a run (cheap), or None."""
        ...

    async def load_weights(self, key: RunKey) -> CurrentWeights | None:
        """The run's etag and weights document (cheap), or None."""
        ...

    async def commit(
        self, key: RunKey, expected_etag: str, record: RunRecord, entry: HistoryRecord
    ) -> WriteStatus:
        """Write ``record`` and add ``entry`` if the stored etag is still ``expected_etag``."""
        ...

    async def replace(self, key: RunKey, record: RunRecord) -> bool:
        """Overwrite a run's record (import); history and observations after
        ``record.last_step`` are dropped. False if the run does not exist."""
        ...

    async def delete(self, key: RunKey) -> bool:
        """Delete a run and its history; False if it did not exist."""
        ...

    async def observe(
        self,
        key: RunKey,
        incarnation: str,
        step: int,
        items: list[ObservationItem],
        limits: ObserveLimits,
    ) -> ObserveOutcome:
        """Record observations of one step (-1: the open step) atomically, refusing a new step
        past ``limits.max_open_steps`` not yet applied ("full") and a request that could grow
        the step's batch past ``limits.max_cells`` ("too_large"); see
        :class:`spard.service.runs.ledger.ObservationLedger` for the semantics."""
        ...

    async def seal(
        self, key: RunKey, incarnation: str, step: int, retention: int
    ) -> SealedStep | None:
        """Close ``step`` for commit and return what arrived; None if no such run. Raises
        :class:`RunRecreatedError` if the run is no longer ``incarnation``."""
        ...

    async def history(
        self, key: RunKey, after: int | None, limit: int
    ) -> list[HistoryRecord] | None:
        """History entries with step > ``after``, in step order; None if no such run."""
        ...

    async def recent_runs(
        self, since: float, limit: int, tenant: str | None = None
    ) -> list[tuple[RunKey, bytes]]:
        """Summaries of up to ``limit`` runs written since ``since`` (unix time), most recently
        written first; only ``tenant``'s when given (filtered before the limit applies)."""
        ...

    async def ping(self) -> None:
        """Raise :class:`StoreUnavailableError` unless the store answers."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
