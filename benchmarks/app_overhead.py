"""Benchmark: what the service's app adds to a step, in one process, without sockets.

A (64, 8, 4) JSON step on the in-memory store, two ways, alternated in rounds so that both see
the same load: ``serve_step`` called directly (decoding, ``RunService.step``, encoding), and
the whole app over ASGI (its middleware, then the step's front door). The difference is the
app's own cost per step: the part of a server's step time the framework decides.
Run ``python -m benchmarks.app_overhead [--out DIR]``: writes ``app_overhead.json`` there
(default ``benchmark-results/``) and prints the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import uvloop

import spard
from spard.service.http.app import create_app
from spard.service.protocol.streaming import StreamingConfig
from spard.service.runs.step_request import serve_step
from spard.service.runs.store import RunKey
from spard.service.settings import LOCAL_TENANT, Settings

SHAPE = (64, 8, 4)
PATH = "/v1/runs/bench/steps"


def step_bodies(count: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    return [
        orjson.dumps(
            {"scores": (rng.random(SHAPE) < 0.5).astype(float)}, option=orjson.OPT_SERIALIZE_NUMPY
        )
        for _ in range(count)
    ]


def direct_step(
    runs: Any, key: RunKey, body: bytes, max_scores: int
) -> Callable[[], Awaitable[object]]:
    """One step of ``body`` through ``serve_step``, no framework."""

    def post() -> Awaitable[object]:
        return serve_step(
            runs, key, "application/json", body, request_id=None, max_scores=max_scores
        )

    return post


def asgi_step(app: Any, body: bytes) -> Callable[[], Awaitable[object]]:
    """One POST of ``body`` to the app over ASGI, as uvicorn hands it over."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }

    async def post() -> None:
        sent: list[dict[str, Any]] = []
        given = False

        async def receive() -> dict[str, Any]:
            nonlocal given
            if given:
                await asyncio.Event().wait()  # never: the app answers before it asks again
            given = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(dict(scope), receive, send)
        if sent[0]["status"] != 200:
            raise RuntimeError(f"step answered {sent[0]['status']}: {sent[-1].get('body')!r}")

    return post


async def measure(rounds: int, per_round: int) -> dict[str, list[float]]:
    app = create_app(Settings.model_validate({"auth_disabled": True}))
    bodies = step_bodies(64)
    async with app.router.lifespan_context(app):
        runs = app.state.runs
        key = RunKey(LOCAL_TENANT, "bench")
        await runs.create(
            key, [f"o{k}" for k in range(SHAPE[-1])], spard.SpardConfig(), None, StreamingConfig()
        )
        max_scores = app.state.settings.max_scores
        ways = {
            "direct": [direct_step(runs, key, body, max_scores) for body in bodies],
            "app": [asgi_step(app, body) for body in bodies],
        }
        medians: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(rounds):
            for name, calls in ways.items():
                samples = np.empty(per_round)
                for index in range(per_round):
                    start = time.perf_counter()
                    await calls[index % len(calls)]()
                    samples[index] = time.perf_counter() - start
                medians[name].append(float(np.median(samples) * 1e3))
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("benchmark-results"))
    args = parser.parse_args()
    medians = uvloop.run(measure(args.rounds, args.per_round))
    overhead = [app - direct for app, direct in zip(medians["app"], medians["direct"], strict=True)]
    print(f"(64, 8, 4) JSON step, median ms per round of {args.per_round}")
    for name, values in (*medians.items(), ("app - direct", overhead)):
        print(f"{name:<14}" + " ".join(f"{value:7.3f}" for value in values))
    result = {
        "benchmark": "app_overhead",
        "shape": SHAPE,
        "load_average": list(os.getloadavg()),
        "median_ms": medians,
        "app_over_direct_ms": overhead,
        "app_over_direct_median_ms": float(np.median(overhead)),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "app_overhead.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
