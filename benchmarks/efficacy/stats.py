"""Statistics of a suite: per (family, seed) metrics, win rates, bootstrap CIs, paired tests.

Every comparison is paired: two arms on the same (family, seed) saw the same task instance,
the same initial policy and the same prompt stream until their updates diverged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

BOOTSTRAP_RESAMPLES = 10_000
ALPHA = 0.05


@dataclass(frozen=True)
class Table:
    """Metrics as arrays indexed ``[arm, family, seed]`` (NaN where a run is missing)."""

    arms: tuple[str, ...]
    families: tuple[str, ...]
    seeds: tuple[int, ...]
    mean: np.ndarray  # final held-out mean over objectives
    worst: np.ndarray  # final held-out worst objective
    auc: np.ndarray  # mean of the held-out mean curve over the evaluation points
    curves: dict[tuple[str, str, int], np.ndarray]  # (evals,) mean curve of each run
    eval_steps: tuple[int, ...]

    def arm(self, name: str) -> int:
        """Index of arm ``name``."""
        return self.arms.index(name)


def build_table(runs: Sequence[dict[str, Any]]) -> Table:
    """Index a list of runs (as ``train_run`` returns them) by arm, family and seed."""
    arms = tuple(dict.fromkeys(run["arm"] for run in runs))
    families = tuple(dict.fromkeys(run["family"] for run in runs))
    seeds = tuple(sorted({run["seed"] for run in runs}))
    shape = (len(arms), len(families), len(seeds))
    mean, worst, auc = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    curves = {}
    for run in runs:
        index = (arms.index(run["arm"]), families.index(run["family"]), seeds.index(run["seed"]))
        scores = np.asarray(run["scores"], dtype=float)  # (evals, K)
        curve = scores.mean(axis=1)
        mean[index], worst[index], auc[index] = curve[-1], scores[-1].min(), curve.mean()
        curves[(run["arm"], run["family"], run["seed"])] = curve
    return Table(arms, families, seeds, mean, worst, auc, curves, tuple(runs[0]["eval_steps"]))


def win_rate(candidate: np.ndarray, baseline: np.ndarray) -> float:
    """Share of (family, seed) pairs where ``candidate`` beats ``baseline`` (ties count half)."""
    wins = (candidate > baseline).sum() + 0.5 * (candidate == baseline).sum()
    return float(wins / np.isfinite(candidate - baseline).sum())


def relative_improvement(candidate: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """Per pair ``(candidate - baseline) / baseline``; ``[family, seed]`` arrays."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray((candidate - baseline) / np.maximum(baseline, 1e-6))


def family_balanced_bootstrap(
    values: np.ndarray, rng_seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float, float]:
    """Mean over families of the per-family seed mean of ``values`` ``[family, seed]``, with a
    95% percentile bootstrap CI that resamples seeds within each family (families fixed)."""
    rng = np.random.default_rng(rng_seed)
    families, seeds = values.shape
    picks = rng.integers(0, seeds, size=(resamples, families, seeds))
    resampled = np.take_along_axis(values[None, :, :], picks, axis=2).mean(axis=(1, 2))
    low, high = np.percentile(resampled, [2.5, 97.5])
    return float(values.mean()), float(low), float(high)


def paired_test(candidate: np.ndarray, baseline: np.ndarray) -> tuple[float, float]:
    """Mean difference over seeds and the two-sided paired t-test p-value (1.0 if constant)."""
    difference = candidate - baseline
    if difference.size < 2 or np.allclose(difference, difference[0]):
        return float(difference.mean()), 1.0
    return float(difference.mean()), float(scipy_stats.ttest_rel(candidate, baseline).pvalue)


def steps_to_reach(table: Table, arm: str, baseline: str, family: str, seed: int) -> int | None:
    """First evaluation step at which ``arm``'s mean curve reaches ``baseline``'s final mean
    on the same (family, seed); None if it never does."""
    target = table.curves[(baseline, family, seed)][-1]
    curve = table.curves[(arm, family, seed)]
    reached = np.flatnonzero(curve >= target - 1e-12)
    return int(table.eval_steps[reached[0]]) if reached.size else None


def arm_summary(table: Table, arm: str, baselines: Sequence[str]) -> dict[str, Any]:
    """Aggregate metrics of one arm over the suite, and its comparisons to each baseline."""
    a = table.arm(arm)
    summary: dict[str, Any] = {
        "mean": float(np.nanmean(table.mean[a])),
        "worst": float(np.nanmean(table.worst[a])),
        "auc": float(np.nanmean(table.auc[a])),
        "versus": {},
    }
    for baseline in baselines:
        if baseline == arm or baseline not in table.arms:
            continue
        b = table.arm(baseline)
        improvement = relative_improvement(table.mean[a], table.mean[b])
        estimate, low, high = family_balanced_bootstrap(improvement)
        worse: list[str] = []
        better: list[str] = []
        for f, family in enumerate(table.families):
            difference, p_value = paired_test(table.mean[a, f], table.mean[b, f])
            if p_value < ALPHA:
                (better if difference > 0 else worse).append(family)
        reach = [
            steps_to_reach(table, arm, baseline, family, seed)
            for family in table.families
            for seed in table.seeds
        ]
        own = [
            steps_to_reach(table, baseline, baseline, family, seed)
            for family in table.families
            for seed in table.seeds
        ]
        ratios = [r / o for r, o in zip(reach, own, strict=True) if r is not None and o]
        summary["versus"][baseline] = {
            "win_rate_mean": win_rate(table.mean[a], table.mean[b]),
            "win_rate_worst": win_rate(table.worst[a], table.worst[b]),
            "improvement": estimate,
            "improvement_ci": [low, high],
            "families_significantly_worse": worse,
            "families_significantly_better": better,
            "reached_share": float(np.mean([r is not None for r in reach])),
            "steps_ratio_median": float(np.median(ratios)) if ratios else None,
        }
    return summary


def family_cells(table: Table, baseline: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Per family and arm: final mean and worst (mean, std over seeds), AUC, and the paired
    test against ``baseline`` on the final mean."""
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    b = table.arm(baseline)
    for f, family in enumerate(table.families):
        cells[family] = {}
        for a, arm in enumerate(table.arms):
            difference, p_value = paired_test(table.mean[a, f], table.mean[b, f])
            cells[family][arm] = {
                "mean": float(table.mean[a, f].mean()),
                "mean_std": float(table.mean[a, f].std(ddof=1)) if len(table.seeds) > 1 else 0.0,
                "worst": float(table.worst[a, f].mean()),
                "worst_std": float(table.worst[a, f].std(ddof=1)) if len(table.seeds) > 1 else 0.0,
                "auc": float(table.auc[a, f].mean()),
                "difference": difference,
                "p_value": p_value,
            }
    return cells
