"""The observations of a run in memory: the reference semantics that the Redis store's Lua
script mirrors (see :mod:`spard.service.protocol.streaming` for the rules)."""

from __future__ import annotations

from collections.abc import Sequence

from spard.service.runs.store.types import (
    ObservationItem,
    ObserveLimits,
    ObserveOutcome,
    ObserveStatus,
    SealedStep,
)


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
            if item.rollout_index is not None:
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
        step: int | None,
        items: Sequence[ObservationItem],
        last_step: int | None,
        limits: ObserveLimits,
    ) -> ObserveOutcome:
        """Record ``items`` for ``step`` (None: the open step). A step that would be more than
        ``limits.max_open_steps`` not yet applied is refused (FULL); a request that could
        grow the step's batch past ``limits.max_cells`` is refused whole (TOO_LARGE).

        Sent without a step, an observation whose id is already stored in an earlier kept step
        is a duplicate: a client retried a request whose answer was lost while that step was
        committed, and it must not count again in the next step.
        """
        last = -1 if last_step is None else last_step
        resolved = step is None
        if step is None:
            step = last + 1
            while step in self._steps and self._steps[step].sealed:
                step += 1
        book = self._steps.get(step)
        if step <= last or (book is not None and book.sealed):
            return ObserveOutcome(ObserveStatus.LATE, step=step)
        if book is None and sum(s > last for s in self._steps) >= limits.max_open_steps:
            open_steps = sorted(s for s in self._steps if last < s < step)
            return ObserveOutcome(ObserveStatus.FULL, step=step, open_before=open_steps)
        group_size = limits.group_size
        groups, width = (book or _StepBook()).bound_after(items, group_size)
        if groups * width > limits.max_cells:
            return ObserveOutcome(ObserveStatus.TOO_LARGE, step=step, groups=groups, width=width)
        earlier = [book for s, book in self._steps.items() if s < step] if resolved else []
        book = self._steps.setdefault(step, _StepBook())
        accepted = duplicates = 0
        conflicts: list[int] = []
        overflow: list[int] = []
        for position, item in enumerate(items):
            identity = None if item.observation_id is None else (item.group, item.observation_id)
            if identity is not None and any(identity in known.by_id for known in earlier):
                duplicates += 1  # a resend of one stored in an earlier step (see observe)
                continue
            rollout = item.rollout_index
            if rollout is None:
                known = None if identity is None else book.by_id.get(identity)
                if known is not None:
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
                if identity is not None:
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
            ObserveStatus.OK,
            step,
            accepted,
            duplicates,
            book.complete,
            conflicts,
            overflow,
            open_before,
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
