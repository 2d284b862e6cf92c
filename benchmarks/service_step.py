"""Benchmark: step round trip through real uvicorn and a real Redis on loopback.

Each case sends sequential steps of one run (as a trainer does) and times every request,
next to what a step cannot avoid, measured side by side (in alternating blocks of 50, so
that a shared machine's load weighs on all alike): a bare FastAPI endpoint that echoes the
same body (the floor: HTTP + uvicorn + client), one Redis round trip (a PING from this
process's asyncio client) and the engine step itself (``spard.step`` on the same batches).
Targets (issues 3 and 25): (64, 8, 4) JSON p50 <= 3 ms, p99 <= 10 ms, and p50 <= 2x (floor +
Redis round trip + engine step); (512, 16, 8) binary p50 <= 10 ms. Writes
benchmark-results/service_step.json (``--out`` to replace benchmarks/results/).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import redis.asyncio
import uvloop

import spard
from benchmarks.harness import add_out_argument, service_env, start_redis, write_result
from spard.service.protocol.wire import encode_step
from tests.servers import ServiceProcess, free_port

WARMUP = 50  # steps of each case not timed
BLOCK = 50  # samples of one measurement in a row (see side_by_side)
CASES = [
    ((64, 8, 4), "json"),
    ((512, 16, 8), "json"),
    ((512, 16, 8), "binary"),
]


def batches(shape: tuple[int, int, int], count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [
        (rng.random(shape) < rng.uniform(0.2, 0.8, shape[-1])).astype(float) for _ in range(count)
    ]


def bodies(shape: tuple[int, int, int], kind: str, count: int) -> list[tuple[bytes, str]]:
    made = []
    for t, scores in enumerate(batches(shape, count)):
        if kind == "binary":
            made.append(
                (encode_step(scores, t, return_advantages=False), "application/octet-stream")
            )
        else:
            payload = json.dumps({"step": t, "scores": scores.tolist()}).encode()
            made.append((payload, "application/json"))
    return made


def timed_post(client: httpx.Client, url: str, body: bytes, content_type: str) -> float:
    """Milliseconds of one POST, which must succeed."""
    start = time.perf_counter()
    response = client.post(url, content=body, headers={"content-type": content_type})
    elapsed = (time.perf_counter() - start) * 1e3
    if response.status_code != 200:
        raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
    return elapsed


class RedisPing:
    """One Redis round trip as the service makes it: a PING by redis-py's asyncio client on
    uvloop (uvicorn's loop), over one kept connection; only the await is timed."""

    def __init__(self, url: str) -> None:
        self.loop = uvloop.new_event_loop()
        self.connection = redis.asyncio.Redis.from_url(url)

    async def _ping(self) -> float:
        start = time.perf_counter()
        await self.connection.ping()
        return (time.perf_counter() - start) * 1e3

    def __call__(self) -> float:
        return self.loop.run_until_complete(self._ping())

    def close(self) -> None:
        self.loop.run_until_complete(self.connection.aclose())
        self.loop.close()


class EngineStep:
    """``spard.step`` on the batches the service gets, in order, on a run of its own."""

    def __init__(self, shape: tuple[int, int, int], count: int) -> None:
        self.batches = batches(shape, count)
        self.state = spard.init([f"o{k}" for k in range(shape[-1])])
        self.t = 0

    def __call__(self) -> float:
        start = time.perf_counter()
        _, self.state = spard.step(self.state, self.batches[self.t], self.t)
        self.t += 1
        return (time.perf_counter() - start) * 1e3


def side_by_side(
    client: httpx.Client,
    urls: tuple[str, str],
    sent: list[tuple[bytes, str]],
    ping: RedisPing,
    engine: EngineStep,
) -> dict[str, np.ndarray]:
    """Milliseconds of each echo, Redis PING, engine step and service step, in blocks of
    ``BLOCK`` of each in turn: every measurement runs hot (as in a loop of its own), and all
    four see the same load of a shared machine."""
    floor_url, step_url = urls
    measures = {
        "floor": lambda body, content_type: timed_post(client, floor_url, body, content_type),
        "redis": lambda body, content_type: ping(),
        "engine": lambda body, content_type: engine(),
        "step": lambda body, content_type: timed_post(client, step_url, body, content_type),
    }
    samples = {name: np.empty(len(sent)) for name in measures}
    for first in range(0, len(sent), BLOCK):
        block = range(first, min(first + BLOCK, len(sent)))
        for name, measure in measures.items():
            for index in block:
                samples[name][index] = measure(*sent[index])
    return samples


def start_floor() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "--app-dir", str(Path(__file__).parent)),
            *("echo_app:app", "--port", str(port), "--log-level", "warning"),
        ],
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.post(f"{url}/echo", content=b"x")
            return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("echo server did not start")


def server_seconds(client: httpx.Client, url: str) -> tuple[float, float]:
    """(sum, count) of the service's own latency histogram for 200 answers of the step route."""
    text = client.get(f"{url}/metrics").text
    found = {}
    for kind in ("sum", "count"):
        pattern = (
            rf'spard_http_request_duration_seconds_{kind}\{{method="POST",'
            rf'route="/v1/runs/{{run_id}}/steps",status="200"\}} (\S+)'
        )
        match = re.search(pattern, text)
        found[kind] = float(match.group(1)) if match else 0.0
    return found["sum"], found["count"]


def stats(samples: np.ndarray) -> dict[str, float]:
    return {
        "p50_ms": float(np.percentile(samples, 50)),
        "p99_ms": float(np.percentile(samples, 99)),
        "mean_ms": float(samples.mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    add_out_argument(parser, "service_step.json")
    args = parser.parse_args()
    redis_server = start_redis("bench")
    env = service_env("bench")
    service = ServiceProcess("--redis-url", redis_server.url, env=env).start()
    floor, floor_url = start_floor()
    ping = RedisPing(redis_server.url)
    rows = []
    try:
        with httpx.Client(timeout=30) as client:
            for number, (shape, kind) in enumerate(CASES):
                run_id = f"bench-{number}"
                create = {"run_id": run_id, "objectives": [f"o{k}" for k in range(shape[-1])]}
                client.post(f"{service.url}/v1/runs", json=create).raise_for_status()
                sent = bodies(shape, kind, args.steps + WARMUP)
                urls = (f"{floor_url}/echo", f"{service.url}/v1/runs/{run_id}/steps")
                engine = EngineStep(shape, args.steps + WARMUP)
                side_by_side(client, urls, sent[:WARMUP], ping, engine)
                before = server_seconds(client, service.url)
                measured = side_by_side(client, urls, sent[WARMUP:], ping, engine)
                after = server_seconds(client, service.url)
                step_samples, floor_samples = measured["step"], measured["floor"]
                redis_trip, engine_step = stats(measured["redis"]), stats(measured["engine"])
                step, base = stats(step_samples), stats(floor_samples)
                step["server_mean_ms"] = 1e3 * (after[0] - before[0]) / (after[1] - before[1])
                unavoidable = base["p50_ms"] + redis_trip["p50_ms"] + engine_step["p50_ms"]
                rows.append(
                    {
                        "shape": list(shape),
                        "body": kind,
                        "body_bytes": len(sent[-1][0]),
                        "steps": args.steps,
                        "step": step,
                        "floor": base,
                        "redis_round_trip": redis_trip,
                        "engine_step": engine_step,
                        "p50_vs_floor": step["p50_ms"] / base["p50_ms"],
                        "floor_redis_engine_p50_ms": unavoidable,
                        "p50_vs_floor_redis_engine": step["p50_ms"] / unavoidable,
                    }
                )
    finally:
        ping.close()
        service.stop()
        floor.terminate()
        floor.wait()
        redis_server.stop()

    print(
        f"{'shape':>14} {'body':>7} {'bytes':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'server ms':>10} {'floor p50':>10} {'redis p50':>10} {'engine p50':>10} "
        f"{'p50/floor':>10} {'p50/(f+r+e)':>12}"
    )
    for row in rows:
        print(
            f"{tuple(row['shape'])!s:>14} {row['body']:>7} {row['body_bytes']:>9} "
            f"{row['step']['p50_ms']:>8.3f} {row['step']['p99_ms']:>8.3f} "
            f"{row['step']['server_mean_ms']:>10.3f} {row['floor']['p50_ms']:>10.3f} "
            f"{row['redis_round_trip']['p50_ms']:>10.3f} {row['engine_step']['p50_ms']:>10.3f} "
            f"{row['p50_vs_floor']:>10.2f} {row['p50_vs_floor_redis_engine']:>12.2f}"
        )
    small, large_binary = rows[0], rows[2]
    targets = {
        "(64,8,4) json p50 <= 3 ms": small["step"]["p50_ms"] <= 3.0,
        "(64,8,4) json p99 <= 10 ms": small["step"]["p99_ms"] <= 10.0,
        "(64,8,4) json p50 <= 2x floor": small["p50_vs_floor"] <= 2.0,
        "(64,8,4) json p50 <= 2x (floor + redis + engine)": small["p50_vs_floor_redis_engine"]
        <= 2.0,
        "(512,16,8) binary p50 <= 10 ms": large_binary["step"]["p50_ms"] <= 10.0,
    }
    for name, met in targets.items():
        print(f"target {name}: {'met' if met else 'MISSED'}")
    result = {
        "benchmark": "service_step",
        "spard_version": spard.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "setup": "1 uvicorn worker, Redis on loopback (AOF, fsync everysec), httpx keep-alive, "
        "sequential steps of one run; echo, Redis PING, engine step and service step in "
        f"alternating blocks of {BLOCK}",
        "targets": targets,
        "cases": rows,
    }
    write_result(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
