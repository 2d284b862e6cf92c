"""Benchmark: what local mode costs per step over calling the run layer directly.

Local mode (``SpardClient.local()``) runs the service in-process: every call goes through its
FastAPI app over a minimal ASGI exchange, and the app hands a step to the run layer's front
door (``StepDoor``) ahead of its router. Measured per step: the engine alone (the floor); the
run layer called directly (``serve_step``: decoding, ``RunService.step`` over the memory
store, response encoding, no framework); the SDK over a minimal transport that does just that;
the SDK in local mode; and the SDK over the same app through httpx's generic ASGI transport.
Run ``python -m benchmarks.local_mode [--out DIR]``: writes ``local_mode.json`` there
(default ``benchmark-results/``) and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

import spard
from spard.client import SpardClient
from spard.service.http.app import create_app, make_store
from spard.service.protocol.streaming import StreamingConfig
from spard.service.protocol.wire import OCTET_STREAM, encode_step
from spard.service.runs.run_service import RunService
from spard.service.runs.step_request import serve_step
from spard.service.runs.store import RunKey
from spard.service.settings import Settings

SHAPE = (64, 8, 4)
OBJECTIVES = [f"objective_{k}" for k in range(SHAPE[-1])]
MAX_SCORES: int = Settings.model_fields["max_scores"].default  # the service default


def _median_ms(samples: list[float]) -> float:
    return float(np.median(samples) * 1e3)


def engine(batches: list[np.ndarray[Any, Any]], repeats: int) -> float:
    state = spard.init(OBJECTIVES)
    samples = []
    for t in range(repeats):
        start = time.perf_counter()
        _, state = spard.step(state, batches[t % len(batches)], t)
        samples.append(time.perf_counter() - start)
    return _median_ms(samples)


async def _direct(batches: list[np.ndarray[Any, Any]], repeats: int, binary: bool) -> float:
    runs = RunService(make_store(Settings.model_validate({"auth_disabled": True})))
    key = RunKey("local", "bench")
    await runs.create(key, OBJECTIVES, spard.SpardConfig(), None, StreamingConfig())
    samples = []
    for t in range(repeats):
        scores = batches[t % len(batches)]
        if binary:
            body, media_type = encode_step(scores, t, return_advantages=False), OCTET_STREAM
        else:
            body = orjson.dumps({"step": t, "scores": scores}, option=orjson.OPT_SERIALIZE_NUMPY)
            media_type = "application/json"
        start = time.perf_counter()
        await serve_step(runs, key, media_type, body, request_id=None, max_scores=MAX_SCORES)
        samples.append(time.perf_counter() - start)
    return _median_ms(samples)


class DirectTransport(httpx.BaseTransport):
    """The other design, for steps only: decode, call the run layer, encode; no framework."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.runs = RunService(make_store(Settings.model_validate({"auth_disabled": True})))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        if request.url.path == "/v1/runs":
            body = orjson.loads(request.content)
            work = self.runs.create(
                RunKey("local", body["run_id"]),
                body["objectives"],
                spard.SpardConfig(),
                None,
                StreamingConfig(),
            )
            return httpx.Response(201, content=self.loop.run_until_complete(work))
        run_id = request.url.path.split("/")[3]
        work = serve_step(
            self.runs,
            RunKey("local", run_id),
            request.headers["content-type"],
            request.content,
            request_id=None,
            max_scores=MAX_SCORES,
        )
        return httpx.Response(200, content=self.loop.run_until_complete(work))


class AsgiTransport(httpx.BaseTransport):
    """Every call through the service's ASGI app by httpx's ASGI transport, on a loop of its
    own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.app = create_app(Settings.model_validate({"auth_disabled": True}))
        self.asgi = httpx.ASGITransport(app=self.app)
        self.loop.run_until_complete(self.app.router.lifespan_context(self.app).__aenter__())

    async def _serve(self, request: httpx.Request) -> httpx.Response:
        response = await self.asgi.handle_async_request(request)
        content = await response.aread()
        return httpx.Response(response.status_code, headers=response.headers, content=content)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        return self.loop.run_until_complete(self._serve(request))


def sdk(batches: list[np.ndarray[Any, Any]], repeats: int, binary: bool, path: str) -> float:
    threshold = 1 if binary else 10**9
    if path == "local":
        client = SpardClient.local(binary_threshold=threshold)
    else:
        transport = DirectTransport() if path == "direct" else AsgiTransport()
        client = SpardClient(
            "http://spard.local", transport=transport, retries=0, binary_threshold=threshold
        )
    with client:
        run = client.create_run(OBJECTIVES)
        samples = []
        for t in range(repeats):
            start = time.perf_counter()
            client.step(run.run_id, batches[t % len(batches)], step=t)
            samples.append(time.perf_counter() - start)
    return _median_ms(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("benchmark-results"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    batches = [(rng.random(SHAPE) < 0.5).astype(float) for _ in range(8)]
    rows = {"engine": {"json": engine(batches, args.repeats)}}
    rows["engine"]["binary"] = rows["engine"]["json"]
    for body in ("json", "binary"):
        rows.setdefault("direct", {})[body] = asyncio.run(
            _direct(batches, args.repeats, body == "binary")
        )
        for path in ("direct", "local", "asgi"):
            rows.setdefault(f"sdk_{path}", {})[body] = sdk(
                batches, args.repeats, body == "binary", path
            )
    print(f"step {SHAPE}, median ms over {args.repeats} steps")
    print(f"{'path':<28}{'JSON':>8}{'binary':>8}")
    for name, label in [
        ("engine", "engine (spard.step)"),
        ("direct", "run layer, called directly"),
        ("sdk_direct", "SDK, minimal transport"),
        ("sdk_local", "SDK, local mode"),
        ("sdk_asgi", "SDK, httpx ASGI transport"),
    ]:
        print(f"{label:<28}{rows[name]['json']:>8.3f}{rows[name]['binary']:>8.3f}")
    bodies = ("json", "binary")
    overhead = {
        f"{path}_over_direct": {
            body: rows[f"sdk_{path}"][body] - rows["sdk_direct"][body] for body in bodies
        }
        for path in ("local", "asgi")
    }
    for name, label in [("local", "local mode over direct"), ("asgi", "httpx ASGI over direct")]:
        row = overhead[f"{name}_over_direct"]
        print(f"{label:<28}{row['json']:>8.3f}{row['binary']:>8.3f}")
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"shape": SHAPE, "repeats": args.repeats, "median_ms": rows, "overhead_ms": overhead}
    (args.out / "local_mode.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
