"""The store's values and outcomes: what goes into a store and every answer that comes back.

One module for both stores (and their callers): frozen dataclasses for values, enums for
outcomes. A store answers a read with its value or a :class:`RunAbsent`, a write with a
:class:`WriteOutcome`; no bare bool, no None, no status strings.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from spard.service.protocol.errors import StoreUnavailableError as StoreUnavailableError
from spard.service.protocol.streaming import StreamingConfig

# Steps holding observations that are not applied yet, per run: each commit of a later step
# tries them in order, so the bound keeps that cost (and the stored observations) bounded.
DEFAULT_MAX_OPEN_STEPS = 64


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
class LegacyRun:
    """A run as the first releases stored it (before streaming): no metadata, no weights
    document, no ``last_step``. Stores hand it to a :data:`LegacyUpgrade` once, on first read."""

    state: bytes
    summary: bytes
    etag: str


LegacyUpgrade = Callable[[RunKey, LegacyRun], StoredRun]
"""The run layer's rule for a :class:`LegacyRun`: this version's record (same state, same
etag) and fresh metadata. A store that may hold such runs is given it at construction."""


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


@dataclass(frozen=True)
class RecentRun:
    """A run written recently, with its summary document as stored."""

    key: RunKey
    summary: bytes


class RunAbsent(enum.Enum):
    """Why a store answered a read of a run without the run."""

    MISSING = "missing"  # no such run: never created, deleted, or expired
    RECREATED = "recreated"  # deleted and created again since the caller read its incarnation


class WriteOutcome(enum.Enum):
    """How a write ended."""

    APPLIED = "applied"
    EXISTS = "exists"  # create: the id is taken
    STALE = "stale"  # compare-and-set: another writer got there first; reload and retry
    MISSING = "missing"  # the run does not exist (deleted or expired meanwhile)


@dataclass(frozen=True)
class StoreOptions:
    """What every store needs to know besides where it is."""

    history_retention: int = 2000  # history entries kept per run
    run_ttl_s: int = 30 * 86400  # idle runs expire after this; 0: never


@dataclass(frozen=True)
class ObservationItem:
    """One observation as a store takes it (already validated and encoded)."""

    group: str  # group_key(group_id)
    rollout_index: int | None  # None: assign the next free index
    observation_id: str | None
    scores: bytes  # encode_scores(...)


@dataclass(frozen=True)
class ObserveLimits:
    """What bounds the observations of one step: ``group_size`` (0 when unset), the run's open
    steps, and ``max_cells``, the most groups x rollouts the committed batch may have
    (SPARD_MAX_SCORES // K): past it a commit would allocate without bound."""

    group_size: int = 0
    max_open_steps: int = DEFAULT_MAX_OPEN_STEPS
    max_cells: int = 2**62


class ObserveStatus(enum.Enum):
    """What a store did with the observations of one step of a run it holds."""

    OK = "ok"  # stored (each observation: accepted, duplicate, conflict or overflow)
    LATE = "late"  # the step is sealed or applied: nothing stored
    FULL = "full"  # one more open step than the run may hold: nothing stored
    TOO_LARGE = "too_large"  # the step's batch could grow past max_cells: nothing stored


@dataclass(frozen=True)
class ObserveOutcome:
    """What a store did with the observations of one step.

    FULL names in ``open_before`` the open steps, so commit_on_next_step can commit them
    first; TOO_LARGE names the ``groups`` x ``width`` cells the batch could grow to.
    ``conflicts`` / ``overflow`` index the observations passed in; ``open_before`` lists
    steps before ``step`` holding observations that are not applied yet.
    """

    status: ObserveStatus
    step: int  # the step they went to (resolved when sent without one)
    accepted: int = 0
    duplicates: int = 0
    complete_groups: int = 0
    conflicts: list[int] = field(default_factory=list)
    overflow: list[int] = field(default_factory=list)
    open_before: list[int] = field(default_factory=list)
    groups: int = 0
    width: int = 0


@dataclass(frozen=True)
class SealedStep:
    """A step closed for commit: what arrived, and the open steps before it."""

    observed: dict[tuple[str, int], bytes]
    last_step: int | None
    open_before: list[int]
