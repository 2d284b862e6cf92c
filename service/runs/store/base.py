"""The store interface: what the service needs, with exactly-once writes by compare-and-set."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from spard.service.runs.ledger import ObservationItem, ObserveOutcome, SealedStep


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
class RunRecord:
    """A run as stored: the engine state, a summary for cheap reads, and a write token.

    ``etag`` changes on every write (a random token, not a counter, so a run deleted and
    created again never matches a token cached for its predecessor).
    """

    state: bytes  # JSON of spard.State.to_dict()
    summary: bytes  # JSON of the run summary served by GET /v1/runs/{id}
    etag: str
    last_step: int | None = None  # mirrors the state, for scripts that cannot decode it
    weights: bytes = b"{}"  # JSON served by GET /v1/runs/{id}/weights
    meta: bytes = b""  # JSON RunMeta, written at creation only (empty in writes after it)


@dataclass(frozen=True)
class HistoryEntry:
    """One applied step, for the history endpoint."""

    step: int
    payload: bytes  # JSON


class CommitOutcome(enum.Enum):
    """How a compare-and-set write ended."""

    APPLIED = "applied"
    STALE = "stale"  # another writer got there first: reload and retry
    MISSING = "missing"  # the run was deleted (or expired) meanwhile


class RunRecreatedError(Exception):
    """The run was deleted and created again since the caller read its metadata."""


class Store(Protocol):
    """Async storage of runs. Every method raises :class:`StoreUnavailableError` on outage."""

    async def create(self, key: RunKey, record: RunRecord, incarnation: str) -> bool:
        """Store a new run; False if the id already exists. ``incarnation`` tells this run
        from an earlier one of the same id (observations check it)."""
        ...

    async def load(self, key: RunKey) -> RunRecord | None:
        """The run, or None if it does not exist. A run written by an earlier version comes
        back with empty ``meta``: :meth:`upgrade` it before use."""
        ...

    async def upgrade(self, key: RunKey, record: RunRecord, incarnation: str) -> bool:
        """Give a run written by an earlier version what this one reads (``record``'s summary,
        last_step, weights and meta, and ``incarnation``), if it still has ``record.etag`` and
        was not upgraded meanwhile; False otherwise."""
        ...

    async def load_summary(self, key: RunKey) -> bytes | None:
        """Just the summary of a run (cheap), or None; empty if the run needs an upgrade."""
        ...

    async def commit(
        self, key: RunKey, expected_etag: str, record: RunRecord, entry: HistoryEntry
    ) -> tuple[CommitOutcome, RunRecord | None]:
        """Write ``record`` and append ``entry`` if the stored etag is still ``expected_etag``.

        On STALE the current record comes back so the caller can retry without a new read.
        """
        ...

    async def replace(self, key: RunKey, record: RunRecord, last_step: int | None) -> bool:
        """Overwrite a run's state (import); history after ``last_step`` is dropped."""
        ...

    async def delete(self, key: RunKey) -> bool:
        """Delete a run and its history; False if it did not exist."""
        ...

    async def load_weights(self, key: RunKey) -> tuple[str, bytes] | None:
        """The run's etag and current weights JSON (cheap), or None; the weights are empty if
        the run needs an upgrade."""
        ...

    async def observe(
        self,
        key: RunKey,
        incarnation: str,
        step: int,
        items: list[ObservationItem],
        group_size: int,
        max_open_steps: int,
    ) -> ObserveOutcome:
        """Record observations of one step (-1: the open step) atomically, refusing a new step
        past ``max_open_steps`` not yet applied ("full"); see
        :class:`spard.service.runs.ledger.ObservationLedger` for the semantics."""
        ...

    async def seal(
        self, key: RunKey, incarnation: str, step: int, retention: int
    ) -> SealedStep | None:
        """Close ``step`` for commit and return what arrived; None if no such run. Raises
        :class:`RunRecreatedError` if the run is no longer ``incarnation``."""
        ...

    async def history(self, key: RunKey, after: int | None, limit: int) -> list[bytes] | None:
        """History entries with step > ``after``, in step order; None if no such run."""
        ...

    async def recent_runs(self, since: float, limit: int) -> list[tuple[RunKey, bytes]]:
        """Summaries of up to ``limit`` runs written since ``since`` (unix time)."""
        ...

    async def ping(self) -> None:
        """Raise :class:`StoreUnavailableError` unless the store answers."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
