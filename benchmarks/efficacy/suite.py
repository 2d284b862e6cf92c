"""Run (arm, family, seed) jobs in worker processes, streaming each finished run to disk."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from spard.efficacy.train import Arm, BenchConfig, train_run

Job = tuple[Arm, str, int, BenchConfig]


def _job(job: Job) -> dict[str, Any]:
    return train_run(*job)


def run_jobs(
    arms: Sequence[Arm],
    families: Sequence[str],
    seeds: Sequence[int],
    bench: BenchConfig,
    *,
    workers: int,
    log: Path | None = None,
    desc: str = "GRPO runs",
) -> list[dict[str, Any]]:
    """Every (arm, family, seed) run, in ``workers`` processes with a progress bar.

    Each finished run is appended to ``log`` (JSON Lines) as it arrives, so an interrupted
    suite keeps what it ran. Returns the runs in job order.
    """
    jobs: list[Job] = [
        (arm, family, seed, bench) for family in families for seed in seeds for arm in arms
    ]
    order = {(arm.name, family, seed): i for i, (arm, family, seed, _) in enumerate(jobs)}
    runs: list[dict[str, Any]] = [{} for _ in jobs]
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        results = pool.imap_unordered(_job, jobs)
        for run in tqdm(results, total=len(jobs), desc=desc, unit="run"):
            runs[order[(run["arm"], run["family"], run["seed"])]] = run
            if log is not None:
                with log.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(run) + "\n")
    return runs
