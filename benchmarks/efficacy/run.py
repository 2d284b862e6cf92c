"""``python -m benchmarks.efficacy``: the efficacy suite — every arm on every task family and
seed, one budget.

Writes runs.jsonl (as they finish), results.json, results.md and plots to ``--out`` (default:
a new folder ``spard-bench-<time>`` in the current directory; never the committed results).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from benchmarks.efficacy.arms import ARMS, SUITE_ARMS
from benchmarks.efficacy.families import FAMILIES, ROLLOUTS_PER_STEP
from benchmarks.efficacy.report import summarise, write_markdown, write_plots
from benchmarks.efficacy.stats import build_table
from benchmarks.efficacy.suite import run_jobs
from benchmarks.efficacy.train import BenchConfig

DEFAULT_ARM = "spard"
EVALUATION_SEEDS = 5  # seeds 0..4; the selection's screening seeds (100, 101) are never used
QUICK: dict[str, Any] = {"steps": 40, "eval_every": 10, "eval_prompts": 64}
QUICK_FAMILIES = ("speeds", "unequal_units_g4", "missing_by_source")
QUICK_ARMS = ("static", "gdpo", "spard")
# Reports list families and arms in one order, however they were asked for or finished.
ARM_ORDER = {
    name: i for i, name in enumerate(dict.fromkeys([*(arm.name for arm in SUITE_ARMS), *ARMS]))
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.efficacy",
        description="The efficacy suite: tiny-policy GRPO on every task family, every arm.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--suite", action="store_true", help="all families and suite arms (what runs by default)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 40 steps, 2 seeds, 3 families, 3 arms"
    )
    parser.add_argument("--families", help=f"comma-separated subset of {', '.join(FAMILIES)}")
    parser.add_argument("--arms", help=f"comma-separated subset of {', '.join(ARMS)}")
    parser.add_argument("--seeds", type=int, help="number of seeds, from 0 (default 5, quick 2)")
    parser.add_argument("--steps", type=int, help="GRPO steps per run (default 200, quick 40)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--dynamic-sampling",
        action="store_true",
        help="replace zero-signal groups with fresh prompts (up to 3 rounds), in every arm",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a SpardConfig field in every arm (VALUE parsed as JSON)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="output folder (default: a new spard-bench-*); runs already in its runs.jsonl "
        "with the same budget are read back, not trained again (resume)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="discard --out's runs.jsonl instead of resuming"
    )
    parser.add_argument(
        "--from-runs",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="train nothing: rebuild the report in --out from earlier suites' runs.jsonl or "
        "results.json (several: their runs together, e.g. the suite's and the field arms')",
    )
    return parser


def _pick(raw: str | None, known: Sequence[str], default: Sequence[str], what: str) -> list[str]:
    names = list(default) if raw is None else [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise SystemExit(
            f"benchmarks.efficacy: unknown {what} {unknown}; known: {', '.join(known)}"
        )
    return sorted(dict.fromkeys(names), key=list(known).index)


def _bench(args: argparse.Namespace) -> BenchConfig:
    bench = BenchConfig(**(QUICK if args.quick else {}))
    if args.steps:
        bench = replace(bench, steps=args.steps)
    engine: dict[str, Any] = {}
    for item in args.set:
        key, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"benchmarks.efficacy: --set expects KEY=VALUE; got {item!r}")
        try:
            engine[key] = json.loads(raw)
        except json.JSONDecodeError:
            engine[key] = raw
    return replace(bench, engine=engine, dynamic_sampling=args.dynamic_sampling)


def _earlier_runs(paths: Sequence[Path]) -> tuple[list[dict[str, Any]], float]:
    """The runs of earlier suites (each a runs.jsonl or results.json), in job order, and
    their wall time where their results.json recorded one (the sum)."""
    runs: list[dict[str, Any]] = []
    seconds = 0.0
    for path in paths:
        found, took = _runs_of(path)
        runs += found
        seconds += took
    # runs.jsonl is in finishing order: put it back in job order (family, seed, arm).
    runs.sort(key=lambda run: (FAMILIES.index(run["family"]), run["seed"], ARM_ORDER[run["arm"]]))
    return runs, seconds


def _runs_of(path: Path) -> tuple[list[dict[str, Any]], float]:
    if not path.is_file():
        raise SystemExit(f"benchmarks.efficacy: --from-runs: no such file {path}")
    earlier = path if path.suffix == ".json" else path.with_name("results.json")
    if path.suffix == ".json":
        runs = list(json.loads(path.read_text())["runs"])
    else:
        runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not runs:
        raise SystemExit(f"benchmarks.efficacy: --from-runs: {path} holds no runs")
    seconds = json.loads(earlier.read_text())["seconds"] if earlier.is_file() else float("nan")
    return runs, float(seconds)


def _arm_config(name: str) -> dict[str, Any]:
    arm = ARMS[name]
    return {"strategy": arm.strategy, **arm.overrides}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks.efficacy``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:  # fail before hours of training, not after
        import matplotlib  # noqa: F401
    except ImportError:
        raise SystemExit(
            "benchmarks.efficacy: the plots need matplotlib: pip install -e '.[bench]'"
        ) from None
    families = _pick(args.families, FAMILIES, QUICK_FAMILIES if args.quick else FAMILIES, "family")
    suite_names = [arm.name for arm in SUITE_ARMS]
    arm_names = _pick(args.arms, list(ARM_ORDER), QUICK_ARMS if args.quick else suite_names, "arm")
    bench = _bench(args)
    seeds = list(range(args.seeds or (2 if args.quick else EVALUATION_SEEDS)))
    out = args.out or Path(f"spard-bench-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SystemExit(
            f"benchmarks.efficacy: cannot create --out {out}: {exc.strerror}"
        ) from None
    if args.from_runs is not None:
        runs, seconds = _earlier_runs(args.from_runs)
        bench = BenchConfig(**{**runs[0]["bench"], "objectives": None})
        families = list(dict.fromkeys(run["family"] for run in runs))
        seeds = sorted({run["seed"] for run in runs})
        arm_names = list(dict.fromkeys(run["arm"] for run in runs))
    else:
        if args.fresh:
            (out / "runs.jsonl").unlink(missing_ok=True)
        print(
            f"benchmarks.efficacy: {len(arm_names)} arms x {len(families)} families x "
            f"{len(seeds)} seeds, writing to {out.resolve()}"
        )
        started = time.perf_counter()
        arms = [ARMS[name] for name in arm_names]
        runs = run_jobs(arms, families, seeds, bench, workers=args.workers, log=out / "runs.jsonl")
        seconds = time.perf_counter() - started
    table = build_table(runs)
    summary = summarise(table, DEFAULT_ARM)
    header = (
        f"{len(families)} families x {len(seeds)} seeds, {bench.steps} steps of "
        f"{ROLLOUTS_PER_STEP} rollouts (256/G prompts x G)"
        f"{', dynamic sampling' if bench.dynamic_sampling else ''}; final held-out scores "
        f"(true, noise-free); suite means weight every family equally. {seconds / 60:.1f} min "
        f"with {args.workers} workers."
    )
    payload = {
        "bench": asdict(bench),
        "arms": {name: _arm_config(name) for name in arm_names},
        "seeds": seeds,
        "seconds": seconds,
        "summary": summary,
        "runs": runs,
    }
    (out / "results.json").write_text(json.dumps(payload) + "\n")
    text = write_markdown(summary, header, out / "results.md")
    paths = write_plots(table, runs, DEFAULT_ARM, out)
    print(text)
    print(f"wrote {out}/results.json, results.md, " + ", ".join(p.name for p in paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
