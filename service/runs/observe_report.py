"""What the run layer makes of a store's observation outcomes: the answer to one observations
request, and the messages of the requests a store refused."""

from __future__ import annotations

from dataclasses import dataclass, field

from spard.errors import InputError
from spard.service.protocol.documents import ObserveResponse
from spard.service.runs.store import ObserveOutcome, ObserveStatus


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
        if outcome.status is ObserveStatus.LATE:
            self.late += positions
        self.accepted += outcome.accepted
        self.duplicates += outcome.duplicates
        self.conflicts += [positions[i] for i in outcome.conflicts]
        self.overflow += [positions[i] for i in outcome.overflow]
        if outcome.step not in self.steps:
            self.steps.append(outcome.step)

    def to_dict(self) -> ObserveResponse:
        """The body of an observations response."""
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "overflow": self.overflow,
            "late": self.late,
            "steps": self.steps,
            "committed": self.committed,
        }


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
