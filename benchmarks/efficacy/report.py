"""The suite's report: the summary dict, the markdown tables and the plots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.efficacy.arms import FIELD_ARMS
from benchmarks.efficacy.stats import ALPHA, TIE_MARGIN, Table, arm_summary, family_cells

BASELINE_NAMES = ("static", "gdpo", "saw", "static_rescaled")
# Arms added after the default was frozen (arms.FIELD_ARMS): with any of them in the table, the
# default becomes one more baseline, so each field method is also compared with SPARD.
FIELD_NAMES = tuple(arm.name for arm in FIELD_ARMS)


def summarise(table: Table, default_arm: str) -> dict[str, Any]:
    """Aggregates of every arm, per-family cells, and the issue's targets for ``default_arm``."""
    baselines = [name for name in BASELINE_NAMES if name in table.arms]
    if default_arm in table.arms and any(name in table.arms for name in FIELD_NAMES):
        baselines.append(default_arm)
    arms = {arm: arm_summary(table, arm, baselines) for arm in table.arms}
    summary: dict[str, Any] = {
        "baselines": baselines,
        "families": list(table.families),
        "seeds": list(table.seeds),
        "arms": arms,
        "per_family": family_cells(table),
        "targets": {},
    }
    versus = arms.get(default_arm, {}).get("versus", {})
    if "static" in versus and "gdpo" in versus:
        summary["targets"] = _targets(versus)
    return summary


def _targets(versus: dict[str, Any]) -> dict[str, bool]:
    """The pre-registered targets of the default (PREREGISTRATION.md)."""
    static, gdpo = versus["static"], versus["gdpo"]
    return {
        "beats static: difference CI above 0": static["difference_ci"][0] > 0.0,
        "beats gdpo on the suite mean": gdpo["difference"] > 0.0,
        "against gdpo: difference CI not below 0": gdpo["difference_ci"][1] >= 0.0,
        "no family significantly worse than static (Holm)": not static[
            "families_significantly_worse"
        ],
        "no family significantly worse than gdpo (Holm)": not gdpo["families_significantly_worse"],
    }


def _versus_cell(row: dict[str, Any], baseline: str) -> str:
    other = row["versus"].get(baseline)
    if other is None:
        return "-"
    low, high = other["difference_ci"]
    rate = {key: max(0.0, value) for key, value in other["win_rate"].items()}
    worse = len(other["families_significantly_worse"])
    better = len(other["families_significantly_better"])
    return (
        f"{other['difference']:+.3f} [{low:+.3f}, {high:+.3f}] · "
        f"{rate['wins']:.0%}/{rate['ties']:.0%}/{rate['losses']:.0%} · {worse}↓ {better}↑"
    )


def write_markdown(summary: dict[str, Any], header: str, path: Path) -> str:
    """The aggregate table, the targets, and one table per family (also returned)."""
    versus = summary.get("baselines") or [n for n in BASELINE_NAMES if n in summary["arms"]]
    columns = ["arm", "mean", "above constant", "worst", "AUC"] + [f"vs {name}" for name in versus]
    lines = [
        header,
        "",
        "Each vs cell: mean paired difference of the endpoint [95% CI, families then seeds "
        f"resampled] · wins/ties/losses over (family, seed) pairs (tie: |difference| <= "
        f"{TIE_MARGIN}) · families significantly worse↓ / better↑ (paired t-test over seeds, "
        f"Holm over families, {ALPHA}). 'above constant': the endpoint minus the best "
        "constant policy's on the same held-out prompts.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for arm, row in summary["arms"].items():
        cells = [arm, f"{row['mean']:.3f}", f"{row['learning']:+.3f}"]
        cells += [f"{row['worst']:.3f}", f"{row['auc']:.3f}"]
        cells += [_versus_cell(row, name) for name in versus]
        lines.append("| " + " | ".join(cells) + " |")
    lines += _floored_table(summary, versus)
    if summary["targets"]:
        lines += ["", "Pre-registered targets for the default:", ""]
        lines += [
            f"- {name}: {'met' if met else '**missed**'}"
            for name, met in summary["targets"].items()
        ]
    lines += _family_tables(summary)
    table = "\n".join(lines) + "\n"
    path.write_text(table)
    return table


def _floored_table(summary: dict[str, Any], versus: Sequence[str]) -> list[str]:
    """The sensitivity check: differences with each objective floored at its constant."""
    lines = [
        "",
        "Sensitivity (not the endpoint): the same differences with every objective counted no "
        "lower than its own best constant, so an arm gains nothing from another arm collapsing "
        "below a constant answer.",
        "",
        "| arm | " + " | ".join(f"vs {name}" for name in versus) + " |",
        "|---|" + "---|" * len(versus),
    ]
    for arm, row in summary["arms"].items():
        cells = []
        for name in versus:
            other = row["versus"].get(name)
            if other is None:
                cells.append("-")
                continue
            low, high = other["floored_difference_ci"]
            cells.append(f"{other['floored_difference']:+.3f} [{low:+.3f}, {high:+.3f}]")
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return lines


def _family_tables(summary: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "Per family: final held-out mean and worst objective (mean ± std over seeds), and the "
        "mean above the best constant policy; ↓/↑ mark a Holm-significant difference from "
        "static.",
    ]
    static = {
        arm: row["versus"].get("static", {}).get("per_family", {})
        for arm, row in summary["arms"].items()
    }
    for family, cells in summary["per_family"].items():
        constant = cells["constant"]["mean"]
        lines += [
            "",
            f"**{family}** (best constant policy: {constant:.3f})",
            "",
            "| arm | mean | above constant | worst | AUC | vs static: difference, p, p (Holm) |",
            "|---|---|---|---|---|---|",
        ]
        for arm, cell in cells.items():
            if arm == "constant":
                continue
            test = static[arm].get(family)
            mark = ""
            if test is not None and test["p_holm"] < ALPHA:
                mark = " ↑" if test["difference"] > 0 else " ↓"
            test_cell = "-"
            if test is not None:
                test_cell = f"{test['difference']:+.3f}, {test['p']:.3f}, {test['p_holm']:.3f}"
            lines.append(
                f"| {arm} | {_pm(cell['mean'], cell['mean_std'])}{mark} | "
                f"{cell['learning']:+.3f} | {cell['worst']:.3f} | {cell['auc']:.3f} | "
                f"{test_cell} |"
            )
    return lines


def _pm(value: float, spread: float) -> str:
    return f"{value:.3f} ± {spread:.3f}"


def write_plots(
    table: Table, runs: Sequence[dict[str, Any]], default_arm: str, out: Path
) -> list[Path]:
    """families.png (per-family bars with 95% CIs), learning_curves.png (mean over objectives
    per family, seed bands) and weights.png (the default's reward weights per family)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [out / "families.png", out / "learning_curves.png"]
    figure, axis = plt.subplots(figsize=(max(8.0, 1.3 * len(table.families)), 4.0))
    width = 0.8 / len(table.arms)
    for a, arm in enumerate(table.arms):
        values = table.mean[a]  # (families, seeds)
        centre = values.mean(axis=1)
        half = 1.96 * values.std(axis=1, ddof=1) / np.sqrt(values.shape[1])
        positions = np.arange(len(table.families)) + (a - (len(table.arms) - 1) / 2) * width
        axis.bar(positions, centre, width, yerr=half, capsize=2, label=arm)
    constant = np.nanmean(table.constant, axis=1)
    axis.hlines(
        constant,
        np.arange(len(table.families)) - 0.45,
        np.arange(len(table.families)) + 0.45,
        colors="black",
        linestyles="dashed",
        linewidth=1.0,
        label="best constant policy",
    )
    axis.set_xticks(np.arange(len(table.families)), table.families, rotation=20, fontsize=8)
    axis.set_ylabel("final held-out mean over objectives")
    axis.legend(fontsize="x-small", ncols=min(len(table.arms), 5))
    figure.tight_layout()
    figure.savefig(paths[0], dpi=100)
    plt.close(figure)

    columns = min(len(table.families), 3)
    rows = -(-len(table.families) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    steps = np.asarray(table.eval_steps)
    for axis, family in zip(axes.flat, table.families, strict=False):
        for arm in table.arms:
            curves = np.array([table.curves[(arm, family, seed)] for seed in table.seeds])
            centre = curves.mean(axis=0)
            axis.plot(steps, centre, label=arm, linewidth=1.2)
            axis.fill_between(steps, curves.min(axis=0), curves.max(axis=0), alpha=0.12)
        axis.axhline(
            np.nanmean(table.constant[table.families.index(family)]),
            color="black",
            linestyle="dashed",
            linewidth=0.8,
        )
        axis.set_title(family, fontsize=9)
    for axis in axes.flat[len(table.families) :]:
        axis.axis("off")
    axes[0][0].set_ylabel("held-out mean (dashed: best constant)")
    axes[0][0].legend(fontsize="xx-small")
    figure.tight_layout()
    figure.savefig(paths[1], dpi=90)
    plt.close(figure)
    if default_arm in table.arms:
        paths.append(_weights_plot(table, runs, default_arm, out / "weights.png"))
    return paths


def _weights_plot(table: Table, runs: Sequence[dict[str, Any]], arm: str, path: Path) -> Path:
    import matplotlib.pyplot as plt

    columns = min(len(table.families), 3)
    rows = -(-len(table.families) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    for axis, family in zip(axes.flat, table.families, strict=False):
        chosen = [run for run in runs if run["arm"] == arm and run["family"] == family]
        if not chosen or not chosen[0]["weights"]:
            continue
        # Families whose objectives vary with the seed (rubric): average the seeds that share
        # the first seed's objectives.
        chosen = [run for run in chosen if run["objectives"] == chosen[0]["objectives"]]
        weights = np.mean([np.asarray(run["weights"]) for run in chosen], axis=0)
        every = chosen[0]["bench"]["steps"] / max(len(weights), 1)
        for k, name in enumerate(chosen[0]["objectives"]):
            axis.plot(np.arange(len(weights)) * every, weights[:, k], label=name, linewidth=1.2)
        seeds = ", ".join(str(run["seed"]) for run in chosen)
        axis.set_title(f"{family}: {arm} reward weights (seeds {seeds})", fontsize=9)
        axis.legend(fontsize="xx-small")
    for axis in axes.flat[len(table.families) :]:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
