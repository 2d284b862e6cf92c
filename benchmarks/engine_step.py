"""Benchmark: wall time of one ``spard.step`` call (not a test; run with ``make bench``).

Target (issue 2): one step on (512, 16, 8) takes <= 2 ms median on the project machine.
Writes benchmarks/results/engine_step.json and prints a table.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

import spard
from benchmarks.harness import add_out_argument, write_result

CASES = [
    # (shape, missing share, return_advantages, strategy)
    ((64, 8, 4), 0.0, False, "spard"),
    ((64, 8, 4), 0.0, True, "spard"),
    ((512, 16, 8), 0.0, False, "spard"),
    ((512, 16, 8), 0.0, True, "spard"),
    ((512, 16, 8), 0.1, True, "spard"),
    ((512, 16, 8), 0.0, True, "gdpo"),
    ((512, 16, 8), 0.0, True, "saw"),
]
TARGET_MS = 2.0


def time_case(shape, missing, advantages, strategy, repeats, rng):
    batches = []
    for _ in range(8):
        scores = (rng.random(shape) < rng.uniform(0.2, 0.8, shape[-1])).astype(float)
        scores[rng.random(shape) < missing] = np.nan
        batches.append(scores)
    names = [f"objective_{k}" for k in range(shape[-1])]
    state = spard.init(names, spard.SpardConfig(strategy=strategy))
    for t in range(20):  # warm up past PAWA's warmup so the update path is timed
        _, state = spard.step(state, batches[t % 8], return_advantages=advantages)
    samples = np.empty(repeats)
    for t in range(repeats):
        start = time.perf_counter_ns()
        _, state = spard.step(state, batches[t % 8], return_advantages=advantages)
        samples[t] = (time.perf_counter_ns() - start) / 1e6
    return {
        "shape": list(shape),
        "missing": missing,
        "return_advantages": advantages,
        "strategy": strategy,
        "repeats": repeats,
        "median_ms": float(np.median(samples)),
        "p90_ms": float(np.percentile(samples, 90)),
        "p99_ms": float(np.percentile(samples, 99)),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2000)
    add_out_argument(parser, "engine_step.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = [time_case(*case, args.repeats, rng) for case in CASES]

    print(
        f"{'shape':>14} {'missing':>7} {'adv':>5} {'strategy':>8} "
        f"{'median ms':>10} {'p90 ms':>8} {'p99 ms':>8}"
    )
    for row in rows:
        print(
            f"{tuple(row['shape'])!s:>14} {row['missing']:>7.2f} "
            f"{row['return_advantages']!s:>5} {row['strategy']:>8} "
            f"{row['median_ms']:>10.3f} {row['p90_ms']:>8.3f} {row['p99_ms']:>8.3f}"
        )
    target_rows = [
        r
        for r in rows
        if r["shape"] == [512, 16, 8] and r["missing"] == 0.0 and r["strategy"] == "spard"
    ]
    worst = max(r["median_ms"] for r in target_rows)
    verdict = "met" if worst <= TARGET_MS else "MISSED"
    print(f"target: (512, 16, 8) spard median <= {TARGET_MS} ms: {verdict} ({worst:.3f} ms)")
    result = {
        "benchmark": "engine_step",
        "spard_version": spard.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "target_ms": TARGET_MS,
        "target_met": worst <= TARGET_MS,
        "cases": rows,
    }
    write_result(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
