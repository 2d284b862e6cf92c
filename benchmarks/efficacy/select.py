"""Leave-one-family-out choice of the default among ``arms.CANDIDATES``, on screening seeds.

    python -m benchmarks.efficacy.select --out DIR              # runs every arm, then selects
    python -m benchmarks.efficacy.select --runs DIR/runs.jsonl  # selects from runs already made

As pre-registered (``PREREGISTRATION.md``). On a family f, a candidate's margin is its endpoint
(final held-out mean over objectives, mean over the screening seeds) minus the better of the
two baselines a user would otherwise run, GRPOavg (``static``) and GDPO, on f. The score of a
candidate on a set of families is the mean margin plus the mean of the negative margins, so a
loss counts twice: the rule prefers a candidate that never trails the better baseline to one
that wins big on some families and loses on others. For each family f, the candidate with the
best score on the other families is chosen and scored on f; the frozen default is the
candidate chosen in the most folds (ties: the best score over all families). Families where no
arm learns above the best constant policy (by ``LEARNING_FLOOR``) are dropped before it all.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.efficacy.arms import BASELINES, CANDIDATES
from benchmarks.efficacy.families import FAMILIES
from benchmarks.efficacy.stats import Table, build_table
from benchmarks.efficacy.suite import run_jobs
from benchmarks.efficacy.train import BenchConfig

SCREENING_SEEDS = (100, 101)
REFERENCES = ("static", "gdpo")
LEARNING_FLOOR = 0.02  # some arm must beat the best constant policy by this on a family


def margins(table: Table, arm: str) -> np.ndarray:
    """``[family]`` the arm's seed-mean endpoint minus the better reference's."""
    seed_means = np.nanmean(table.mean, axis=2)  # [arm, family]
    best_reference = np.max([seed_means[table.arm(name)] for name in REFERENCES], axis=0)
    return np.asarray(seed_means[table.arm(arm)] - best_reference)


def selection_score(table: Table, arm: str, families: Sequence[str]) -> float:
    """Mean margin over ``families`` plus the mean of their negative parts (losses twice)."""
    rows = [table.families.index(family) for family in families]
    margin = margins(table, arm)[rows]
    return float(margin.mean() + np.minimum(margin, 0.0).mean())


def learning_families(table: Table) -> list[str]:
    """The families on which some arm's endpoint beats the best constant by the floor."""
    best = np.nanmax(np.nanmean(table.learning, axis=2), axis=0)  # [family]
    return [
        family for family, value in zip(table.families, best, strict=True) if value > LEARNING_FLOOR
    ]


def leave_one_family_out(table: Table, candidates: Sequence[str]) -> dict[str, Any]:
    """Every fold's choice and how it did on its held-out family; the frozen candidate."""
    kept = learning_families(table)
    folds: list[dict[str, Any]] = []
    chosen_arms: list[str] = []
    for held_out in kept:
        training = [family for family in kept if family != held_out]
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
                "held_out_margin": float(margins(table, chosen)[table.families.index(held_out)]),
                "held_out_rank": 1 + sum(v > on_held_out[chosen] for v in on_held_out.values()),
                "held_out_best": max(on_held_out, key=on_held_out.__getitem__),
            }
        )
    counts = Counter(chosen_arms)
    overall = {arm: selection_score(table, arm, kept) for arm in table.arms}
    rows = [table.families.index(family) for family in kept]
    mean_margin = {arm: float(margins(table, arm)[rows].mean()) for arm in table.arms}
    frozen = max(counts, key=lambda arm: (counts[arm], overall[arm]))
    return {
        "families_kept": kept,
        "families_dropped": [family for family in table.families if family not in kept],
        "folds": folds,
        "chosen_counts": dict(counts),
        "overall": overall,
        "mean_margin": mean_margin,
        "frozen": frozen,
    }


def markdown(selection: dict[str, Any], seeds: Sequence[int]) -> str:
    """The selection table: every fold, then every arm's score over all families."""
    lines = [
        f"Leave-one-family-out selection on screening seeds {list(seeds)}. Margin on a "
        "family: the endpoint (final held-out mean, seed mean) minus the better of static and "
        "gdpo there; score: mean margin + mean negative margin (losses count twice).",
        "",
        f"Families kept (some arm above the best constant by {LEARNING_FLOOR}): "
        f"{', '.join(selection['families_kept'])}; dropped: "
        f"{', '.join(selection['families_dropped']) or 'none'}.",
        "",
        "| held-out family | chosen on the other families | its score there | "
        "margin on held-out | rank on held-out | best on held-out |",
        "|---|---|---|---|---|---|",
    ]
    for fold in selection["folds"]:
        lines.append(
            f"| {fold['held_out']} | {fold['chosen']} | {fold['training_score']:+.4f} | "
            f"{fold['held_out_margin']:+.4f} | {fold['held_out_rank']} | {fold['held_out_best']} |"
        )
    lines += [
        "",
        f"Frozen: **{selection['frozen']}** (chosen in "
        f"{selection['chosen_counts'][selection['frozen']]} of {len(selection['folds'])} folds).",
        "",
        "| arm | score over the kept families | mean margin | folds that chose it |",
        "|---|---|---|---|",
    ]
    for arm, score in sorted(selection["overall"].items(), key=lambda item: -item[1]):
        margin = selection["mean_margin"][arm]
        count = selection["chosen_counts"].get(arm, 0)
        lines.append(f"| {arm} | {score:+.4f} | {margin:+.4f} | {count} |")
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
        arms = [BASELINES[0], BASELINES[1], *CANDIDATES]  # static, gdpo: the references
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
