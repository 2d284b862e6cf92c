"""Load test: 50 runs stepping as fast as they can against `spard serve --workers 2` and a real
Redis on loopback, with deliberate duplicates and concurrent retries; then every run's stored
history is checked: each step applied exactly once, in order.

    python -m benchmarks.load.load_test [--seconds 20] [--runs 50]

Target (issue 6): >= 800 steps/s, 0 lost, 0 doubled. Writes benchmarks/load/results/load.json.
The load comes from wrk (C, Lua-scripted: benchmarks/load/steps.lua), which shares the
machine's 2 cores with the service; a Python generator spent more CPU than the service did.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from benchmarks.harness import add_out_argument, service_env, start_redis, write_result
from tests.servers import ServiceProcess

SHAPE = (8, 4, 3)  # what steps.lua sends
DUPLICATE_SHARE = 0.10  # steps.lua resends this share of answered steps (client retries)
LUA = Path(__file__).with_name("steps.lua")


def run_wrk(url: str, runs: int, seconds: float) -> dict[str, float]:
    """Drive the runs with wrk (one thread and one connection per run); its summary."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    command = [
        wrk,
        f"-t{runs}",
        f"-c{runs}",
        f"-d{int(seconds)}s",
        "--latency",
        "-s",
        str(LUA),
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout

    def number(pattern: str) -> float:
        match = re.search(pattern, output)
        return float(match.group(1)) if match else 0.0

    def millis(label: str) -> float:
        match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", output)
        if not match:
            return float("nan")
        scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]
        return float(match.group(1)) * scale

    return {
        "requests": number(r"(\d+) requests in"),
        "requests_per_s": number(r"Requests/sec:\s+([\d.]+)"),
        "non_2xx": number(r"Non-2xx or 3xx responses: (\d+)"),
        "socket_errors": sum(
            float(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output)
        ),
        "p50_ms": millis("50%"),
        "p99_ms": millis("99%"),
        "raw": output,
    }


async def verify(client: httpx.AsyncClient, run_id: str, steps: int) -> tuple[int, int]:
    """(lost, doubled) steps of a run, from its stored history and its summary."""
    seen: list[int] = []
    after = None
    while True:
        params = {"limit": 1000} | ({"after": after} if after is not None else {})
        page = (await client.get(f"/v1/runs/{run_id}/history", params=params)).json()
        seen += [entry["step"] for entry in page["entries"]]
        after = page["next_after"]
        if after is None:
            break
    applied = (await client.get(f"/v1/runs/{run_id}")).json()["steps_applied"]
    lost = len(set(range(steps)) - set(seen))
    doubled = len(seen) - len(set(seen)) + max(0, applied - steps)
    assert seen == sorted(seen), f"{run_id}: history out of order"
    return lost, doubled


async def setup_and_verify(url: str, runs: int, seconds: float) -> dict[str, object]:
    limits = httpx.Limits(max_connections=runs)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        run_ids = [f"load-{index}" for index in range(runs)]
        for run_id in run_ids:
            body = {"run_id": run_id, "objectives": ["a", "b", "c"]}
            (await client.post("/v1/runs", json=body)).raise_for_status()
        started = time.perf_counter()
        traffic = await asyncio.to_thread(run_wrk, url, runs, seconds)
        elapsed = time.perf_counter() - started
        applied = [
            (await client.get(f"/v1/runs/{run_id}")).json()["steps_applied"] for run_id in run_ids
        ]
        pairs = zip(run_ids, applied, strict=True)
        checks = await asyncio.gather(*(verify(client, run_id, n) for run_id, n in pairs))
    raw = traffic.pop("raw")
    return {
        "runs": runs,
        "seconds": elapsed,
        "steps_applied": int(sum(applied)),
        "steps_per_s": sum(applied) / seconds,
        **traffic,
        "lost_steps": int(sum(lost for lost, _ in checks)),
        "doubled_steps": int(sum(doubled for _, doubled in checks)),
        "wrk_output": raw,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    add_out_argument(parser, "load.json")
    args = parser.parse_args()
    redis_server = start_redis("load")
    env = service_env("load")
    service = ServiceProcess(
        "--redis-url", redis_server.url, "--workers", str(args.workers), env=env
    ).start()
    try:
        result = asyncio.run(setup_and_verify(service.url, args.runs, args.seconds))
    finally:
        service.stop()
        redis_server.stop()
    result |= {
        "shape": list(SHAPE),
        "uvicorn_workers": args.workers,
        "duplicate_share": DUPLICATE_SHARE,
        "generator": "wrk (one thread and connection per run), steps.lua",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "target_steps_per_s": 800,
    }
    for key in ("steps_per_s", "requests_per_s", "p50_ms", "p99_ms"):
        print(f"{key:>16}: {result[key]:.1f}")
    for key in (
        "steps_applied",
        "requests",
        "non_2xx",
        "socket_errors",
        "lost_steps",
        "doubled_steps",
    ):
        print(f"{key:>16}: {result[key]}")
    met = (
        result["steps_per_s"] >= 800 and result["lost_steps"] == 0 and result["doubled_steps"] == 0
    )
    print(f"target >= 800 steps/s, 0 lost, 0 doubled: {'met' if met else 'MISSED'}")
    write_result(args.out, result)


if __name__ == "__main__":
    main()
