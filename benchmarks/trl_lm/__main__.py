"""Run the TRL benchmark: pretrain (or load) the policy, train every arm x seed with TRL's
GRPOTrainer or SpardGRPOTrainer (through a real ``spard serve`` on Redis), and write the report.

``python -m benchmarks.trl_lm --evaluation --out DIR`` runs the pre-registered evaluation
(``PREREGISTRATION.md``); ``--dev --seeds 2 --arms spard,gdpo`` runs development seeds (1000+,
never evaluated); ``--field`` runs the field's methods, added after the freeze (their results
are named by their own hash, the report is ``field.md``); ``--smoke`` is the test suite's
5-step SPARD arm.

Each run writes ``DIR/runs/<arm>-seed<seed>-<protocol hash>.json`` atomically when it ends; a
rerun with the same protocol skips the runs already there, so an interrupted benchmark goes on
where it stopped. Runs go ``--parallel`` at a time (default 2), one CPU thread each. Once the
queue is done (or with ``--report-only``), the report is written into ``DIR``: never over the
committed results unless ``DIR`` is theirs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path

from tqdm import tqdm

from benchmarks.harness import code_version
from benchmarks.trl_lm import field_report, pretrain, protocol, report
from benchmarks.trl_lm.protocol import ALL_ARMS, Settings
from tests.servers import RedisServer, ServiceProcess

CACHE = Path(os.environ.get("SPARD_BENCH_CACHE", Path.home() / ".cache" / "spard" / "trl_lm"))
ROOT = Path(__file__).resolve().parents[2]


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


def code_commit() -> str:
    """The commit the runs are made with (``-dirty`` when the tree has changes)."""
    version = code_version(ROOT)
    if version is None:
        return "unknown"
    commit, tree_clean = version
    return commit + ("" if tree_clean else "-dirty")


class Queue:
    """The runs still to do, ``parallel`` at a time, with an overall and a per-run bar."""

    def __init__(
        self,
        jobs: list[tuple[str, int]],
        out: Path,
        policy: Path,
        settings: Settings,
        digest: str,
        url: str,
        keep_work: bool,
    ) -> None:
        self.jobs, self.out, self.policy, self.settings = jobs, out, policy, settings
        self.digest, self.url, self.keep_work = digest, url, keep_work
        self.env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "TRL_LM_COMMIT": code_commit(),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        self.failed: list[tuple[str, int]] = []

    def result(self, arm: str, seed: int) -> Path:
        return self.out / "runs" / protocol.result_name(arm, seed, self.digest)

    def work(self, arm: str, seed: int) -> Path:
        return self.out / "work" / f"{arm}-seed{seed}"

    def start(self, arm: str, seed: int) -> subprocess.Popen[bytes]:
        folder = self.work(arm, seed)
        if folder.exists():  # an interrupted attempt: start it again from step 0
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        command = [sys.executable, "-m", "benchmarks.trl_lm.train", "--arm", arm]
        command += ["--seed", str(seed), "--policy", str(self.policy), "--work", str(folder)]
        command += ["--result", str(self.result(arm, seed)), "--spard-url", self.url]
        command += ["--settings", json.dumps(asdict(self.settings))]
        command += ["--protocol-hash", self.digest]
        log = (folder / "train.log").open("w")
        return subprocess.Popen(command, env=self.env, stdout=log, stderr=log, cwd=ROOT)

    def run(self, parallel: int) -> None:
        todo = [job for job in self.jobs if not self.result(*job).exists()]
        done = len(self.jobs) - len(todo)
        steps = self.settings.steps
        overall = tqdm(
            total=len(self.jobs),
            initial=done,
            desc="runs",
            unit="run",
            position=0,
            dynamic_ncols=True,
        )
        running: dict[tuple[str, int], tuple[subprocess.Popen[bytes], tqdm, int]] = {}
        slots = list(range(1, parallel + 1))
        try:
            while todo or running:
                while todo and len(running) < parallel:
                    arm, seed = todo.pop(0)
                    slot = slots.pop(0)
                    bar = tqdm(
                        total=steps,
                        desc=f"{arm} seed {seed}",
                        unit="step",
                        position=slot,
                        leave=False,
                        dynamic_ncols=True,
                    )
                    running[(arm, seed)] = (self.start(arm, seed), bar, slot)
                time.sleep(2.0)
                for key, (process, bar, slot) in list(running.items()):
                    progress = self.work(*key) / "progress"
                    try:
                        step = int(progress.read_text() or 0) if progress.exists() else 0
                    except ValueError:
                        step = bar.n
                    bar.update(max(step - bar.n, 0))
                    if process.poll() is None:
                        continue
                    del running[key]
                    slots.append(slot)
                    bar.close()
                    if process.returncode != 0 or not self.result(*key).exists():
                        self.failed.append(key)
                        tqdm.write(
                            f"FAILED {key[0]} seed {key[1]} (rc {process.returncode}): see "
                            f"{self.work(*key) / 'train.log'}"
                        )
                        continue
                    overall.update(1)
                    overall.set_postfix_str(f"done {key[0]} seed {key[1]}")
                    if not self.keep_work:
                        shutil.rmtree(self.work(*key), ignore_errors=True)
        finally:
            for process, bar, _ in running.values():  # interrupted: the others stop too
                process.terminate()
                bar.close()
            overall.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(time.strftime("trl-lm-%Y%m%d-%H%M%S")))
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--evaluation", action="store_true", help="the pre-registered queue")
    mode.add_argument(
        "--field", action="store_true", help="the field's methods, added after the freeze"
    )
    mode.add_argument("--dev", action="store_true", help="development seeds (1000+) only")
    mode.add_argument("--smoke", action="store_true", help="5 steps of the SPARD arm, 1 seed")
    parser.add_argument(
        "--arms", default=None, help="with --dev (default: the primary arms) or --smoke"
    )
    parser.add_argument("--seeds", type=int, default=2, help="with --dev: how many")
    parser.add_argument("--steps", type=int, default=None, help="with --dev: override")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=CACHE, help="pretrained policies, by hash")
    parser.add_argument("--keep-work", action="store_true", help="keep checkpoints and logs")
    parser.add_argument("--report-only", action="store_true", help="no training: report only")
    args = parser.parse_args()
    # A terminated benchmark stops its runs, the service and Redis (finished runs are kept).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.smoke:
        config, settings = pretrain.SMOKE, protocol.SMOKE
        jobs, keep_work = [(arm, 0) for arm in (args.arms or "spard").split(",")], True
    else:
        config, settings, keep_work = pretrain.PretrainConfig(), Settings(), args.keep_work
        if args.evaluation:
            jobs = protocol.evaluation_queue()
        elif args.field:
            jobs = protocol.field_queue()
        elif args.dev:
            if args.steps:
                settings = replace(settings, steps=args.steps)
            arms = (args.arms or ",".join(protocol.PRIMARY_ARMS)).split(",")
            seeds = protocol.DEV_SEEDS[: args.seeds]
            jobs = [(arm, seed) for seed in seeds for arm in arms]
        elif not args.report_only:
            parser.error("choose --evaluation, --dev or --smoke (or --report-only)")
        else:
            jobs = []
    unknown = {arm for arm, _ in jobs} - set(ALL_ARMS)
    if unknown:
        parser.error(f"unknown arms {sorted(unknown)}; known: {sorted(ALL_ARMS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        policy = pretrain.pretrain(config, args.cache)
        digest = protocol.protocol_hash(settings, policy.name)
        (args.out / f"protocol-{digest}.json").write_text(
            json.dumps(protocol.description(settings, policy.name), indent=1) + "\n"
        )
        if args.field:  # named apart, so the frozen protocol's files and hash stay as they are
            digest = protocol.field_hash(settings, policy.name)
            (args.out / f"protocol-{digest}.json").write_text(
                json.dumps(protocol.field_description(settings, policy.name), indent=1) + "\n"
            )
        with spard_service() as url:
            queue = Queue(jobs, args.out, policy, settings, digest, url, keep_work)
            queue.run(args.parallel)
        if queue.failed:
            print(f"{len(queue.failed)} runs failed: {queue.failed}; rerun to retry them")
    page = report.write(args.out / "runs", args.out)
    print(page)
    print(field_report.write(args.out / "runs", args.out))
    if not args.report_only and queue.failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
