"""``spard bench``: every strategy on the same seeds and budget; JSON, markdown and plots."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from spard.efficacy.report import summarise, write_markdown, write_plots
from spard.efficacy.train import BenchConfig, Variant, train_run

VARIANTS = [
    Variant("static", "static"),
    Variant("saw", "saw"),
    Variant("gdpo", "gdpo"),
    Variant("radr", "radr"),
    Variant("pawa", "pawa"),
    Variant("spard", "spard"),  # the frozen defaults (PAWA mode lag)
    Variant("spard-gain", "spard", {"pawa_mode": "gain"}),
    Variant("spard-absolute", "spard", {"pawa_mode": "absolute"}),
]
QUICK = {"steps": 40, "eval_every": 10, "eval_prompts": 96}
RESULTS = Path(__file__).parent / "results"


def _job(job: tuple[Variant, int, BenchConfig]) -> dict[str, Any]:
    return train_run(*job)


def run_benchmark(
    variants: Sequence[Variant], seeds: Sequence[int], bench: BenchConfig, workers: int
) -> list[dict[str, Any]]:
    """Every (variant, seed) run, in parallel processes, with a progress bar."""
    jobs = [(variant, seed, bench) for variant in variants for seed in seeds]
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        return list(tqdm(pool.imap(_job, jobs), total=len(jobs), desc="GRPO runs", unit="run"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spard bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few minutes: 40 steps, 2 seeds")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--seeds", type=int, help="number of seeds (default 5, quick 2)")
    parser.add_argument("--variants", help="comma-separated names; default: all")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a SpardConfig field for every variant (JSON value)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    bench = BenchConfig(**(QUICK if args.quick else {}))
    if args.steps:
        bench = replace(bench, steps=args.steps)
    engine = dict(bench.engine)
    for item in args.set:
        key, _, raw = item.partition("=")
        engine[key] = json.loads(raw)
    bench = replace(bench, engine=engine)
    names = args.variants.split(",") if args.variants else [v.name for v in VARIANTS]
    if args.quick and not args.variants:
        names = ["static", "spard", "gdpo"]
    variants = [v for v in VARIANTS if v.name in names]
    seeds = list(range(args.seeds or (2 if args.quick else 5)))

    started = time.perf_counter()
    runs = run_benchmark(variants, seeds, bench, args.workers)
    summary = summarise(runs, baseline="static")
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {
        "bench": asdict(bench),
        "seeds": seeds,
        "seconds": time.perf_counter() - started,
        "summary": summary,
        "runs": runs,
    }
    (args.out / "results.json").write_text(json.dumps(payload, indent=1) + "\n")
    table = write_markdown(summary, bench, seeds, args.out / "results.md")
    write_plots(runs, bench, args.out)
    print(table)
    print(f"wrote {args.out}/results.json, results.md and plots ({payload['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
