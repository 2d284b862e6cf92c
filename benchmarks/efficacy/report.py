"""Summary statistics across seeds, the markdown table and the plots of a benchmark."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from spard.efficacy.train import BenchConfig


def _by_variant(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        grouped[run["variant"]].append(run)
    return dict(grouped)


def _first_reach(steps: list[int], curve: np.ndarray, level: float) -> int | None:
    reached = np.flatnonzero(curve >= level - 1e-12)
    return int(steps[reached[0]]) if reached.size else None


def summarise(runs: list[dict[str, Any]], baseline: str) -> dict[str, Any]:
    """Per variant: final held-out scores (mean and std over seeds), worst objective, and the
    steps its seed-averaged mean curve takes to reach the baseline's final mean."""
    grouped = _by_variant(runs)
    steps = grouped[next(iter(grouped))][0]["eval_steps"]
    curves = {
        name: np.mean([np.array(r["scores"]).mean(axis=1) for r in rs], axis=0)
        for name, rs in grouped.items()
    }
    target = float(curves[baseline][-1]) if baseline in curves else None
    baseline_reach = _first_reach(steps, curves[baseline], target) if target is not None else None
    summary: dict[str, Any] = {"baseline": baseline, "baseline_final_mean": target, "variants": {}}
    for name, variant_runs in grouped.items():
        finals = np.array([r["scores"][-1] for r in variant_runs])  # (seeds, K)
        means, worsts = finals.mean(axis=1), finals.min(axis=1)
        reach = _first_reach(steps, curves[name], target) if target is not None else None
        summary["variants"][name] = {
            "objectives": finals.mean(axis=0).tolist(),
            "objectives_std": finals.std(axis=0, ddof=1).tolist() if len(finals) > 1 else None,
            "mean": float(means.mean()),
            "mean_std": float(means.std(ddof=1)) if len(means) > 1 else None,
            "worst": float(worsts.mean()),
            "worst_std": float(worsts.std(ddof=1)) if len(worsts) > 1 else None,
            "steps_to_baseline": reach,
            "steps_ratio": None if reach is None or not baseline_reach else reach / baseline_reach,
            "seeds": len(variant_runs),
        }
    return summary


def _pm(value: float, spread: float | None) -> str:
    return f"{value:.3f}" if spread is None else f"{value:.3f} ± {spread:.3f}"


def write_markdown(
    summary: dict[str, Any], bench: BenchConfig, seeds: list[int], path: Path
) -> str:
    """The results table (also returned)."""
    names = list(bench.objectives)
    header = ["variant", *names, "mean", "worst", f"steps to {summary['baseline']} final"]
    lines = [
        f"{len(seeds)} seeds, {bench.steps} steps of {bench.prompts_per_step} prompts x "
        f"{bench.rollouts} rollouts; held-out scores at the last step (mean ± std over seeds).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for name, row in summary["variants"].items():
        spreads = row["objectives_std"] or [None] * len(names)
        cells = [_pm(v, s) for v, s in zip(row["objectives"], spreads, strict=True)]
        reach = "never" if row["steps_to_baseline"] is None else str(row["steps_to_baseline"])
        if row["steps_ratio"] is not None:
            reach += f" ({row['steps_ratio']:.2f}x)"
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    *cells,
                    _pm(row["mean"], row["mean_std"]),
                    _pm(row["worst"], row["worst_std"]),
                    reach,
                ]
            )
            + " |"
        )
    table = "\n".join(lines) + "\n"
    path.write_text(table)
    return table


def write_plots(runs: list[dict[str, Any]], bench: BenchConfig, out: Path) -> None:
    """learning_curves.png (per objective and mean) and weights.png (reward weights)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grouped = _by_variant(runs)
    names = list(bench.objectives)
    figure, axes = plt.subplots(1, len(names) + 1, figsize=(4 * (len(names) + 1), 3.4), sharex=True)
    for variant, variant_runs in grouped.items():
        steps = variant_runs[0]["eval_steps"]
        scores = np.mean([np.array(r["scores"]) for r in variant_runs], axis=0)
        for k, name in enumerate(names):
            axes[k].plot(steps, scores[:, k], label=variant)
            axes[k].set_title(name)
        axes[-1].plot(steps, scores.mean(axis=1), label=variant)
    axes[-1].set_title("mean over objectives")
    axes[-1].legend(fontsize="x-small")
    for axis in axes:
        axis.set_xlabel("step")
    axes[0].set_ylabel("held-out score")
    figure.tight_layout()
    figure.savefig(out / "learning_curves.png", dpi=100)
    plt.close(figure)

    adaptive = [v for v in grouped if v.startswith(("spard", "pawa", "saw"))]
    if not adaptive:
        return
    figure, axes = plt.subplots(1, len(adaptive), figsize=(4 * len(adaptive), 3.2), squeeze=False)
    for axis, variant in zip(axes[0], adaptive, strict=True):
        weights = np.mean([np.array(r["weights"]) for r in grouped[variant]], axis=0)
        for k, name in enumerate(names):
            axis.plot(np.arange(1, len(weights) + 1), weights[:, k], label=name)
        axis.set_title(f"{variant}: reward weights")
        axis.set_xlabel("step")
    axes[0][0].legend(fontsize="x-small")
    figure.tight_layout()
    figure.savefig(out / "weights.png", dpi=100)
    plt.close(figure)
