"""Streaming ingestion throughput: 64 writers observing as fast as they can, through the SDK
(batched, one client per process as the OpenRLHF adapter does), into two service replicas
sharing a real Redis (AOF everysec) on loopback. Writers run ahead of each other, so steps are
committed after the clock stops.

    python -m benchmarks.observe_throughput [--seconds 10] [--writers 64] [--processes 4]

Target (issue 7): >= 20k observations/s with batching. Afterwards every step is checked: each
committed step holds exactly the observations sent for it. Writes
benchmarks/results/observe_throughput.json.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import threading
import time

from benchmarks.harness import add_out_argument, service_env, start_redis, write_result
from spard.client import SpardClient
from tests.servers import ServiceProcess

OBJECTIVES = ["correctness", "format", "length"]
GROUPS_PER_WRITER, ROLLOUTS = 8, 8  # per step: writers * 8 groups of 8 rollouts


def writer_process(
    url: str, run_id: str, first_writer: int, threads: int, deadline: float, queue: object
) -> None:
    """``threads`` writers sharing one client; each writes its groups step after step."""
    client = SpardClient(url, observe_batch_size=1024, flush_interval_s=0.02)
    counts = [0] * threads

    def write(slot: int) -> None:
        writer, step = first_writer + slot, 0
        while time.time() < deadline:
            for group in range(GROUPS_PER_WRITER):
                group_id = writer * GROUPS_PER_WRITER + group
                for rollout in range(ROLLOUTS):
                    value = ((group_id + rollout + step) % 5) / 4
                    scores = {"correctness": value, "format": 1 - value, "length": value / 2}
                    client.observe(run_id, group_id, scores, step=step, rollout_index=rollout)
                    counts[slot] += 1
            step += 1
        steps_written[slot] = step

    steps_written = [0] * threads
    pool = [threading.Thread(target=write, args=(slot,)) for slot in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    summary = client.flush()
    client.close()
    queue.put((sum(counts), summary.accepted, len(summary.late), steps_written))  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--processes", type=int, default=4)
    add_out_argument(parser, "observe_throughput.json")
    args = parser.parse_args()
    redis_server = start_redis("observe")
    # Writers leave every step open until the clock stops (commits come after): with few
    # writers each runs hundreds of steps ahead, past the default bound on open steps.
    env = {**service_env("observe"), "SPARD_MAX_OPEN_STEPS": "4096"}
    replicas = [ServiceProcess("--redis-url", redis_server.url, env=env).start() for _ in range(2)]
    try:
        result = measure(args, [replica.url for replica in replicas])
    finally:
        for replica in replicas:
            replica.stop()
        redis_server.stop()
    print(f"{'observations/s':>22}: {result['observations_per_s']:.0f}")
    keys = ("observations_sent", "accepted", "late", "steps_committed", "mismatched_steps")
    for key in keys:
        print(f"{key:>22}: {result[key]}")
    met = result["observations_per_s"] >= 20_000 and result["mismatched_steps"] == 0
    print(f"target >= 20k observations/s: {'met' if met else 'MISSED'}")
    write_result(args.out, result)


def measure(args: argparse.Namespace, urls: list[str]) -> dict[str, object]:
    client = SpardClient(urls[0])
    streaming = {"group_size": ROLLOUTS}
    run = client.create_run(OBJECTIVES, streaming=streaming)
    per_process = args.writers // args.processes
    queue: multiprocessing.Queue[tuple[int, int, int, list[int]]] = multiprocessing.Queue()
    start = time.time() + 1.0  # let the processes import before the clock starts
    deadline = start + args.seconds
    processes = [
        multiprocessing.Process(
            target=writer_process,
            args=(urls[i % 2], run.run_id, i * per_process, per_process, deadline, queue),
        )
        for i in range(args.processes)
    ]
    for process in processes:
        process.start()
    answers = [queue.get(timeout=args.seconds + 120) for _ in processes]
    elapsed = time.time() - start
    for process in processes:
        process.join()
    sent = sum(a[0] for a in answers)
    steps = [step for a in answers for step in a[3]]  # complete steps per writer
    # Writers run at different speeds: step s holds the groups of every writer that got past
    # it. Commit every step and compare with what was sent.
    per_writer = GROUPS_PER_WRITER * ROLLOUTS
    mismatched = 0
    for step in range(max(steps)):
        outcome = client.commit(run.run_id, step)
        mismatched += outcome.observations != per_writer * sum(s > step for s in steps)
    info = client.get_run(run.run_id)
    return {
        "observations_per_s": sent / elapsed,
        "seconds": elapsed,
        "observations_sent": sent,
        "accepted": sum(a[1] for a in answers),
        "late": sum(a[2] for a in answers),
        "steps_committed": info.steps_applied,
        "steps_per_writer_min_max": [min(steps), max(steps)],
        "mismatched_steps": mismatched,
        "writers": args.writers,
        "writer_processes": args.processes,
        "replicas": 2,
        "batch": "SDK buffer, up to 1024 observations per request, flush every 20 ms",
        "observations_per_writer_step": per_writer,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "target_observations_per_s": 20_000,
    }


if __name__ == "__main__":
    main()
