"""Statistics of a suite, as pre-registered in ``PREREGISTRATION.md``.

The unit of comparison is a (family, seed) instance: two arms on the same instance saw the
same task, the same initial policy and the same prompt stream until their updates diverged, so
every comparison is a paired difference of the primary endpoint (the final held-out mean over
objectives of the true scores). Families are treated as a random sample of the tasks users
have: confidence intervals resample families, then seeds within each family.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

BOOTSTRAP_RESAMPLES = 10_000
ALPHA = 0.05
TIE_MARGIN = 0.005  # |difference| at or below this is a tie (an eval's sampling noise is ~0.01)


@dataclass(frozen=True)
class Table:
    """Metrics as arrays indexed ``[arm, family, seed]`` (NaN where a run is missing)."""

    arms: tuple[str, ...]
    families: tuple[str, ...]
    seeds: tuple[int, ...]
    mean: np.ndarray  # the primary endpoint: final held-out mean over objectives
    worst: np.ndarray  # final held-out worst objective
    auc: np.ndarray  # mean of the held-out mean curve over the evaluation points
    constant: np.ndarray  # [family, seed]: the best constant policy's mean
    # The endpoint with every objective counted no lower than its own best constant: a
    # collapse below a constant answer then costs nothing (a sensitivity check).
    floored: np.ndarray
    curves: dict[tuple[str, str, int], np.ndarray]  # (evals,) mean curve of each run
    eval_steps: tuple[int, ...]

    def arm(self, name: str) -> int:
        """Index of arm ``name``."""
        return self.arms.index(name)

    @property
    def learning(self) -> np.ndarray:
        """``[arm, family, seed]`` the endpoint above the best constant policy's."""
        return np.asarray(self.mean - self.constant[None])


def build_table(runs: Sequence[dict[str, Any]]) -> Table:
    """Index a list of runs (as ``train_run`` returns them) by arm, family and seed."""
    arms = tuple(dict.fromkeys(run["arm"] for run in runs))
    families = tuple(dict.fromkeys(run["family"] for run in runs))
    seeds = tuple(sorted({run["seed"] for run in runs}))
    shape = (len(arms), len(families), len(seeds))
    mean, worst, auc = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    constant = np.full(shape[1:], np.nan)
    floored = np.full(shape, np.nan)
    curves = {}
    for run in runs:
        f, s = families.index(run["family"]), seeds.index(run["seed"])
        index = (arms.index(run["arm"]), f, s)
        scores = np.asarray(run["scores"], dtype=float)  # (evals, K)
        curve = scores.mean(axis=1)
        mean[index], worst[index], auc[index] = curve[-1], scores[-1].min(), curve.mean()
        constant[f, s] = run.get("constant_mean", np.nan)
        per_objective = np.asarray(run.get("constant_per_objective", np.nan), dtype=float)
        floored[index] = np.fmax(scores[-1], per_objective).mean()
        curves[(run["arm"], run["family"], run["seed"])] = curve
    return Table(
        arms,
        families,
        seeds,
        mean,
        worst,
        auc,
        constant,
        floored,
        curves,
        tuple(runs[0]["eval_steps"]),
    )


def win_rate(
    candidate: np.ndarray, baseline: np.ndarray, margin: float = TIE_MARGIN
) -> dict[str, float]:
    """Shares of paired instances won, tied (``|difference| <= margin``) and lost; ``rate``
    counts ties half."""
    difference = (candidate - baseline)[np.isfinite(candidate - baseline)]
    wins, losses = float((difference > margin).mean()), float((difference < -margin).mean())
    ties = 1.0 - wins - losses
    return {"rate": wins + 0.5 * ties, "wins": wins, "ties": ties, "losses": losses}


def hierarchical_bootstrap(
    values: np.ndarray, rng_seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float, float]:
    """Mean over families of the per-family seed mean of ``values`` ``[family, seed]``, with a
    95% percentile CI that resamples families, then seeds within each drawn family."""
    rng = np.random.default_rng(rng_seed)
    families, seeds = values.shape
    drawn = rng.integers(0, families, size=(resamples, families))
    picks = rng.integers(0, seeds, size=(resamples, families, seeds))
    resampled = values[drawn[:, :, None], picks].mean(axis=(1, 2))
    low, high = np.percentile(resampled, [2.5, 97.5])
    return float(values.mean()), float(low), float(high)


def paired_test(candidate: np.ndarray, baseline: np.ndarray) -> tuple[float, float]:
    """Mean difference over seeds and the two-sided paired t-test p-value (1.0 if constant)."""
    difference = candidate - baseline
    if difference.size < 2 or np.allclose(difference, difference[0]):
        return float(difference.mean()), 1.0
    return float(difference.mean()), float(scipy_stats.ttest_rel(candidate, baseline).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error over the given tests)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (p.size - rank) * p[i]))
        adjusted[i] = running
    return [float(value) for value in adjusted]


def family_tests(table: Table, arm: str, baseline: str) -> dict[str, dict[str, float]]:
    """Per family: mean paired difference over seeds, raw and Holm-adjusted p-values."""
    a, b = table.arm(arm), table.arm(baseline)
    tests = [paired_test(table.mean[a, f], table.mean[b, f]) for f in range(len(table.families))]
    adjusted = holm([p for _, p in tests])
    return {
        family: {"difference": d, "p": p, "p_holm": q}
        for family, (d, p), q in zip(table.families, tests, adjusted, strict=True)
    }


def comparison(table: Table, arm: str, baseline: str) -> dict[str, Any]:
    """Everything the report says about ``arm`` against ``baseline`` on the endpoint."""
    a, b = table.arm(arm), table.arm(baseline)
    difference = table.mean[a] - table.mean[b]
    estimate, low, high = hierarchical_bootstrap(difference)
    floored, floored_low, floored_high = hierarchical_bootstrap(table.floored[a] - table.floored[b])
    tests = family_tests(table, arm, baseline)
    significant = {f: t for f, t in tests.items() if t["p_holm"] < ALPHA}
    return {
        "difference": estimate,
        "difference_ci": [low, high],
        "floored_difference": floored,
        "floored_difference_ci": [floored_low, floored_high],
        "win_rate": win_rate(table.mean[a], table.mean[b]),
        "worst_difference": float(np.nanmean(table.worst[a] - table.worst[b])),
        "families_significantly_worse": sorted(
            f for f, t in significant.items() if t["difference"] < 0
        ),
        "families_significantly_better": sorted(
            f for f, t in significant.items() if t["difference"] > 0
        ),
        "per_family": tests,
    }


def arm_summary(table: Table, arm: str, baselines: Sequence[str]) -> dict[str, Any]:
    """Aggregate metrics of one arm over the suite, and its comparisons to each baseline."""
    a = table.arm(arm)
    families_learning = (np.nanmean(table.learning[a], axis=1) > 0.0).sum()
    return {
        "mean": float(np.nanmean(table.mean[a])),
        "learning": float(np.nanmean(table.learning[a])),
        "families_above_constant": int(families_learning),
        "worst": float(np.nanmean(table.worst[a])),
        "auc": float(np.nanmean(table.auc[a])),
        "versus": {
            baseline: comparison(table, arm, baseline)
            for baseline in baselines
            if baseline != arm and baseline in table.arms
        },
    }


def family_cells(table: Table) -> dict[str, dict[str, dict[str, float]]]:
    """Per family and arm: final mean, learning above the constant, worst (seed mean, std)."""
    cells: dict[str, dict[str, dict[str, float]]] = {}
    spread = len(table.seeds) > 1
    for f, family in enumerate(table.families):
        cells[family] = {"constant": {"mean": float(np.nanmean(table.constant[f]))}}
        for a, arm in enumerate(table.arms):
            cells[family][arm] = {
                "mean": float(table.mean[a, f].mean()),
                "mean_std": float(table.mean[a, f].std(ddof=1)) if spread else 0.0,
                "learning": float(table.learning[a, f].mean()),
                "worst": float(table.worst[a, f].mean()),
                "auc": float(table.auc[a, f].mean()),
            }
    return cells
