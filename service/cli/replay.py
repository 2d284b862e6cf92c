"""Feed a file of logged per-step scores through the engine (``spard replay``).

The file is JSON Lines. An optional header line names the objectives::

    {"objectives": ["correctness", "format"], "prior_weights": [0.5, 0.5]}

and every other line is one step::

    {"step": 0, "scores": [[[1, 0.9], [0, 1.0]], ...]}   # (N, G, K), null = missing

``step`` may be left out (the next index is used). Blank lines are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import spard
from spard.errors import InputError


@dataclass(frozen=True)
class ReplayRecord:
    """One logged step read from a replay file."""

    line: int
    step: int | None
    scores: Any


@dataclass(frozen=True)
class ReplayFile:
    """A parsed replay file: its header and its step records."""

    objectives: tuple[str, ...] | None
    prior_weights: Any
    records: tuple[ReplayRecord, ...]


def read_replay_file(path: Path) -> ReplayFile:
    """Parse a replay file; raises :class:`InputError` naming the line of a bad record."""
    objectives: tuple[str, ...] | None = None
    prior_weights: Any = None
    records: list[ReplayRecord] = []
    for number, text in _lines(path):
        try:
            entry = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})", field="line") from None
        if not isinstance(entry, dict):
            raise InputError(f"{path}:{number}: each line must be a JSON object", field="line")
        if "scores" not in entry:
            if "objectives" not in entry or records:
                raise InputError(
                    f"{path}:{number}: expected a step with 'scores' (a header with "
                    "'objectives' may only come first)",
                    field="scores",
                )
            objectives = tuple(entry["objectives"])
            prior_weights = entry.get("prior_weights")
            continue
        step = entry.get("step")
        if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
            raise InputError(f"{path}:{number}: 'step' must be an integer", field="step")
        records.append(ReplayRecord(line=number, step=step, scores=entry["scores"]))
    if not records:
        raise InputError(f"{path}: no step records", field="scores")
    return ReplayFile(objectives=objectives, prior_weights=prior_weights, records=tuple(records))


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if text.strip():
                yield number, text


def replay(
    replay_file: ReplayFile,
    config: spard.SpardConfig,
    objectives: Sequence[str] | None = None,
) -> list[spard.StepResult]:
    """Run every record of ``replay_file`` through a fresh curriculum; one result per record."""
    names = objectives or replay_file.objectives
    if names is None:
        raise InputError(
            "the objectives are not named: give --objectives or a header line "
            '{"objectives": [...]}',
            field="objectives",
        )
    state = spard.init(list(names), config, prior_weights=replay_file.prior_weights)
    results = []
    for record in replay_file.records:
        try:
            result, state = spard.step(state, record.scores, step=record.step)
        except spard.SpardError as exc:
            raise InputError(f"line {record.line}: {exc.message}", field=exc.field) from None
        results.append(result)
    return results
