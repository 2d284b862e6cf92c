"""The TRL benchmark's report: paired comparisons over seeds, wall time, plots.

A run's *final* score is the mean of its held-out evaluations over the last fifth of training
(three evaluations at 200 steps), which smooths the sampling noise of one evaluation.
Comparisons are paired by seed: every arm of a seed saw the same pretrained policy, prompts,
data order and settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from benchmarks.trl_lm.tasks import OBJECTIVES

BASELINES = ("grpo_avg", "gdpo")
LABELS = {
    "grpo_avg": "GRPOavg (equal weights)",
    "gdpo": "GDPO (normalize_then_sum)",
    "spard": "SPARD",
}


def final_scores(run: dict[str, Any]) -> dict[str, float]:
    """Per objective, the mean over the evaluations of the last fifth of training."""
    late = [e["scores"] for e in run["evals"] if e["step"] >= 0.8 * run["steps"]]
    return {name: float(np.mean([scores[name] for scores in late])) for name in OBJECTIVES}


def paired(candidate: np.ndarray, baseline: np.ndarray) -> dict[str, Any]:
    """Mean difference over seeds with its 95% t-interval, and the seeds the candidate won."""
    difference = candidate - baseline
    mean = float(difference.mean())
    if difference.size < 2:
        low = high = mean
    else:
        half = (
            stats.t.ppf(0.975, difference.size - 1)
            * difference.std(ddof=1)
            / np.sqrt(difference.size)
        )
        low, high = mean - half, mean + half
    return {
        "difference": mean,
        "ci95": [float(low), float(high)],
        "ci_excludes_zero": bool(low > 0 or high < 0),
        "wins": int((difference > 0).sum()),
        "seeds": int(difference.size),
    }


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per arm: final mean and worst objective per seed, wall time per step; SPARD's paired
    comparisons to each baseline; SPARD's own time per step."""
    arms = [arm for arm in ("grpo_avg", "gdpo", "spard") if any(r["arm"] == arm for r in runs)]
    seeds = sorted({run["seed"] for run in runs})
    by_key = {(run["arm"], run["seed"]): run for run in runs}
    summary: dict[str, Any] = {"seeds": seeds, "arms": {}}
    for arm in arms:
        finals = [final_scores(by_key[(arm, seed)]) for seed in seeds]
        step_seconds = np.concatenate([by_key[(arm, s)]["step_seconds"] for s in seeds])
        summary["arms"][arm] = {
            "mean": [float(np.mean(list(f.values()))) for f in finals],
            "worst": [float(min(f.values())) for f in finals],
            "objectives": {name: [f[name] for f in finals] for name in OBJECTIVES},
            "step_seconds_median": float(np.median(step_seconds)),
            "step_seconds_mean": float(np.mean(step_seconds)),
            "resume": [by_key[(arm, s)]["resume"] for s in seeds],
        }
    if "spard" in arms:
        spard = summary["arms"]["spard"]
        for metric in ("mean", "worst"):
            spard[f"vs_{metric}"] = {
                baseline: paired(
                    np.array(spard[metric]), np.array(summary["arms"][baseline][metric])
                )
                for baseline in BASELINES
                if baseline in arms
            }
        own = [
            by_key[("spard", s)]["timings"].get("spard", 0.0) / by_key[("spard", s)]["steps"]
            for s in seeds
        ]
        spard["own_seconds_per_step"] = float(np.mean(own))
        spard["overhead_fraction"] = float(np.mean(own) / spard["step_seconds_mean"])
    return summary


def markdown(summary: dict[str, Any], steps: int) -> str:
    """The report as a markdown page."""
    seeds = len(summary["seeds"])
    lines = [
        f"# TRL GRPO on a small LM: SPARD vs GRPOavg vs GDPO ({seeds} seeds x {steps} steps)",
        "",
        "Held-out scores on [0, 1] (judge / 5), mean over the evaluations of the last fifth of "
        "training; mean over seeds (min-max).",
        "",
        "| arm | mean score | worst objective | " + " | ".join(OBJECTIVES) + " | s/step |",
        "| --- | --- | --- | " + " | ".join("---" for _ in OBJECTIVES) + " | --- |",
    ]
    for arm, row in summary["arms"].items():
        cells = [_spread(row["mean"]), _spread(row["worst"])]
        cells += [f"{np.mean(row['objectives'][name]):.3f}" for name in OBJECTIVES]
        lines.append(
            f"| {LABELS[arm]} | " + " | ".join(cells) + f" | {row['step_seconds_median']:.2f} |"
        )
    spard = summary["arms"].get("spard")
    if spard is not None and spard.get("vs_mean"):
        lines += ["", "SPARD minus each baseline, paired by seed (95% t-interval over seeds):", ""]
        lines += ["| metric | baseline | difference | 95% CI | seeds won | CI excludes 0 |"]
        lines += ["| --- | --- | --- | --- | --- | --- |"]
        for metric in ("mean", "worst"):
            for baseline, result in spard[f"vs_{metric}"].items():
                low, high = result["ci95"]
                lines.append(
                    f"| {metric} | {LABELS[baseline]} | {result['difference']:+.4f} | "
                    f"[{low:+.4f}, {high:+.4f}] | {result['wins']}/{result['seeds']} | "
                    f"{'yes' if result['ci_excludes_zero'] else 'no'} |"
                )
    if spard is not None:
        lines += [
            "",
            f"SPARD's own work per step (service call, weights, advantage scaling), measured in "
            f"the trainer: {1e3 * spard['own_seconds_per_step']:.1f} ms, "
            f"{100 * spard['overhead_fraction']:.2f}% of its mean step "
            f"({spard['step_seconds_mean']:.2f} s).",
        ]
    return "\n".join(lines) + "\n"


def _spread(values: Sequence[float]) -> str:
    return f"{np.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def plot(runs: Sequence[dict[str, Any]], out: Path) -> None:
    """``held_out.png`` (score per objective over steps, per arm, seed bands) and, for SPARD,
    ``weights.png`` (reward weights and the spread of sample weights over steps)."""
    arms = list(dict.fromkeys(run["arm"] for run in runs))
    panels = [*OBJECTIVES, "mean"]
    figure, axes = plt.subplots(2, 3, figsize=(14, 7), sharex=True)
    for axis, panel in zip(axes.flat, panels, strict=True):
        for arm in arms:
            arm_runs = [run for run in runs if run["arm"] == arm]
            steps = [e["step"] for e in arm_runs[0]["evals"]]
            values = np.array([[_panel(e, panel) for e in run["evals"]] for run in arm_runs])
            axis.plot(steps, values.mean(axis=0), label=LABELS[arm])
            axis.fill_between(steps, values.min(axis=0), values.max(axis=0), alpha=0.2)
        axis.set_title(panel)
        axis.set_xlabel("step")
    axes.flat[0].legend(fontsize=8)
    figure.suptitle("Held-out score (noise-free, [0, 1]); band: min-max over seeds")
    figure.tight_layout()
    figure.savefig(out / "held_out.png", dpi=110)
    plt.close(figure)
    spard_runs = [run for run in runs if run["arm"] == "spard" and run.get("history")]
    if not spard_runs:
        return
    figure, (weights_axis, spread_axis) = plt.subplots(1, 2, figsize=(13, 4.5))
    for name in OBJECTIVES:
        steps = [entry["step"] for entry in spard_runs[0]["history"]]
        series = np.array(
            [[h["reward_weights"][name] for h in run["history"]] for run in spard_runs]
        )
        weights_axis.plot(steps, series.mean(axis=0), label=name)
        weights_axis.fill_between(steps, series.min(axis=0), series.max(axis=0), alpha=0.2)
    weights_axis.set_title("SPARD reward weights (band: min-max over seeds)")
    weights_axis.set_xlabel("step")
    weights_axis.legend(fontsize=8)
    for quantile in ("min", "p10", "p50", "p90", "max"):
        series = np.array(
            [[_number(h["sample_weights"][quantile]) for h in run["history"]] for run in spard_runs]
        )
        spread_axis.plot(steps, np.nanmean(series, axis=0), label=quantile)
    spread_axis.set_title("SPARD sample weights over informative prompts (mean over seeds)")
    spread_axis.set_xlabel("step")
    spread_axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "weights.png", dpi=110)
    plt.close(figure)


def _panel(evaluation: dict[str, Any], panel: str) -> float:
    return float(evaluation["mean"] if panel == "mean" else evaluation["scores"][panel])


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)
