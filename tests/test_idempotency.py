"""Exactly once under retries: a step without an index, or a create, sent again with the same
Idempotency-Key is answered from the first attempt, in the run layer, on both stores, through a
paused Redis and through the SDK when a response is lost."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest
from conftest import service_client, service_settings

import spard
from spard.client import SpardClient
from spard.service.protocol.wire import IDEMPOTENCY_HEADER, encode_step
from spard.service.runs.idempotency import step_once
from tests.servers import ServiceProcess

pytestmark = pytest.mark.anyio
OBJECTIVES = ["a", "b"]


def batch(t: int) -> list:
    return (np.round(np.random.default_rng(t).random((6, 4, 2)) * 4) / 4).tolist()


def step(state, scores, step=None, *, request_id):
    return step_once(state, scores, step, return_advantages=False, request_id=request_id)


def test_the_run_layer_replays_a_request_id_instead_of_applying_again():
    state = spard.init(OBJECTIVES)
    first, state = step(state, batch(0), request_id="req-0")
    again, same = step(state, batch(0), request_id="req-0")
    assert same is state
    assert (first.step, again.step, again.replayed) == (0, 0, True)
    np.testing.assert_array_equal(first.sample_weights, again.sample_weights)
    second, state = step(state, batch(1), request_id="req-1")
    assert second.step == 1
    with pytest.raises(spard.StepConflictError) as caught:
        step(state, batch(5), request_id="req-0")
    assert caught.value.field == "scores"
    with pytest.raises(spard.StepConflictError) as caught:
        step(state, batch(0), step=4, request_id="req-0")
    assert caught.value.field == "request_id"
    # The key travels with the state, so a replica that loads it replays too.
    restored = spard.State.from_dict(state.to_dict())
    assert step(restored, batch(1), request_id="req-1")[0].replayed
    for bad in ("", "x" * 129, "tab\there"):
        with pytest.raises(spard.InputError) as caught:
            step(state, batch(2), request_id=bad)
        assert caught.value.field == "request_id"


def test_states_written_before_request_ids_still_load():
    state = spard.step(spard.init(OBJECTIVES), batch(0))[1]
    document = state.to_dict()
    for entry in document["recent"]:
        del entry["request_id"]
    restored = spard.State.from_dict(document)
    assert restored.recent[0].request_id is None


async def test_a_step_without_index_sent_twice_with_one_key_is_applied_once(client):
    await client.post("/v1/runs", json={"run_id": "r", "objectives": OBJECTIVES})
    headers = {IDEMPOTENCY_HEADER: "step-one"}
    first = await client.post("/v1/runs/r/steps", json={"scores": batch(0)}, headers=headers)
    again = await client.post("/v1/runs/r/steps", json={"scores": batch(0)}, headers=headers)
    assert (first.json()["step"], first.json()["replayed"]) == (0, False)
    assert (again.json()["step"], again.json()["replayed"]) == (0, True)
    # The binary body carries the same key in the same header.
    binary = {"content-type": "application/octet-stream", IDEMPOTENCY_HEADER: "step-two"}
    body = encode_step(np.array(batch(1)), None, return_advantages=False)
    for _ in range(2):
        answer = await client.post("/v1/runs/r/steps", content=body, headers=binary)
        assert answer.json()["step"] == 1
    other = await client.post(
        "/v1/runs/r/steps", json={"scores": batch(0)}, headers={IDEMPOTENCY_HEADER: "x"}
    )
    assert other.json()["step"] == 2
    history = (await client.get("/v1/runs/r/history")).json()["entries"]
    assert [entry["step"] for entry in history] == [0, 1, 2]


async def test_a_create_sent_again_with_its_key_gets_its_run(client):
    body = {"run_id": "c", "objectives": OBJECTIVES}
    headers = {IDEMPOTENCY_HEADER: "create-c"}
    first = await client.post("/v1/runs", json=body, headers=headers)
    again = await client.post("/v1/runs", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["run_id"] == "c"
    other = await client.post("/v1/runs", json=body, headers={IDEMPOTENCY_HEADER: "someone"})
    assert other.status_code == 409
    assert (await client.post("/v1/runs", json=body)).status_code == 409


async def test_a_create_without_run_id_sent_again_with_its_key_makes_one_run(client):
    body = {"objectives": OBJECTIVES}
    headers = {IDEMPOTENCY_HEADER: "create-anonymous"}
    first = await client.post("/v1/runs", json=body, headers=headers)
    again = await client.post("/v1/runs", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["run_id"] == first.json()["run_id"]
    assert again.json()["created_at"] == first.json()["created_at"]
    other = await client.post("/v1/runs", json=body, headers={IDEMPOTENCY_HEADER: "another"})
    assert other.json()["run_id"] != first.json()["run_id"]


@pytest.mark.parametrize("run_id", ["named", None])
async def test_a_create_key_reused_with_another_body_is_refused(client, run_id):
    headers = {IDEMPOTENCY_HEADER: f"create-{run_id}"}
    body = {"objectives": OBJECTIVES, **({"run_id": run_id} if run_id else {})}
    first = await client.post("/v1/runs", json=body, headers=headers)
    assert first.status_code == 201
    # The same run spelled otherwise is the same request.
    same = {**body, "prior_weights": {"b": 2, "a": 2}, "config": {}}
    assert (await client.post("/v1/runs", json=same, headers=headers)).status_code == 201
    for changed in ({"objectives": ["a", "c"]}, {"config": {"warmup": 9}}):
        refused = await client.post("/v1/runs", json={**body, **changed}, headers=headers)
        assert refused.status_code == 409, refused.text
        assert refused.json()["field"] == "Idempotency-Key"
    run = await client.get(f"/v1/runs/{first.json()['run_id']}")
    assert run.json()["objectives"] == OBJECTIVES


@pytest.mark.parametrize("key", ["x" * 129, "new\nline"])
async def test_a_bad_key_is_refused_naming_the_header(client, key):
    await client.post("/v1/runs", json={"run_id": "k", "objectives": OBJECTIVES})
    answer = await client.post(
        "/v1/runs/k/steps", json={"scores": batch(0)}, headers={IDEMPOTENCY_HEADER: key}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == IDEMPOTENCY_HEADER


async def test_a_503_that_was_applied_is_replayed_by_its_retry(redis_server):
    settings = service_settings("redis", redis_server, redis_timeout_s=1.0)
    async with service_client(settings) as client:
        await client.post("/v1/runs", json={"run_id": "p", "objectives": OBJECTIVES})
        for t in range(2):
            await client.post("/v1/runs/p/steps", json={"step": t, "scores": batch(t)})
        headers = {IDEMPOTENCY_HEADER: "paused"}
        redis_server.pause()
        try:
            started = time.perf_counter()
            lost = await client.post("/v1/runs/p/steps", json={"scores": batch(2)}, headers=headers)
            elapsed = time.perf_counter() - started
        finally:
            redis_server.resume()
        assert lost.status_code == 503
        # The configured timeout, once: no retry below the service re-sends the write.
        assert elapsed < 1.8
        time.sleep(0.2)  # Redis runs the script it received while paused
        history = (await client.get("/v1/runs/p/history")).json()["entries"]
        assert [entry["step"] for entry in history] == [0, 1, 2]
        retry = await client.post("/v1/runs/p/steps", json={"scores": batch(2)}, headers=headers)
        assert (retry.json()["step"], retry.json()["replayed"]) == (2, True)
        history = (await client.get("/v1/runs/p/history")).json()["entries"]
        assert [entry["step"] for entry in history] == [0, 1, 2]


class _LoseFirstResponses(httpx.HTTPTransport):
    """Delivers every request, but loses the response of the first one of each kind: the
    fault of a proxy or a connection dropped after the server acted."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str, str]] = set()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        kind = (request.method, request.url.path)
        if kind not in self.seen:
            self.seen.add(kind)
            response.read()
            raise httpx.ReadError("response lost", request=request)
        return response


@pytest.mark.slow
def test_the_sdk_retries_lost_responses_without_applying_twice():
    server = ServiceProcess(env={"SPARD_AUTH_DISABLED": "true"}).start()
    try:
        client = SpardClient(server.url, transport=_LoseFirstResponses(), backoff_s=0.01)
        info = client.create_run(OBJECTIVES, run_id="lossy")
        assert info.run_id == "lossy"
        outcomes = [client.step("lossy", np.array(batch(t))) for t in range(3)]
        assert [outcome.step for outcome in outcomes] == [0, 1, 2]
        assert [entry["step"] for entry in client.history("lossy")] == [0, 1, 2]
        client.delete_run("lossy")  # the first DELETE went through; its retry gets 404
        with pytest.raises(spard.client.errors.RunNotFoundError):
            SpardClient(server.url).get_run("lossy")
    finally:
        server.stop()
