"""What a state import must pass: a state document that the schema accepts can still be one
the engine cannot step (null gains, values near the loader's bounds, counters at their
maximum), and a stored state no replica can load breaks the run for good. So an import is
tried: stepped once on a probe batch, and the state and its successor written and read back."""

from __future__ import annotations

import numpy as np
import orjson

import spard
from spard.errors import InputError


def checked_import(data: object) -> spard.State:
    """The state of an exported document, if the engine can step it and every state involved
    survives a store round trip; else :class:`InputError` naming the field at fault."""
    state = spard.State.from_dict(data)
    probe = np.zeros((1, 2, len(state.objectives)))
    probe[0, 1] = 1.0  # a group with signal, so every rule of the strategy runs
    try:
        with np.errstate(all="ignore"):  # overflow shows up below, as a value out of bounds
            result, after = spard.step(state, probe)
        for candidate in (state, after):
            spard.State.from_dict(orjson.loads(candidate.to_json()))
    except (spard.SpardError, ArithmeticError, ValueError) as exc:
        # The field of the failure is one of the probe's successor, not of the document sent.
        reason = exc.message if isinstance(exc, spard.SpardError) else str(exc)
        raise InputError(
            f"state: the engine could not step this state and store the result ({reason})",
            field="state",
        ) from None
    if not (np.isfinite(result.reward_weights).all() and np.isfinite(result.sample_weights).all()):
        raise InputError("state: a step of this state gives non-finite weights", field="state")
    return state
