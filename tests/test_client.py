"""The SDK against a real `spard serve` and in local mode, with the same test bodies."""

from __future__ import annotations

import logging
import socket
import threading
import time

import httpx
import numpy as np
import pytest

import spard
from spard.client import (
    AsyncSpardClient,
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    LocalRuns,
    RunNotFoundError,
    SpardClient,
    SpardConnectionError,
    SpardTimeoutError,
)
from spard.client.local import LocalTransport
from tests.servers import RedisServer, ServiceProcess, free_port

OBJECTIVES = ["correctness", "format"]
API_KEY = "client-key"


def batch(t: int, shape=(6, 4, 2)) -> np.ndarray:
    scores = np.round(np.random.default_rng(t).random(shape) * 8) / 8  # exact in float32
    scores[0, 0, 1] = np.nan
    return scores


@pytest.fixture(scope="module")
def service():
    server = ServiceProcess(env={"SPARD_API_KEYS": f"{API_KEY}=clients"}).start()
    yield server
    server.stop()


@pytest.fixture(params=["service", "local"])
def client(request):
    if request.param == "local":
        made = SpardClient.local()
    else:
        made = SpardClient(request.getfixturevalue("service").url, api_key=API_KEY)
    yield made
    made.close()


def test_lifecycle_returns_numpy_and_matches_the_engine(client):
    run = client.create_run(OBJECTIVES, strategy="spard", config={"warmup": 2})
    assert run.objectives == OBJECTIVES
    np.testing.assert_allclose(run.reward_weights, [0.5, 0.5])
    state = spard.init(OBJECTIVES, spard.SpardConfig(warmup=2))
    for t in range(5):
        outcome = client.step(run.run_id, batch(t), step=t, return_advantages=True)
        expected, state = spard.step(state, batch(t), step=t, return_advantages=True)
        assert isinstance(outcome.reward_weights, np.ndarray)
        np.testing.assert_array_equal(outcome.reward_weights, expected.reward_weights)
        np.testing.assert_array_equal(outcome.sample_weights, expected.sample_weights)
        np.testing.assert_array_equal(outcome.zero_signal, expected.zero_signal)
        np.testing.assert_array_equal(outcome.advantages, expected.advantages)
        assert outcome.weights_by_objective() == expected.weights_by_objective()
        assert not outcome.replayed
        assert not outcome.held
    again = client.step(run.run_id, batch(4), step=4)
    assert again.replayed
    info = client.get_run(run.run_id)
    assert info.last_step == 4
    np.testing.assert_array_equal(info.reward_weights, state.reward_weights)
    assert [entry["step"] for entry in client.history(run.run_id)] == list(range(5))
    assert [entry["step"] for entry in client.history(run.run_id, after=1, limit=2)] == [2, 3]
    saved = client.export_state(run.run_id)
    assert client.import_state(run.run_id, saved).last_step == 4
    client.delete_run(run.run_id)
    with pytest.raises(RunNotFoundError):
        client.get_run(run.run_id)


def test_every_json_body_goes_through_one_encoder_numpy_values_included(client):
    """A JSON body (here a run's config) is encoded as the step's is: a numpy scalar is a
    number, not a TypeError, and the config reads back as sent."""
    config = {"step_size": np.float32(0.25), "warmup": np.int64(3)}
    run = client.create_run(OBJECTIVES, config=config)
    assert run.config["step_size"] == 0.25
    assert run.config["warmup"] == 3


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"config": {"warmup": 2**70}}, "config.warmup"),  # beyond orjson's 64 bits
        ({"config": {"saw_offsets": {1: 0.1}}}, "config.saw_offsets"),  # a key not a string
        ({"prior_weights": [float("nan"), 1.0, 1.0]}, "prior_weights"),  # JSON has no NaN
        ({"prior_weights": dict.fromkeys(OBJECTIVES, float("inf"))}, "prior_weights"),
    ],
)
def test_a_body_json_cannot_carry_as_given_is_refused_naming_its_field(client, options, field):
    with pytest.raises(InvalidRequestError) as caught:
        client.create_run(OBJECTIVES, **options)
    assert (caught.value.status_code, caught.value.field) == (422, field)


def test_errors_have_one_type_per_class(client):
    run = client.create_run(OBJECTIVES, run_id="typed-errors")
    with pytest.raises(ConflictError):
        client.create_run(OBJECTIVES, run_id="typed-errors")
    with pytest.raises(InvalidRequestError) as caught:
        client.step(run.run_id, np.ones((2, 3, 5)))
    assert caught.value.field == "scores"
    assert caught.value.status_code == 422
    with pytest.raises(InvalidRequestError, match=r"config\.warmup"):
        client.create_run(OBJECTIVES, config={"warmup": 0})
    with pytest.raises(InvalidRequestError, match="disagree") as disagree:
        client.create_run(OBJECTIVES, strategy="saw", config={"strategy": "pawa"})
    assert disagree.value.field == "config.strategy"
    client.step(run.run_id, batch(0), step=0)
    with pytest.raises(ConflictError, match="different scores"):
        client.step(run.run_id, batch(1), step=0)
    with pytest.raises(RunNotFoundError):
        client.step("no-such-run", batch(0))


class _Recording(httpx.BaseTransport):
    """A real transport, noting each request's content type."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner, self.sent = inner, []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request.headers.get("content-type"))
        return self.inner.handle_request(request)


@pytest.mark.parametrize("kind", ["service", "local"])
def test_large_batches_go_as_binary_and_agree_with_json(kind, request):
    runs = LocalRuns()
    by_json, by_binary = [], []
    for threshold, results in ((10**9, by_json), (100, by_binary)):
        inner = LocalTransport(runs) if kind == "local" else httpx.HTTPTransport()
        url = "http://spard.local" if kind == "local" else request.getfixturevalue("service").url
        recording = _Recording(inner)
        key = API_KEY if kind == "service" else None
        with SpardClient(
            url, api_key=key, binary_threshold=threshold, transport=recording
        ) as client:
            run = client.create_run(OBJECTIVES, config={"warmup": 1})
            results += [client.step(run.run_id, batch(t, (40, 8, 2)), step=t) for t in range(3)]
        binary = recording.sent.count("application/octet-stream")
        assert binary == (3 if threshold == 100 else 0)
    for a, b in zip(by_json, by_binary, strict=True):
        np.testing.assert_array_equal(a.reward_weights, b.reward_weights)
        np.testing.assert_array_equal(a.sample_weights, b.sample_weights)


def test_wrong_api_key_is_an_authentication_error(service):
    with SpardClient(service.url, api_key="wrong") as client, pytest.raises(AuthenticationError):
        client.create_run(OBJECTIVES)


def test_unreachable_service_raises_after_retries():
    client = SpardClient(f"http://127.0.0.1:{free_port()}", retries=2, backoff_s=0.01)
    started = time.perf_counter()
    with pytest.raises(SpardConnectionError, match="unreachable"):
        client.get_run("x")
    assert time.perf_counter() - started >= 0.03  # two backoffs: 0.01 + 0.02


def test_a_silent_service_times_out():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = SpardClient(f"http://127.0.0.1:{port}", timeout_s=0.2, retries=1, backoff_s=0.01)
        with pytest.raises(SpardTimeoutError, match="timed out"):
            client.get_run("x")


@pytest.fixture
def redis_backed(tmp_path):
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    env = {"SPARD_AUTH_DISABLED": "true", "SPARD_REDIS_TIMEOUT_S": "0.3"}
    server = ServiceProcess("--redis-url", redis_server.url, env=env).start()
    yield server, redis_server
    server.stop()
    redis_server.stop()


@pytest.mark.slow
def test_retries_ride_out_a_short_outage(redis_backed):
    server, redis_server = redis_backed
    client = SpardClient(server.url, retries=6, backoff_s=0.1)
    run = client.create_run(OBJECTIVES)
    client.step(run.run_id, batch(0), step=0)
    redis_server.kill()
    threading.Timer(0.5, redis_server.start).start()
    outcome = client.step(run.run_id, batch(1), step=1)  # 503s, retried until Redis is back
    assert outcome.step == 1
    assert not outcome.held
    assert client.get_run(run.run_id).steps_applied == 2


@pytest.mark.slow
def test_hold_fallback_keeps_a_training_loop_going(redis_backed, caplog):
    server, redis_server = redis_backed
    client = SpardClient(server.url, retries=1, backoff_s=0.01, fallback="hold")
    run = client.create_run(OBJECTIVES, config={"warmup": 1})
    for t in range(3):
        last = client.step(run.run_id, batch(t), step=t)
    weights_before = client.get_run(run.run_id).reward_weights
    redis_server.kill()
    with caplog.at_level(logging.WARNING, logger="spard.client"):
        held = [client.step(run.run_id, batch(t), step=t, return_advantages=True) for t in (3, 4)]
    assert all(h.held for h in held)
    np.testing.assert_array_equal(held[0].reward_weights, weights_before)
    np.testing.assert_array_equal(held[0].sample_weights, np.ones(6))
    assert held[0].advantages.shape == (6, 4)
    assert np.isfinite(held[0].advantages).all()
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1
    redis_server.start()
    resumed = client.step(run.run_id, batch(5), step=5)
    assert not resumed.held
    assert not resumed.replayed
    assert [e["step"] for e in client.history(run.run_id)] == [0, 1, 2, 5]
    assert last.step == 2


def test_hold_does_not_hide_caller_errors(service):
    client = SpardClient(service.url, api_key=API_KEY, fallback="hold")
    run = client.create_run(OBJECTIVES)
    with pytest.raises(InvalidRequestError):
        client.step(run.run_id, np.ones((2, 3, 7)))


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["service", "local"])
async def test_async_client_is_the_same_api(mode, request):
    if mode == "local":
        client = AsyncSpardClient.local()
    else:
        client = AsyncSpardClient(request.getfixturevalue("service").url, api_key=API_KEY)
    async with client:
        run = await client.create_run(OBJECTIVES, config={"warmup": 2})
        sync_twin = SpardClient.local()
        twin = sync_twin.create_run(OBJECTIVES, config={"warmup": 2})
        for t in range(4):
            outcome = await client.step(run.run_id, batch(t), step=t, return_advantages=True)
            expected = sync_twin.step(twin.run_id, batch(t), step=t, return_advantages=True)
            np.testing.assert_array_equal(outcome.reward_weights, expected.reward_weights)
            np.testing.assert_array_equal(outcome.advantages, expected.advantages)
        assert len(await client.history(run.run_id)) == 4
        state = await client.export_state(run.run_id)
        assert (await client.import_state(run.run_id, state)).last_step == 3
        assert (await client.get_run(run.run_id)).steps_applied == 4
        await client.delete_run(run.run_id)
        with pytest.raises(RunNotFoundError):
            await client.get_run(run.run_id)


@pytest.mark.anyio
async def test_local_runs_serve_threads_and_loops_at_once_then_refuse_after_close():
    """One LocalRuns behind sync clients on threads and an async client on a loop: every
    step lands exactly once; once closed, both kinds of caller get a clear error."""
    runs = LocalRuns()
    clients = [SpardClient.local(runs) for _ in range(3)]
    run_ids = [client.create_run(OBJECTIVES).run_id for client in clients]

    def train(client: SpardClient, run_id: str) -> None:
        for t in range(20):
            client.step(run_id, batch(t), step=t)

    threads = [
        threading.Thread(target=train, args=pair) for pair in zip(clients, run_ids, strict=True)
    ]
    async with AsyncSpardClient.local(runs) as async_client:
        own = await async_client.create_run(OBJECTIVES)
        for thread in threads:
            thread.start()
        for t in range(20):
            await async_client.step(own.run_id, batch(t), step=t)
        for thread in threads:
            thread.join()
        for run_id in [*run_ids, own.run_id]:
            assert (await async_client.get_run(run_id)).steps_applied == 20
        runs.close()
        with pytest.raises(RuntimeError, match="closed"):
            await async_client.get_run(own.run_id)
    with pytest.raises(RuntimeError, match="closed"):
        clients[0].step(run_ids[0], batch(0))
