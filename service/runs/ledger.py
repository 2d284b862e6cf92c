"""The observations of a run in memory: the reference semantics that the Redis store's Lua
script mirrors (see :mod:`spard.service.protocol.streaming` for the rules)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from spard.errors import InputError

# Steps holding observations that are not applied yet, per run: each commit of a later step
# tries them in order, so the bound keeps that cost (and the stored observations) bounded.
DEFAULT_MAX_OPEN_STEPS = 64


@dataclass(frozen=True)
class ObservationItem:
    """One observation as a store takes it (already validated and encoded)."""

    group: str  # group_key(group_id)
    rollout_index: int  # -1: assign the next free index
    observation_id: str  # "" when absent
    scores: bytes  # encode_scores(...)


@dataclass(frozen=True)
class ObserveLimits:
    """What bounds the observations of one step: ``group_size`` (0 when unset), the run's open
    steps, and ``max_cells``, the most groups x rollouts the committed batch may have
    (SPARD_MAX_SCORES // K): past it a commit would allocate without bound."""

    group_size: int = 0
    max_open_steps: int = DEFAULT_MAX_OPEN_STEPS
    max_cells: int = 2**62


@dataclass(frozen=True)
class ObserveOutcome:
    """What a store did with the observations of one step.

    ``status``: "ok"; "late" (the step is sealed or applied: nothing stored); "full" (the step
    would be one more open step than the run may hold: nothing stored; ``open_before`` says
    which, so commit_on_next_step can commit them first); "too_large" (the step's
    batch could grow to ``groups`` x ``width`` cells, over ``max_cells``: nothing stored);
    "missing" (no such run); "reload" (the run was recreated: the caller's metadata is stale).
    ``conflicts`` / ``overflow`` index the observations passed in; ``open_before`` lists
    steps before ``step`` holding observations that are not applied yet.
    """

    status: Literal["ok", "late", "full", "too_large", "missing", "reload"]
    step: int = -1
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


@dataclass
class ObserveReport:
    """The answer to one observations request; indexes refer to the request's list."""

    accepted: int = 0
    duplicates: int = 0
    conflicts: list[int] = field(default_factory=list)
    overflow: list[int] = field(default_factory=list)
    late: list[int] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    committed: list[int] = field(default_factory=list)

    def add(self, outcome: ObserveOutcome, positions: list[int]) -> None:
        """Merge a store's outcome for the observations at ``positions``."""
        if outcome.status == "late":
            self.late += positions
        self.accepted += outcome.accepted
        self.duplicates += outcome.duplicates
        self.conflicts += [positions[i] for i in outcome.conflicts]
        self.overflow += [positions[i] for i in outcome.overflow]
        if outcome.step not in self.steps:
            self.steps.append(outcome.step)

    def to_dict(self) -> dict[str, object]:
        """The body of an observations response."""
        return dict(self.__dict__)


def too_many_open_steps(step: int, limit: int) -> str:
    """Why observations of ``step`` were refused: the run holds ``limit`` unapplied steps."""
    return (
        f"step {step} would be one more than the {limit} steps this run may hold with "
        "observations not yet applied (SPARD_MAX_OPEN_STEPS): commit them first"
    )


def batch_too_large(
    outcome: ObserveOutcome, num_objectives: int, max_scores: int, stored: list[int]
) -> str:
    """Why a request's observations for one step were refused: they could grow the step's
    batch past the limit. Each step of a request is stored at once or not at all, in step
    order, so the message names the request's steps stored before this one."""
    cells = outcome.groups * outcome.width * num_objectives
    kept = (
        f"; its observations for earlier steps {stored} were stored, send only the rest again"
        if stored
        else "; nothing of this request was stored"
    )
    return (
        f"observations: step {outcome.step} could then assemble {outcome.groups} groups x "
        f"{outcome.width} rollouts x {num_objectives} objectives = {cells} scores; the limit "
        f"is {max_scores} (SPARD_MAX_SCORES): none of its observations was stored{kept}"
    )


def check_step_count(steps: int, limit: int) -> None:
    """Refuse a request whose observations name more than ``limit`` steps."""
    if steps > limit:
        raise InputError(
            f"observations: one request names {steps} steps; the limit is {limit} "
            "(SPARD_MAX_OPEN_STEPS)",
            field="observations",
        )


def nothing_to_commit(step: int, last_step: int | None) -> str:
    """Why a step with no kept observations cannot be committed."""
    if last_step is not None and step <= last_step:
        return (
            f"step {step} is already applied and no observations of it are kept "
            "(applied as a batch step, or older than the retention)"
        )
    return f"no observations arrived for step {step}"


def parse_observation_field(name: str) -> tuple[str, int] | None:
    """``o|<group>|<rollout>`` -> (group, rollout); None for bookkeeping fields."""
    if not name.startswith("o|"):
        return None
    group, _, rollout = name[2:].rpartition("|")
    return group, int(rollout)


class _StepBook:
    def __init__(self) -> None:
        self.observed: dict[tuple[str, int], bytes] = {}
        self.counts: dict[str, int] = {}
        self.by_id: dict[tuple[str, str], int] = {}
        self.complete = 0
        self.width = 0  # largest stored rollout index + 1
        self.next_free: dict[str, int] = {}  # where the next assignment starts probing
        self.sealed = False

    def bound_after(self, items: Sequence[ObservationItem], group_size: int) -> tuple[int, int]:
        """(groups, width) that storing ``items`` could give this step at most: the assembled
        batch is groups x width x K. An upper bound computed before anything is stored (an
        assigned index is at most the largest occupied one plus its group's assignments), so a
        request is taken or refused whole."""
        new_groups = {item.group for item in items if item.group not in self.counts}
        width = self.width
        assigned: dict[str, int] = {}  # per group: an index is assigned within its group
        for item in items:
            if item.rollout_index >= 0:
                width = max(width, item.rollout_index + 1)
            elif not (item.observation_id and (item.group, item.observation_id) in self.by_id):
                assigned[item.group] = assigned.get(item.group, 0) + 1
        most = max(assigned.values(), default=0)
        return len(self.counts) + len(new_groups), group_size or width + most


class ObservationLedger:
    """The observations of one run, in memory: the reference semantics of the Redis script."""

    def __init__(self) -> None:
        self._steps: dict[int, _StepBook] = {}

    def observe(
        self,
        step: int,
        items: Sequence[ObservationItem],
        last_step: int | None,
        limits: ObserveLimits,
    ) -> ObserveOutcome:
        """Record ``items`` for ``step`` (-1: the open step). A step that would be more than
        ``limits.max_open_steps`` not yet applied is refused ("full"); a request that could
        grow the step's batch past ``limits.max_cells`` is refused whole ("too_large").

        Sent without a step, an observation whose id is already stored in an earlier kept step
        is a duplicate: a client retried a request whose answer was lost while that step was
        committed, and it must not count again in the next step.
        """
        last = -1 if last_step is None else last_step
        resolved = step < 0
        if resolved:
            step = last + 1
            while step in self._steps and self._steps[step].sealed:
                step += 1
        book = self._steps.get(step)
        if step <= last or (book is not None and book.sealed):
            return ObserveOutcome("late", step=step)
        if book is None and sum(s > last for s in self._steps) >= limits.max_open_steps:
            open_steps = sorted(s for s in self._steps if last < s < step)
            return ObserveOutcome("full", step=step, open_before=open_steps)
        group_size = limits.group_size
        groups, width = (book or _StepBook()).bound_after(items, group_size)
        if groups * width > limits.max_cells:
            return ObserveOutcome("too_large", step=step, groups=groups, width=width)
        earlier = [book for s, book in self._steps.items() if s < step] if resolved else []
        book = self._steps.setdefault(step, _StepBook())
        accepted = duplicates = 0
        conflicts: list[int] = []
        overflow: list[int] = []
        for position, item in enumerate(items):
            identity = (item.group, item.observation_id)
            if item.observation_id and any(identity in known.by_id for known in earlier):
                duplicates += 1  # a resend of one stored in an earlier step (see observe)
                continue
            rollout = item.rollout_index
            if rollout < 0:
                known = book.by_id.get(identity)
                if item.observation_id and known is not None:
                    rollout = known
                else:
                    # From the count, or past the indices an earlier assignment found taken
                    # (they stay taken): each index is probed once per step, so a request
                    # costs linear time however the explicit indices lie.
                    start = book.counts.get(item.group, 0)
                    rollout = max(start, book.next_free.get(item.group, 0))
                    while (item.group, rollout) in book.observed:
                        rollout += 1
                    book.next_free[item.group] = rollout
            previous = book.observed.get((item.group, rollout))
            if previous is None:
                if group_size and rollout >= group_size:
                    overflow.append(position)
                    continue
                book.observed[(item.group, rollout)] = item.scores
                book.width = max(book.width, rollout + 1)
                if item.observation_id:
                    book.by_id[identity] = rollout
                book.counts[item.group] = book.counts.get(item.group, 0) + 1
                accepted += 1
                if group_size and book.counts[item.group] == group_size:
                    book.complete += 1
            elif previous == item.scores:
                duplicates += 1
            else:
                conflicts.append(position)
        open_before = sorted(s for s in self._steps if last < s < step)
        return ObserveOutcome(
            "ok", step, accepted, duplicates, book.complete, conflicts, overflow, open_before
        )

    def seal(self, step: int, last_step: int | None, retention: int) -> SealedStep:
        """Close ``step`` and return what arrived; forget steps older than the retention."""
        last = -1 if last_step is None else last_step
        book = self._steps.get(step)
        if book is not None:
            book.sealed = True
        for old in [s for s in self._steps if s <= last - retention]:
            del self._steps[old]
        open_before = sorted(s for s in self._steps if last < s < step)
        return SealedStep(dict(book.observed) if book else {}, last_step, open_before)

    def drop_after(self, last_step: int | None) -> None:
        """Forget the observations of steps after ``last_step`` (a state import rewound)."""
        last = -1 if last_step is None else last_step
        for step in [s for s in self._steps if s > last]:
            del self._steps[step]
