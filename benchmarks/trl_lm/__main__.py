"""Run the TRL benchmark: pretrain (or load) the policy, train every arm x seed with TRL's
GRPOTrainer, SPARD's through a real ``spard serve`` on Redis, and write the report.

``python -m benchmarks.trl_lm --out DIR`` (the full run: 3 arms x 3 seeds x 200 steps, two
runs at a time); ``--smoke`` is the 5-step SPARD arm of the test suite. Writes ``runs/``
(each run's log, tensorboard events and ``run.json``), ``results.json``, ``results.md`` and
the plots into ``--out`` (default: a new ``trl-lm-<time>/`` folder, never the committed
results).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from tqdm import tqdm

from benchmarks.trl_lm import pretrain, report
from benchmarks.trl_lm.train import ARMS
from tests.servers import RedisServer, ServiceProcess

CACHE = Path(os.environ.get("SPARD_BENCH_CACHE", Path.home() / ".cache" / "spard" / "trl_lm"))


@contextmanager
def spard_service() -> Iterator[str]:
    """A real ``spard serve`` on a real Redis, for the length of the benchmark."""
    with tempfile.TemporaryDirectory() as folder:
        redis = RedisServer(Path(folder), fsync="everysec")
        redis.start()
        env = {"SPARD_REDIS_URL": redis.url, "SPARD_AUTH_DISABLED": "true"}
        service = ServiceProcess(env=env).start()
        try:
            yield service.url
        finally:
            service.stop()
            redis.stop()


def run_all(
    jobs: list[tuple[str, int]], policy: Path, out: Path, steps: int, url: str, parallel: int
) -> None:
    """Every (arm, seed) as its own process, ``parallel`` at a time, one CPU thread each."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    waiting: list[tuple[str, int]] = list(jobs)
    running: dict[tuple[str, int], tuple[subprocess.Popen[bytes], Path]] = {}
    overall = tqdm(total=len(jobs) * steps, desc="all runs", unit="step")
    try:
        _run_jobs(waiting, running, overall, policy, out, steps, url, parallel, env)
    finally:
        for process, _ in running.values():  # a failed run stops the others
            process.terminate()
        overall.close()


def _run_jobs(
    waiting: list[tuple[str, int]],
    running: dict[tuple[str, int], tuple[subprocess.Popen[bytes], Path]],
    overall: tqdm,
    policy: Path,
    out: Path,
    steps: int,
    url: str,
    parallel: int,
    env: dict[str, str],
) -> None:
    done_steps: dict[tuple[str, int], int] = {}
    while waiting or running:
        while waiting and len(running) < parallel:
            arm, seed = waiting.pop(0)
            folder = out / "runs" / f"{arm}-seed{seed}"
            folder.mkdir(parents=True, exist_ok=True)
            command = [sys.executable, "-m", "benchmarks.trl_lm.train", "--arm", arm]
            command += ["--seed", str(seed), "--policy", str(policy), "--out", str(folder)]
            command += ["--steps", str(steps), "--spard-url", url]
            log = (folder / "train.log").open("w")
            running[(arm, seed)] = (
                subprocess.Popen(command, env=env, stdout=log, stderr=log),
                folder,
            )
        time.sleep(1.0)
        for key, (process, folder) in list(running.items()):
            progress = folder / "progress"
            step = int(progress.read_text() or 0) if progress.exists() else 0
            overall.update(max(step - done_steps.get(key, 0), 0))
            done_steps[key] = max(step, done_steps.get(key, 0))
            if process.poll() is None:
                continue
            del running[key]
            if process.returncode != 0:
                raise RuntimeError(
                    f"{key} failed (rc {process.returncode}): see {folder / 'train.log'}"
                )
            overall.set_postfix_str(f"done {key[0]} seed {key[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(time.strftime("trl-lm-%Y%m%d-%H%M%S")))
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=max(1, min(os.cpu_count() or 1, 4)))
    parser.add_argument("--cache", type=Path, default=CACHE, help="pretrained policies, by hash")
    parser.add_argument("--smoke", action="store_true", help="5 steps of the SPARD arm, 1 seed")
    args = parser.parse_args()
    config = pretrain.SMOKE if args.smoke else pretrain.PretrainConfig()
    arms = ["spard"] if args.smoke else args.arms.split(",")
    seeds, steps = (1, 5) if args.smoke else (args.seeds, args.steps)
    torch.set_num_threads(os.cpu_count() or 1)
    policy = pretrain.pretrain(config, args.cache)
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(arm, seed) for seed in range(seeds) for arm in arms]
    with spard_service() as url:
        run_all(jobs, policy, args.out, steps, url, args.parallel)
    runs = [
        json.loads((args.out / "runs" / f"{a}-seed{s}" / "run.json").read_text()) for a, s in jobs
    ]
    summary = report.summarise(runs)
    summary["policy"] = json.loads((policy / "pretrain.json").read_text())
    summary["settings"] = {"steps": steps, "seeds": seeds, "arms": arms, "parallel": args.parallel}
    (args.out / "results.json").write_text(
        json.dumps({"summary": summary, "runs": runs}, indent=1) + "\n"
    )
    page = report.markdown(summary, steps)
    (args.out / "results.md").write_text(page)
    report.plot(runs, args.out)
    print(page)


if __name__ == "__main__":
    main()
