"""The TRL benchmark's report, re-computed from the raw per-run JSON files by one command.

``python -m benchmarks.trl_lm.report RUNS_DIR --out DIR`` reads every
``<arm>-seed<seed>-<hash>.json`` of one protocol (``--protocol-hash``, default: the hash with
the most runs) and writes ``results.json``, ``results.md`` and the plots into ``DIR``.

The analysis is the one ``PREREGISTRATION.md`` fixes: a run's score is its held-out mean over
the five objectives at the final step; SPARD is compared with GDPO and with GRPOavg (judge on
[0, 1]) by paired t-tests over the seeds both arms have, Holm-adjusted over that family of
two, with Holm-step confidence intervals; every other comparison gets a plain 95% interval.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from benchmarks.trl_lm.protocol import ARMS, PRIMARY_COMPARISONS
from benchmarks.trl_lm.regressions import markdown_lines as regression_lines
from benchmarks.trl_lm.regressions import summarise_regressions
from benchmarks.trl_lm.tasks import OBJECTIVES

PREREGISTRATION = Path(__file__).resolve().parent / "PREREGISTRATION.md"
ALPHA = 0.05
# What each ablation isolates: (candidate, baseline, what the difference shows).
ABLATIONS = (
    ("spard", "floor", "PAWA on top of the floored decoupled advantages"),
    ("floor", "gdpo", "the floored advantage rule against plain GDPO (no PAWA)"),
    ("spard", "placebo", "SPARD's signal against random weights of the same spread"),
    ("pawa", "grpo_avg_raw", "PAWA's weights on TRL's summed advantages"),
    ("radr", "grpo_avg_raw", "RADR's data weights on TRL's summed advantages"),
    ("saw", "grpo_avg_raw", "SAW's weights on TRL's summed advantages"),
    ("grpo_avg_unit", "grpo_avg_raw", "rescaling the judge to [0, 1] in GRPOavg"),
    ("spard", "saw", "SPARD against SAW"),
    ("spard", "grpo_avg_raw", "SPARD against GRPOavg with the raw judge"),
)


def load_runs(folder: Path, digest: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """The runs of one protocol in ``folder`` (the hash with the most runs by default)."""
    runs = [json.loads(path.read_text()) for path in sorted(folder.glob("*-seed*-*.json"))]
    if not runs:
        return [], digest or ""
    if digest is None:
        digest = Counter(run.get("protocol_hash", "") for run in runs).most_common(1)[0][0]
    return [run for run in runs if run.get("protocol_hash", "") == digest], digest


def final(run: dict[str, Any]) -> dict[str, float]:
    """The held-out scores per objective at the final step."""
    last = max(run["evals"], key=lambda e: e["step"])
    if last["step"] != run["steps"]:
        raise ValueError(f"{run['arm']} seed {run['seed']}: no evaluation at the final step")
    return {name: float(last["scores"][name]) for name in OBJECTIVES}


def endpoints(run: dict[str, Any]) -> dict[str, float]:
    scores = final(run)
    return {
        "mean": float(np.mean(list(scores.values()))),
        "worst": float(min(scores.values())),
        "mean_without_length": float(np.mean([v for k, v in scores.items() if k != "length"])),
        **scores,
    }


def steps_to_reach(run: dict[str, Any], target: float) -> float:
    """The first evaluated step whose held-out mean reaches ``target`` (inf if none)."""
    for evaluation in sorted(run["evals"], key=lambda e: e["step"]):
        if evaluation["mean"] >= target:
            return float(evaluation["step"])
    return float("inf")


def paired(
    candidate: dict[int, float], baseline: dict[int, float], level: float = 1 - ALPHA
) -> dict[str, Any]:
    """Mean difference over the seeds both have, its t-interval at ``level``, the two-sided
    paired t-test's p-value and the seeds the candidate won."""
    seeds = sorted(set(candidate) & set(baseline))
    difference = np.array([candidate[s] - baseline[s] for s in seeds])
    result: dict[str, Any] = {"seeds": len(seeds), "difference": float(np.mean(difference))}
    result["wins"] = int((difference > 0).sum())
    if len(seeds) < 2 or difference.std(ddof=1) == 0:
        result.update(sd=0.0, p=float("nan"), ci=[result["difference"]] * 2, level=level)
        return result
    sd = float(difference.std(ddof=1))
    half = stats.t.ppf(0.5 + level / 2, len(seeds) - 1) * sd / np.sqrt(len(seeds))
    p = float(stats.ttest_1samp(difference, 0.0).pvalue)
    result.update(sd=sd, p=p, ci=[result["difference"] - half, result["difference"] + half])
    result["level"] = level
    return result


def holm(results: list[dict[str, Any]], values: list[tuple[dict[int, float], dict[int, float]]]):
    """Holm over the family: adjusted p-values, the decision at ALPHA, and for the r-th
    smallest p the interval at level ``1 - ALPHA / (m - r + 1)`` (the level Holm tests it
    at)."""
    m = len(results)
    order = sorted(range(m), key=lambda i: np.nan_to_num(results[i]["p"], nan=1.0))
    running, still = 0.0, True
    for rank, index in enumerate(order):
        p = np.nan_to_num(results[index]["p"], nan=1.0)
        running = max(running, min(1.0, (m - rank) * p))
        level = 1 - ALPHA / (m - rank)
        adjusted = paired(*values[index], level=level)
        results[index]["holm_p"] = running
        results[index]["holm_ci"] = adjusted["ci"]
        results[index]["holm_level"] = level
        still = still and running < ALPHA
        results[index]["holm_reject"] = bool(still)


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Every number of the report, from the runs."""
    by_arm: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for run in runs:
        by_arm[run["arm"]][run["seed"]] = run
    arms = [arm for arm in ARMS if arm in by_arm]
    points = {arm: {s: endpoints(r) for s, r in by_arm[arm].items()} for arm in arms}

    def metric(arm: str, name: str) -> dict[int, float]:
        return {seed: values[name] for seed, values in points[arm].items()}

    summary: dict[str, Any] = {"arms": {}, "primary": [], "secondary": {}, "ablations": []}
    for arm in arms:
        arm_runs = list(by_arm[arm].values())
        step_seconds = np.concatenate([r["step_seconds"] for r in arm_runs])
        row: dict[str, Any] = {
            "label": ARMS[arm].label,
            "seeds": sorted(by_arm[arm]),
            **{
                name: _describe(list(metric(arm, name).values()))
                for name in ("mean", "worst", "mean_without_length", *OBJECTIVES)
            },
            "step_seconds_mean": float(np.mean(step_seconds)),
            "run_seconds_mean": float(np.mean([r["seconds"] for r in arm_runs])),
        }
        own = [r["timings"].get("spard", 0.0) / r["steps"] for r in arm_runs]
        if ARMS[arm].trainer != "trl":
            row["own_seconds_per_step"] = float(np.mean(own))
            row["overhead_fraction"] = float(np.mean(own) / row["step_seconds_mean"])
        restored = [r["resume"].get("state_restored") for r in arm_runs]
        if any(value is not None for value in restored):
            row["state_restored"] = f"{sum(bool(v) for v in restored)}/{len(restored)}"
        summary["arms"][arm] = row
    # Primary: SPARD vs GDPO and vs GRPOavg on [0, 1], Holm over the two.
    family = [(a, b) for a, b in PRIMARY_COMPARISONS if a in arms and b in arms]
    values = [(metric(a, "mean"), metric(b, "mean")) for a, b in family]
    primary = [
        {"candidate": a, "baseline": b, **paired(*v)}
        for (a, b), v in zip(family, values, strict=True)
    ]
    if primary:
        holm(primary, values)
    summary["primary"] = primary
    # Secondary: worst objective, per-objective scores (plain 95% intervals), steps to reach.
    for name in ("worst", "mean_without_length", *OBJECTIVES):
        summary["secondary"][name] = [
            {"candidate": a, "baseline": b, **paired(metric(a, name), metric(b, name))}
            for a, b in PRIMARY_COMPARISONS
            if a in arms and b in arms
        ]
    if "grpo_avg_unit" in arms:
        target = float(np.mean(list(metric("grpo_avg_unit", "mean").values())))
        reach = {}
        for arm in arms:
            steps = [steps_to_reach(r, target) for r in by_arm[arm].values()]
            finite = [s for s in steps if np.isfinite(s)]
            reach[arm] = {
                "reached": f"{len(finite)}/{len(steps)}",
                "median_step": float(np.median(steps)) if finite else None,
            }
        summary["steps_to_reach"] = {"target": target, "arms": reach}
    for candidate, baseline, meaning in ABLATIONS:
        if candidate in arms and baseline in arms:
            summary["ablations"].append(
                {
                    "candidate": candidate,
                    "baseline": baseline,
                    "shows": meaning,
                    "mean": paired(metric(candidate, "mean"), metric(baseline, "mean")),
                    "worst": paired(metric(candidate, "worst"), metric(baseline, "worst")),
                }
            )
    # One step-0 evaluation per seed (every arm starts from the same policy and evaluates it
    # alike), so seeds with more arms do not count more.
    step0 = {r["seed"]: r["evals"][0] for r in runs if r["evals"] and r["evals"][0]["step"] == 0}
    if step0:
        summary["pretrained"] = {
            name: float(np.mean([e["scores"][name] for e in step0.values()])) for name in OBJECTIVES
        }
    summary["finals"] = {arm: {str(s): v for s, v in points[arm].items()} for arm in arms}
    summary["regressions"] = summarise_regressions(runs, arms)
    return summary


def _describe(values: Sequence[float]) -> dict[str, float]:
    array = np.array(values, dtype=float)
    sd = float(array.std(ddof=1)) if array.size > 1 else 0.0
    return {
        "mean": float(array.mean()),
        "sd": sd,
        "min": float(array.min()),
        "max": float(array.max()),
    }


def markdown(
    summary: dict[str, Any], digest: str, settings: dict[str, Any], protocol_link: str
) -> str:
    """The report as a markdown page; ``protocol_link``: the pre-registration, relative to it."""
    lines = [
        f"# TRL GRPO on a small LM: the pre-registered benchmark (protocol {digest})",
        "",
        f"Protocol: [`PREREGISTRATION.md`]({protocol_link}). "
        f"{settings.get('steps')} steps per run; held-out scores on [0, 1] (the judge / 5), "
        "noise-free, at the final step; mean over seeds (sd).",
        "",
        "| arm | seeds | held-out mean | worst objective | mean w/o length | "
        + " | ".join(OBJECTIVES)
        + " | s/step |",
        "| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in OBJECTIVES) + " | --- |",
    ]
    for row in summary["arms"].values():
        cells = [f"{row[name]['mean']:.3f} ({row[name]['sd']:.3f})" for name in ("mean", "worst")]
        cells.append(f"{row['mean_without_length']['mean']:.3f}")
        cells += [f"{row[name]['mean']:.3f}" for name in OBJECTIVES]
        lines.append(
            f"| {row['label']} | {len(row['seeds'])} | "
            + " | ".join(cells)
            + f" | {row['step_seconds_mean']:.2f} |"
        )
    if "pretrained" in summary:
        cells = ", ".join(f"{k} {v:.3f}" for k, v in summary["pretrained"].items())
        lines += ["", f"The pretrained policy at step 0 (every arm, mean over seeds): {cells}."]
    if summary["primary"]:
        lines += [
            "",
            "## Primary endpoint: held-out mean at the final step",
            "",
            "Paired by seed; two-sided paired t; Holm over the two comparisons; the interval at "
            "the level Holm tests each comparison at.",
            "",
            "| comparison | seeds | difference | Holm CI | p | Holm p | seeds won | success |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for item in summary["primary"]:
            low, high = item.get("holm_ci", item["ci"])
            success = item.get("holm_reject", False) and item["difference"] > 0
            lines.append(
                f"| {item['candidate']} - {item['baseline']} | {item['seeds']} | "
                f"{item['difference']:+.4f} | [{low:+.4f}, {high:+.4f}] "
                f"({100 * item.get('holm_level', 0.95):.1f}%) | {item['p']:.3g} | "
                f"{item.get('holm_p', float('nan')):.3g} | {item['wins']}/{item['seeds']} | "
                f"{'yes' if success else 'no'} |"
            )
    if any(summary["secondary"].values()):
        lines += [
            "",
            "## Secondary endpoints (plain 95% intervals)",
            "",
            "| metric | comparison | seeds | difference | 95% CI | seeds won |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for name, items in summary["secondary"].items():
            for item in items:
                low, high = item["ci"]
                lines.append(
                    f"| {name} | {item['candidate']} - {item['baseline']} | {item['seeds']} | "
                    f"{item['difference']:+.4f} | [{low:+.4f}, {high:+.4f}] | "
                    f"{item['wins']}/{item['seeds']} |"
                )
    if "steps_to_reach" in summary:
        reach = summary["steps_to_reach"]
        lines += [
            "",
            f"Steps to reach GRPOavg-on-[0,1]'s final mean ({reach['target']:.3f}), first "
            "evaluation at or above it:",
            "",
            "| arm | seeds that reach it | median step |",
            "| --- | --- | --- |",
        ]
        for arm, item in reach["arms"].items():
            median = item["median_step"]
            shown = "-" if median is None or not np.isfinite(median) else f"{median:.0f}"
            lines.append(f"| {arm} | {item['reached']} | {shown} |")
    if summary["ablations"]:
        lines += [
            "",
            "## Ablations (plain 95% intervals; not part of the primary family)",
            "",
            "| comparison | what it shows | seeds | mean diff | 95% CI | worst diff | 95% CI |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for item in summary["ablations"]:
            mean, worst = item["mean"], item["worst"]
            lines.append(
                f"| {item['candidate']} - {item['baseline']} | {item['shows']} | "
                f"{mean['seeds']} | {mean['difference']:+.4f} | "
                f"[{mean['ci'][0]:+.4f}, {mean['ci'][1]:+.4f}] | {worst['difference']:+.4f} | "
                f"[{worst['ci'][0]:+.4f}, {worst['ci'][1]:+.4f}] |"
            )
    if summary.get("regressions"):
        lines += regression_lines(summary["regressions"])
    costs = [(arm, row) for arm, row in summary["arms"].items() if "own_seconds_per_step" in row]
    if costs:
        lines += [
            "",
            "## SPARD's own cost per step",
            "",
            "The time of SPARD's own work inside the trainer (the service call to a real `spard "
            "serve` on Redis, setting the weights, replacing or scaling the advantages), apart "
            "from TRL's reward functions and generation, against the arm's mean step.",
            "",
            "| arm | own ms/step | share of step | mean step (s) | curriculum restored |",
            "| --- | --- | --- | --- | --- |",
        ]
        for arm, row in costs:
            lines.append(
                f"| {arm} | {1e3 * row['own_seconds_per_step']:.1f} | "
                f"{100 * row['overhead_fraction']:.2f}% | {row['step_seconds_mean']:.2f} | "
                f"{row.get('state_restored', '-')} |"
            )
        spard = summary["arms"].get("spard")
        if spard is not None:
            lines += [
                "",
                f"SPARD's own work per step: {1e3 * spard['own_seconds_per_step']:.1f} ms, "
                f"{100 * spard['overhead_fraction']:.2f}% of its mean step.",
            ]
    lines += ["", "![held-out curves](held_out.png)", "", "![weights](weights.png)"]
    return "\n".join(lines) + "\n"


def plot(runs: Sequence[dict[str, Any]], out: Path) -> None:
    """``held_out.png``: held-out score per objective and the mean over steps, per arm, mean
    over seeds with a 95% t-band; ``weights.png``: the reward weights (and sample-weight
    spread) of every arm that moves them."""
    arms = [arm for arm in ARMS if any(r["arm"] == arm for r in runs)]
    panels = [*OBJECTIVES, "mean"]
    figure, axes = plt.subplots(2, 3, figsize=(15, 8), sharex=True)
    for axis, panel in zip(axes.flat, panels, strict=True):
        for arm in arms:
            arm_runs = [run for run in runs if run["arm"] == arm]
            steps = sorted({e["step"] for e in arm_runs[0]["evals"]})
            values = np.array(
                [
                    [_panel(next(e for e in r["evals"] if e["step"] == s), panel) for s in steps]
                    for r in arm_runs
                ]
            )
            mean = values.mean(axis=0)
            line = axis.plot(steps, mean, label=f"{arm} (n={len(arm_runs)})")[0]
            if len(arm_runs) > 1:
                half = (
                    stats.t.ppf(0.975, len(arm_runs) - 1)
                    * values.std(axis=0, ddof=1)
                    / np.sqrt(len(arm_runs))
                )
                axis.fill_between(
                    steps, mean - half, mean + half, alpha=0.12, color=line.get_color()
                )
        axis.set_title(panel)
        axis.set_xlabel("step")
    axes.flat[-1].legend(fontsize=7)
    figure.suptitle("Held-out score (noise-free, [0, 1]); band: 95% t-interval over seeds")
    figure.tight_layout()
    figure.savefig(out / "held_out.png", dpi=100)
    plt.close(figure)
    moving = [arm for arm in arms if any(r["arm"] == arm and r.get("history") for r in runs)]
    figure, axes = plt.subplots(2, max(len(moving), 1), figsize=(4.5 * max(len(moving), 1), 8))
    axes = np.array(axes).reshape(2, -1)
    for column, arm in enumerate(moving):
        arm_runs = [r for r in runs if r["arm"] == arm and r.get("history")]
        steps = [entry["step"] for entry in arm_runs[0]["history"]]
        length = min(len(r["history"]) for r in arm_runs)
        for name in OBJECTIVES:
            series = np.array(
                [[h["reward_weights"][name] for h in r["history"][:length]] for r in arm_runs]
            )
            axes[0, column].plot(steps[:length], series.mean(axis=0), label=name)
            axes[0, column].fill_between(
                steps[:length], series.min(axis=0), series.max(axis=0), alpha=0.15
            )
        axes[0, column].set_title(f"{arm}: reward weights (band: min-max)")
        for quantile in ("min", "p10", "p50", "p90", "max"):
            series = np.array(
                [
                    [_number(h["sample_weights"].get(quantile)) for h in r["history"][:length]]
                    for r in arm_runs
                ]
            )
            axes[1, column].plot(steps[:length], np.nanmean(series, axis=0), label=quantile)
        axes[1, column].set_title(f"{arm}: sample weights (informative prompts)")
        axes[1, column].set_xlabel("step")
    if moving:
        axes[0, 0].legend(fontsize=7)
        axes[1, 0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out / "weights.png", dpi=100)
    plt.close(figure)


def _panel(evaluation: dict[str, Any], panel: str) -> float:
    return float(evaluation["mean"] if panel == "mean" else evaluation["scores"][panel])


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def write(runs_folder: Path, out: Path, digest: str | None = None) -> str:
    """Re-compute the report from ``runs_folder``'s result files into ``out``; the page."""
    runs, digest = load_runs(runs_folder, digest)
    out.mkdir(parents=True, exist_ok=True)
    if not runs:
        return "no finished runs\n"
    summary = summarise(runs)
    settings = runs[0].get("settings", {"steps": runs[0]["steps"]})
    summary["protocol_hash"], summary["settings"] = digest, settings
    summary["runs"] = len(runs)
    (out / "results.json").write_text(json.dumps({"summary": summary}, indent=1) + "\n")
    # The link works from wherever the report is written (a committed folder or a scratch one).
    link = Path(os.path.relpath(PREREGISTRATION, out.resolve())).as_posix()
    page = markdown(summary, digest, settings, link)
    (out / "results.md").write_text(page)
    plot(runs, out)
    return page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="the folder of per-run JSON files")
    parser.add_argument("--out", type=Path, required=True, help="where the report goes")
    parser.add_argument("--protocol-hash", default=None)
    args = parser.parse_args()
    print(write(args.runs, args.out, args.protocol_hash))


if __name__ == "__main__":
    main()
