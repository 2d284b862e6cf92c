"""Leave-one-family-out choice of the default among ``arms.CANDIDATES``, on screening seeds.

    python -m spard.efficacy.select --out DIR              # runs every candidate, then selects
    python -m spard.efficacy.select --runs DIR/runs.jsonl  # selects from runs already made

For each family f: the candidate with the best score on the other families is chosen and
scored on f. The frozen default is the candidate chosen in the most folds (ties: the best
score over all families). Score of a candidate on a set of families: the mean over those
families and the screening seeds of ``((mean - static mean) + (worst - static worst)) / 2``
of the final held-out scores. The screening seeds are never the evaluation seeds of the suite.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spard.efficacy.arms import BASELINES, CANDIDATES
from spard.efficacy.families import FAMILIES
from spard.efficacy.stats import Table, build_table
from spard.efficacy.suite import run_jobs
from spard.efficacy.train import BenchConfig

SCREENING_SEEDS = (100, 101)
REFERENCE = "static"


def selection_score(table: Table, arm: str, families: Sequence[str]) -> float:
    """Mean over ``families`` and seeds of the average gain over static in mean and worst."""
    a, b = table.arm(arm), table.arm(REFERENCE)
    gain = ((table.mean[a] - table.mean[b]) + (table.worst[a] - table.worst[b])) / 2.0
    rows = [table.families.index(family) for family in families]
    return float(gain[rows].mean())


def leave_one_family_out(table: Table, candidates: Sequence[str]) -> dict[str, Any]:
    """Every fold's choice and how it did on its held-out family; the frozen candidate."""
    folds: list[dict[str, Any]] = []
    chosen_arms: list[str] = []
    for held_out in table.families:
        training = [family for family in table.families if family != held_out]
        on_training = {arm: selection_score(table, arm, training) for arm in candidates}
        chosen = max(on_training, key=on_training.__getitem__)
        on_held_out = {arm: selection_score(table, arm, [held_out]) for arm in candidates}
        chosen_arms.append(chosen)
        folds.append(
            {
                "held_out": held_out,
                "chosen": chosen,
                "training_score": on_training[chosen],
                "held_out_score": on_held_out[chosen],
                "held_out_rank": 1 + sum(v > on_held_out[chosen] for v in on_held_out.values()),
                "held_out_best": max(on_held_out, key=on_held_out.__getitem__),
            }
        )
    counts = Counter(chosen_arms)
    overall = {arm: selection_score(table, arm, table.families) for arm in table.arms}
    frozen = max(counts, key=lambda arm: (counts[arm], overall[arm]))
    return {"folds": folds, "chosen_counts": dict(counts), "overall": overall, "frozen": frozen}


def markdown(selection: dict[str, Any], seeds: Sequence[int]) -> str:
    """The selection table: every fold, then every arm's score over all families."""
    lines = [
        f"Leave-one-family-out selection on screening seeds {list(seeds)}. Score: mean over "
        "families and seeds of ((mean - static) + (worst - static)) / 2 of the final held-out "
        "scores.",
        "",
        "| held-out family | chosen on the other families | its score there | "
        "score on held-out | rank on held-out | best on held-out |",
        "|---|---|---|---|---|---|",
    ]
    for fold in selection["folds"]:
        lines.append(
            f"| {fold['held_out']} | {fold['chosen']} | {fold['training_score']:+.4f} | "
            f"{fold['held_out_score']:+.4f} | {fold['held_out_rank']} | {fold['held_out_best']} |"
        )
    lines += [
        "",
        f"Frozen: **{selection['frozen']}** (chosen in "
        f"{selection['chosen_counts'][selection['frozen']]} of {len(selection['folds'])} folds).",
        "",
        "| arm | score over all families | folds that chose it |",
        "|---|---|---|",
    ]
    for arm, score in sorted(selection["overall"].items(), key=lambda item: -item[1]):
        lines.append(f"| {arm} | {score:+.4f} | {selection['chosen_counts'].get(arm, 0)} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run (or load) the screening runs, select, write selection.{json,md}."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the outputs")
    parser.add_argument("--runs", type=Path, help="runs.jsonl from an earlier screening run")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.runs is not None:
        runs = [json.loads(line) for line in args.runs.read_text().splitlines() if line]
    else:
        arms = [BASELINES[0], BASELINES[1], *CANDIDATES]
        runs = run_jobs(
            arms,
            FAMILIES,
            SCREENING_SEEDS,
            BenchConfig(),
            workers=args.workers,
            log=args.out / "runs.jsonl",
            desc="screening",
        )
    table = build_table(runs)
    candidates = [arm.name for arm in CANDIDATES if arm.name in table.arms]
    selection = leave_one_family_out(table, candidates)
    seeds = list(table.seeds)
    text = markdown(selection, seeds)
    payload = {"seeds": seeds, "families": list(table.families), **selection}
    (args.out / "selection.json").write_text(json.dumps(payload, indent=1) + "\n")
    (args.out / "selection.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
