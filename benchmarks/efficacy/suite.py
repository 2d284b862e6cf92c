"""Run (arm, family, seed) jobs in worker processes, streaming each finished run to disk.

Resumable: runs already in the log (same arm as it resolves today, family, seed and budget)
are read back instead of trained again, so an interrupted suite continues where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.efficacy.train import Arm, BenchConfig, train_run

Job = tuple[Arm, str, int, BenchConfig]
Key = tuple[str, str, int]


def _job(job: Job) -> dict[str, Any]:
    return train_run(*job)


def logged_runs(log: Path, arms: Sequence[Arm], bench: BenchConfig) -> dict[Key, dict[str, Any]]:
    """The runs of ``log`` made with ``bench``'s budget by one of ``arms`` as it is today
    (same engine config and resolved rules: a run of an earlier default is not reused), by
    (arm, family, seed); a partly written last line (the suite was killed while writing) is
    ignored."""
    if not log.is_file():
        return {}
    budget = json.loads(json.dumps(asdict(bench)))
    identities = {arm.name: arm.identity(bench) for arm in arms}
    done: dict[Key, dict[str, Any]] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            run = json.loads(line)
        except json.JSONDecodeError:
            continue
        same_arm = run.get("arm_identity") == identities.get(run.get("arm"))
        if run.get("bench") == budget and same_arm:
            done[(run["arm"], run["family"], run["seed"])] = run
    return done


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

    Each finished run is appended to ``log`` (JSON Lines) as it arrives; runs already there
    are not trained again. Returns the runs in job order.
    """
    jobs: list[Job] = [
        (arm, family, seed, bench) for family in families for seed in seeds for arm in arms
    ]
    done = logged_runs(log, arms, bench) if log is not None else {}
    runs = {key: done[key] for key in ((a.name, f, s) for a, f, s, _ in jobs) if key in done}
    todo = [job for job in jobs if (job[0].name, job[1], job[2]) not in runs]
    if runs:
        print(f"{desc}: {len(runs)} of {len(jobs)} runs read back from {log}")
    if log is not None and log.is_file() and not log.read_bytes().endswith(b"\n"):
        with log.open("a", encoding="utf-8") as handle:
            handle.write("\n")  # end a line cut short by a kill, so new runs start their own
    with contextlib.ExitStack() as stack:
        if workers > 1 and len(todo) > 1:
            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(workers))
            results: Iterator[dict[str, Any]] = pool.imap_unordered(_job, todo)
        else:
            # One at a time: in this process. A spawned worker is a fresh interpreter that
            # imports torch again, seconds per call, more than a small run itself takes.
            results = map(_job, todo)
        for run in tqdm(results, total=len(todo), desc=desc, unit="run"):
            runs[(run["arm"], run["family"], run["seed"])] = run
            if log is not None:
                with log.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(run) + "\n")
    return [runs[(arm.name, family, seed)] for arm, family, seed, _ in jobs]
