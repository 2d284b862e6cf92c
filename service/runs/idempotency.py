"""The Idempotency-Key rule of a step: a step sent without an index, retried with the same key,
replays the step the first attempt applied instead of applying the batch again.

The key is kept with the applied step in the engine's state (``AppliedStep.request_id``), so
a replica that loads the state replays too; the engine itself only steps and replays by index.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import spard
from spard.engine import step_index
from spard.scores import parse_scores
from spard.service.protocol.wire import validate_request_id
from spard.state import AppliedStep, State


def step_once(
    state: State,
    scores: Any,
    step: int | None,
    *,
    return_advantages: bool,
    request_id: str | None,
) -> tuple[spard.StepResult, State]:
    """:func:`spard.step`, once per ``request_id`` (1-128 printable characters): while the step
    applied for it is among the last ``replay_window`` kept, the same id replays that step
    (:class:`spard.StepConflictError` naming ``request_id`` if the request names another)."""
    if request_id is None:
        return spard.step(state, scores, step, return_advantages=return_advantages)
    request = validate_request_id(request_id)
    earlier = _applied_for(state, request)
    if earlier is None:
        result, after = spard.step(state, scores, step, return_advantages=return_advantages)
        return result, after if result.replayed else _keep_request(after, request)
    parse_scores(scores, len(state.objectives))  # a bad batch is refused before a conflict
    if step is not None and step_index(state, step) != earlier.step:
        raise spard.StepConflictError(
            f"request_id {request!r} was applied as step {earlier.step}; this request "
            f"names step {step}",
            field="request_id",
        )
    return spard.step(state, scores, earlier.step, return_advantages=return_advantages)


def _applied_for(state: State, request_id: str) -> AppliedStep | None:
    """The kept step applied for the request with this idempotency key, if any."""
    return next((entry for entry in state.recent if entry.request_id == request_id), None)


def _keep_request(state: State, request_id: str) -> State:
    """``state`` with ``request_id`` kept on its newest applied step (the one just applied:
    the engine keeps the newest step last, and always keeps it)."""
    *older, newest = state.recent
    return replace(state, recent=(*older, replace(newest, request_id=request_id)))
