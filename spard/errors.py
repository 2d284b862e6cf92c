"""Exceptions raised by the engine.

Every error a caller can cause is a :class:`SpardError`; input problems are also
``ValueError`` so generic handlers keep working. Each carries the name of the field at fault,
which the service turns into a 4xx body.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SpardError(Exception):
    """Base class of every error the engine raises on purpose."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InputError(SpardError, ValueError):
    """An argument (scores, objectives, prior weights, config, state dict) is malformed."""


class StepOrderError(SpardError):
    """A step index is older than the last applied step and its result is no longer kept."""


class StepConflictError(SpardError):
    """An already-applied step index was sent again with different scores."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """A hint for a misspelt name, `` (did you mean warmup?)``, or "" when none is close: one
    wording for the CLI's ``--set`` and the API's config errors."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""
