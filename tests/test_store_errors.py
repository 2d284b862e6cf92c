"""Redis error replies (issue 24, items 6 and 9): OOM and BUSY are a 503 with Retry-After,
counted in spard_store_errors_total, never a 500; /metrics stays scrapeable while Redis is
down. Caused for real: CONFIG SET maxmemory, a script running past busy-reply-threshold."""

from __future__ import annotations

import contextlib
import re
import threading
import time

import numpy as np
import pytest
import redis
from conftest import service_client, service_settings

pytestmark = pytest.mark.anyio
OBJECTIVES = ["a", "b"]
BUSY_SCRIPT = """
local start = redis.call('TIME')
while true do
  local now = redis.call('TIME')
  if (now[1] - start[1]) * 1e6 + (now[2] - start[2]) > tonumber(ARGV[1]) then break end
end
return 1
"""


def batch(t: int) -> list:
    return np.random.default_rng(t).random((4, 3, 2)).tolist()


def store_errors(text: str) -> float:
    match = re.search(r"^spard_store_errors_total (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@contextlib.contextmanager
def out_of_memory(server):
    client = redis.Redis(port=server.port)
    client.config_set("maxmemory", 1)  # below what is used: every write is refused
    try:
        yield
    finally:
        client.config_set("maxmemory", 0)


@contextlib.contextmanager
def busy(server, seconds: float):
    client = redis.Redis(port=server.port)
    client.config_set("busy-reply-threshold", 20)
    script = threading.Thread(target=client.eval, args=(BUSY_SCRIPT, 0, int(seconds * 1e6)))
    script.start()
    probe = redis.Redis(port=server.port)
    deadline = time.monotonic() + seconds / 2
    while True:  # until the script is past the threshold: other clients then get BUSY
        try:
            probe.ping()
        except redis.ResponseError as exc:
            if str(exc).startswith("BUSY"):
                break
            raise
        assert time.monotonic() < deadline, "the script did not make Redis busy"
        time.sleep(0.01)
    try:
        yield
    finally:
        script.join()
        client.config_set("busy-reply-threshold", 5000)


def assert_retry_later(response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert (
        "run store unavailable" in response.json()["detail"]
        or "not ready" in (response.json()["detail"])
    )


async def test_redis_out_of_memory_is_a_503_to_retry(redis_server):
    async with service_client(service_settings("redis", redis_server)) as client:
        body = {"run_id": "oom", "objectives": OBJECTIVES}
        assert (await client.post("/v1/runs", json=body)).status_code == 201
        state = (await client.get("/v1/runs/oom/state")).json()
        before = store_errors((await client.get("/metrics")).text)
        with out_of_memory(redis_server):
            requests = [
                client.post("/v1/runs/oom/steps", json={"step": 0, "scores": batch(0)}),
                client.post("/v1/runs", json={"run_id": "other", "objectives": OBJECTIVES}),
                client.post(
                    "/v1/runs/oom/observations",
                    json={"step": 0, "group_id": 0, "scores": {"a": 1.0}},
                ),
                client.put("/v1/runs/oom/state", json=state),
            ]
            for pending in requests:
                assert_retry_later(await pending)
            assert (await client.get("/v1/runs/oom")).status_code == 200  # reads still work
        after = store_errors((await client.get("/metrics")).text)
        assert after - before == 4
        step = await client.post("/v1/runs/oom/steps", json={"step": 0, "scores": batch(0)})
        assert step.status_code == 200, step.text


async def test_a_busy_redis_is_a_503_to_retry(redis_server):
    async with service_client(service_settings("redis", redis_server)) as client:
        body = {"run_id": "busy", "objectives": OBJECTIVES}
        assert (await client.post("/v1/runs", json=body)).status_code == 201
        before = store_errors((await client.get("/metrics")).text)
        with busy(redis_server, 3.0):
            assert_retry_later(
                await client.post("/v1/runs/busy/steps", json={"step": 0, "scores": batch(0)})
            )
            assert_retry_later(await client.get("/readyz"))
        after = store_errors((await client.get("/metrics")).text)
        assert after - before == 2
        step = await client.post("/v1/runs/busy/steps", json={"step": 0, "scores": batch(0)})
        assert step.status_code == 200, step.text


async def test_metrics_stay_scrapeable_while_redis_is_down(redis_server):
    settings = service_settings("redis", redis_server, redis_timeout_s=0.5)
    async with service_client(settings) as client:
        body = {"run_id": "down", "objectives": OBJECTIVES}
        assert (await client.post("/v1/runs", json=body)).status_code == 201
        up = (await client.get("/metrics")).text
        assert 'run_id="down"' in up
        redis_server.kill()
        try:
            failed = await client.post("/v1/runs/down/steps", json={"scores": batch(0)})
            assert_retry_later(failed)
            scrape = await client.get("/metrics")
        finally:
            redis_server.start()
        assert scrape.status_code == 200, scrape.text
        assert store_errors(scrape.text) >= store_errors(up) + 1
        assert 'run_id="down"' not in scrape.text  # per-run series need the store
        assert "spard_http_request_duration_seconds" in scrape.text
