"""Streaming observations over a store: record them and commit steps.

HTTP-free like :mod:`spard.service.runs.run_service`. The rules (idempotency, group order,
incomplete groups, late arrivals) are those of :mod:`spard.service.protocol.streaming`; the
store applies them atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeGuard

import spard
from spard.service.protocol.errors import (
    PayloadTooLargeError,
    RunChangedError,
    RunNotFoundError,
    ServiceUnavailableError,
    StepNotCommittableError,
    TooManyOpenStepsError,
)
from spard.service.protocol.streaming import Observation
from spard.service.runs.assembly import AssembledBatch, assemble, due_commits, items_by_step
from spard.service.runs.observe_report import (
    ObserveReport,
    batch_too_large,
    check_step_count,
    nothing_to_commit,
    too_many_open_steps,
)
from spard.service.runs.run_service import RunRecreatedError, RunService
from spard.service.runs.store import (
    ObserveLimits,
    ObserveOutcome,
    ObserveStatus,
    RunAbsent,
    RunKey,
    RunMeta,
    SealedStep,
    Store,
)


@dataclass(frozen=True)
class Commit:
    """A committed (or replayed) step built from observations."""

    result: spard.StepResult
    batch: AssembledBatch
    committed_before: list[int]


class ObservationService:
    """Observations and commits over ``store`` (which holds them), on top of the
    :class:`RunService` of the same store (which applies the steps)."""

    def __init__(self, store: Store, runs: RunService) -> None:
        self.runs = runs
        self._store = store
        self.retention = runs.options.step_retention
        self.max_open_steps = runs.options.max_open_steps
        self.max_scores = runs.options.max_scores

    async def observe(self, key: RunKey, observations: Sequence[Observation]) -> ObserveReport:
        """Record observations (any steps, any groups); auto-commit as the run is configured."""
        for _ in range(2):
            meta = await self.runs.meta(key)
            report = ObserveReport()
            if await self._observe_with(key, meta, observations, report):
                return report
            await self.runs.meta(key, reload=True)  # the run was recreated under this id
        raise ServiceUnavailableError(f"run {key.run_id!r} keeps being recreated; retry")

    async def _observe_with(
        self, key: RunKey, meta: RunMeta, observations: Sequence[Observation], report: ObserveReport
    ) -> bool:
        by_step = items_by_step(observations, meta.objectives, meta.streaming)
        check_step_count(len(by_step), self.max_open_steps)
        limits = ObserveLimits(
            group_size=meta.streaming.group_size or 0,
            max_open_steps=self.max_open_steps,
            max_cells=self.max_scores // len(meta.objectives),
        )
        stored: list[int] = []  # the steps of this request stored so far
        for step, (positions, items) in by_step.items():
            outcome = await self._store.observe(key, meta.incarnation, step, items, limits)
            if _is_full(outcome) and meta.streaming.commit_on_next_step:
                # The rule commits the open steps once a later one arrives: when they fill the
                # run, commit them first to make room, rather than refuse the later step.
                await self._auto_commit(key, meta, outcome, report)
                outcome = await self._store.observe(key, meta.incarnation, step, items, limits)
            if outcome is RunAbsent.MISSING:
                raise _not_found(key)
            if outcome is RunAbsent.RECREATED:
                return False
            if outcome.status is ObserveStatus.FULL:
                raise TooManyOpenStepsError(
                    too_many_open_steps(outcome.step, self.max_open_steps), field="step"
                )
            if outcome.status is ObserveStatus.TOO_LARGE:
                raise PayloadTooLargeError(
                    batch_too_large(outcome, len(meta.objectives), self.max_scores, stored),
                    field="observations",
                )
            report.add(outcome, positions)
            stored.append(outcome.step)
            await self._auto_commit(key, meta, outcome, report)
        self.runs.events.observations(report.accepted, report.duplicates, len(report.late))
        return True

    async def _auto_commit(
        self, key: RunKey, meta: RunMeta, outcome: ObserveOutcome, report: ObserveReport
    ) -> None:
        for step in due_commits(meta.streaming, outcome):
            if await self._commit_if_possible(key, step) and step not in report.committed:
                report.committed.append(step)

    async def _commit_if_possible(self, key: RunKey, step: int) -> bool:
        """Commit a step the rules make due; one with nothing usable (no observations, or
        every group incomplete under "drop") stays open, and so does one of a run deleted and
        created again meanwhile (its observations belong to the deleted run)."""
        try:
            await self.commit(key, step, return_advantages=False)
        except (StepNotCommittableError, PayloadTooLargeError, spard.InputError, RunChangedError):
            return False
        return True

    async def commit(self, key: RunKey, step: int, *, return_advantages: bool) -> Commit:
        """Close ``step`` and step the engine on what arrived, exactly once (a commit sent
        again, to any replica, replays the stored result). Open earlier steps go first, in
        order, each once: one that cannot be committed stays open and is not retried here.
        A run deleted and created again meanwhile raises :class:`RunChangedError`: what was
        sealed belongs to the deleted run and is applied to neither."""
        try:
            return await self._commit(key, step, return_advantages)
        except RunRecreatedError:
            raise RunChangedError(
                f"run {key.run_id!r} was deleted and created again while step {step} was "
                "committed: nothing was applied to the new run; send the commit again to "
                "commit its own observations",
                field="run_id",
            ) from None

    async def _commit(self, key: RunKey, step: int, return_advantages: bool) -> Commit:
        meta = await self.runs.meta(key)
        sealed = await self._store.seal(key, meta.incarnation, step, self.retention)
        if sealed is RunAbsent.RECREATED:  # this replica cached the run's earlier incarnation
            meta = await self.runs.meta(key, reload=True)
            sealed = await self._seal(key, meta, step)
        if isinstance(sealed, RunAbsent):
            raise _not_found(key)
        committed_before = []
        for earlier in sealed.open_before:  # ascending, so none of them has open steps left
            try:
                await self._commit_sealed(key, meta, earlier, return_advantages=False)
            except (StepNotCommittableError, PayloadTooLargeError, spard.InputError):
                # Stays open: e.g. a step observed under a larger SPARD_MAX_SCORES than this
                # replica's must not block the steps after it.
                continue
            committed_before.append(earlier)
        result, batch = await self._commit_sealed(key, meta, step, return_advantages, sealed)
        return Commit(result, batch, committed_before)

    async def _commit_sealed(
        self,
        key: RunKey,
        meta: RunMeta,
        step: int,
        return_advantages: bool,
        sealed: SealedStep | None = None,
    ) -> tuple[spard.StepResult, AssembledBatch]:
        """Seal ``step`` (unless given its seal) and step the engine on what arrived; never
        looks at earlier steps, so committing n open steps costs n commits, not 2**n."""
        if sealed is None:
            sealed = await self._seal(key, meta, step)
        if not sealed.observed:
            message = nothing_to_commit(step, sealed.last_step)
            raise StepNotCommittableError(message, field="step")
        batch = assemble(sealed.observed, len(meta.objectives), meta.streaming, self.max_scores)
        result = await self.runs.step(
            key, step, batch.scores, return_advantages, incarnation=meta.incarnation
        )
        return result, batch

    async def _seal(self, key: RunKey, meta: RunMeta, step: int) -> SealedStep:
        """Seal ``step`` of the run's incarnation ``meta``: a run deleted and created again
        meanwhile raises :class:`RunRecreatedError` (its observations belong to neither)."""
        sealed = await self._store.seal(key, meta.incarnation, step, self.retention)
        if sealed is RunAbsent.RECREATED:
            raise RunRecreatedError(key.run_id)
        if sealed is RunAbsent.MISSING:
            raise _not_found(key)
        return sealed


def _is_full(outcome: ObserveOutcome | RunAbsent) -> TypeGuard[ObserveOutcome]:
    return isinstance(outcome, ObserveOutcome) and outcome.status is ObserveStatus.FULL


def _not_found(key: RunKey) -> RunNotFoundError:
    return RunNotFoundError(f"run {key.run_id!r} not found", field="run_id")
