"""Runs that end worse than they started: an exploratory check of the report, defined after the
evaluation was read (a review found collapsed runs), so it is labelled as such.

A run *regresses* on a (category, objective) when its final held-out score there is below
half of its step-0 score: the trained policy lost at least half of what the pretrained one
could do. Step 0 is the same policy in every arm of a seed, so the rule treats arms alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

FRACTION = 0.5  # below this share of the step-0 score: a regression


def regressions(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's (category, objective) cells that end below ``FRACTION`` of their step-0 score."""
    first, last = run["evals"][0]["by_category"], run["evals"][-1]["by_category"]
    return [
        {"category": category, "objective": name, "step0": first[category][name], "final": score}
        for category, scores in last.items()
        for name, score in scores.items()
        if score < FRACTION * first[category][name]
    ]


def summarise_regressions(
    runs: Sequence[dict[str, Any]], arms: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per arm: how many runs regress, and where (seed, cells)."""
    found: dict[str, dict[str, Any]] = {arm: {"runs": 0, "regressed": []} for arm in arms}
    for run in runs:
        if run["arm"] not in found:
            continue
        found[run["arm"]]["runs"] += 1
        cells = regressions(run)
        if cells:
            found[run["arm"]]["regressed"].append({"seed": run["seed"], "cells": cells})
    return found


def markdown_lines(found: dict[str, dict[str, Any]]) -> list[str]:
    """The report's section."""
    lines = [
        "",
        "## Runs that end worse than they started (exploratory, defined after reading)",
        "",
        f"A run regresses on a category's objective when its final held-out score there is below "
        f"{FRACTION:g} x its step-0 score. Defined after the evaluation was read, when a review "
        "found collapsed runs; not part of the pre-registered analysis.",
        "",
        "| arm | runs that regress | where (seed: category objective step 0 -> final) |",
        "| --- | --- | --- |",
    ]
    for arm, item in found.items():
        where = "; ".join(
            f"{entry['seed']}: "
            + ", ".join(
                f"{c['category']} {c['objective']} {c['step0']:.2f} -> {c['final']:.2f}"
                for c in entry["cells"]
            )
            for entry in sorted(item["regressed"], key=lambda e: e["seed"])
        )
        lines.append(f"| {arm} | {len(item['regressed'])}/{item['runs']} | {where or '-'} |")
    return lines
