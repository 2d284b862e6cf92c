"""The SDK's observe / flush / commit / weights, against a real `spard serve` and locally."""

from __future__ import annotations

import asyncio
import logging
import threading

import numpy as np
import pytest
from batches import engine_results

from spard.client import (
    AsyncSpardClient,
    InvalidRequestError,
    SpardClient,
    SpardConnectionError,
)
from tests.servers import ServiceProcess

OBJECTIVES = ["correctness", "format", "length"]


def batch(t: int, prompts: int = 8, rollouts: int = 4) -> np.ndarray:
    scores = np.round(np.random.default_rng(50 + t).random((prompts, rollouts, 3)) * 8) / 8
    scores[1, 2, 0] = np.nan
    return scores


def expected_results(batches):
    return engine_results(OBJECTIVES, batches, warmup=2)


def scores_of(values: np.ndarray) -> dict[str, float]:
    return dict(zip(OBJECTIVES, values.tolist(), strict=True))  # NaN travels as missing


@pytest.fixture(scope="module")
def service():
    server = ServiceProcess(env={"SPARD_AUTH_DISABLED": "true"}).start()
    yield server
    server.stop()


@pytest.fixture(params=["service", "local"])
def client(request):
    if request.param == "local":
        made = SpardClient.local(observe_batch_size=16)
    else:
        made = SpardClient(request.getfixturevalue("service").url, observe_batch_size=16)
    yield made
    made.close()


def test_threads_observe_then_commit_equals_the_batch_step(client):
    run = client.create_run(OBJECTIVES, config={"warmup": 2}, streaming={"group_size": 4})
    batches = [batch(t) for t in range(3)]
    expected = expected_results(batches)
    for t, scores in enumerate(batches):
        # 8 reward-worker threads, one sample per call, no rollout index (assigned in arrival
        # order: the batch is built from the same multiset of scores per group).
        def worker(prompts: range, scores=scores, t=t) -> None:
            for n in prompts:
                for g in range(4):
                    client.observe(run.run_id, f"prompt-{n}", scores_of(scores[n, g]), step=t)

        threads = [threading.Thread(target=worker, args=(range(i, 8, 8),)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        outcome = client.commit(run.run_id, t)
        assert outcome.group_ids == [f"prompt-{n}" for n in range(8)]
        assert outcome.observations == 32
        np.testing.assert_allclose(outcome.reward_weights, expected[t].reward_weights)
        # Rollout order within a group does not change RADR's sample weights.
        np.testing.assert_allclose(outcome.sample_weights, expected[t].sample_weights)
    summary = client.flush()
    assert summary.late == []
    assert summary.conflicts == []
    again = client.commit(run.run_id, 2)
    assert again.replayed


def test_weights_are_cached_and_revalidated(client):
    run = client.create_run(OBJECTIVES, config={"warmup": 1}, streaming={"group_size": 4})
    first = client.weights(run.run_id)
    assert first.step is None
    np.testing.assert_allclose(first.reward_weights, np.full(3, 1 / 3))
    assert client.weights(run.run_id) is first  # within max age: no request
    for t in range(3):
        for n in range(8):
            for g in range(4):
                client.observe(run.run_id, n, scores_of(batch(t)[n, g]), step=t, rollout_index=g)
        client.commit(run.run_id, t)
    assert client.weights(run.run_id) is first  # still cached
    current = client.weights(run.run_id, max_age_s=0)
    assert current.step == 2
    assert current.etag != first.etag
    unchanged = client.weights(run.run_id, max_age_s=0)  # 304: same weights, refreshed
    assert unchanged.etag == current.etag
    np.testing.assert_array_equal(unchanged.reward_weights, current.reward_weights)
    info = client.get_run(run.run_id)
    np.testing.assert_allclose(current.reward_weights, info.reward_weights)


def test_late_observations_are_reported_with_a_warning(client, caplog):
    run = client.create_run(OBJECTIVES, streaming={"group_size": 2})
    for g in range(2):
        client.observe(run.run_id, 0, {"correctness": g}, step=0, rollout_index=g)
        client.observe(run.run_id, 1, {"correctness": 1 - g}, step=0, rollout_index=g)
    client.commit(run.run_id, 0)
    client.observe(run.run_id, 0, {"correctness": 1.0}, step=0, rollout_index=1)
    with caplog.at_level(logging.WARNING, logger="spard.client"):
        summary = client.flush()
    assert [o["group_id"] for o in summary.late] == [0]
    assert "1 late" in caplog.text


def test_invalid_observations_raise_naming_the_field(client):
    run = client.create_run(OBJECTIVES)
    client.observe(run.run_id, 0, {"nonsense": 1.0}, step=0)
    with pytest.raises(InvalidRequestError) as error:
        client.flush()
    assert error.value.field == "observations.0.scores.nonsense"
    assert client.flush().accepted == 0  # the bad batch is not resent forever
    with pytest.raises(ValueError, match="inf"):
        client.observe(run.run_id, 0, {"correctness": float("inf")})


def test_unreachable_service_keeps_observations_buffered():
    server = ServiceProcess(env={"SPARD_AUTH_DISABLED": "true"})  # its port, not started yet
    client = SpardClient(server.url, retries=0, flush_interval_s=60)
    client.observe("r", 0, {"correctness": 1.0}, step=0)
    with pytest.raises(SpardConnectionError):
        client.flush()
    server.start()
    try:
        client.create_run(OBJECTIVES, run_id="r")
        assert client.flush().accepted == 1  # kept, and sent by the next flush
    finally:
        client.close()
        server.stop()


@pytest.mark.anyio
async def test_async_client_observes_and_commits_locally():
    async with AsyncSpardClient.local(observe_batch_size=8) as client:
        run = await client.create_run(OBJECTIVES, config={"warmup": 2}, streaming={"group_size": 4})
        scores = batch(0)

        async def worker(n: int) -> None:
            for g in range(4):
                await client.observe(run.run_id, n, scores_of(scores[n, g]), rollout_index=g)
                await asyncio.sleep(0)

        await asyncio.gather(*(worker(n) for n in range(8)))
        outcome = await client.commit(run.run_id, 0)
        expected = expected_results([scores])[0]
        np.testing.assert_allclose(outcome.sample_weights, expected.sample_weights)
        assert outcome.group_ids == list(range(8))
        weights = await client.weights(run.run_id, max_age_s=0)
        assert weights.step == 0


@pytest.mark.anyio
async def test_async_client_against_the_service(service):
    async with AsyncSpardClient(service.url) as client:
        run = await client.create_run(OBJECTIVES, streaming={"group_size": 4})
        for n in range(8):
            for g in range(4):
                await client.observe(run.run_id, n, scores_of(batch(0)[n, g]), step=0)
        summary = await client.flush()
        assert summary.accepted == 32
        outcome = await client.commit(run.run_id, 0)
        assert outcome.observations == 32


def test_observation_ids_wherever_the_service_places_the_observation():
    from spard.client._streaming import observation_body

    placed = observation_body(0, {"a": 1.0}, None, 2, None)  # the service picks the step
    assert placed["rollout_index"] == 2
    assert len(placed["observation_id"]) == 24
    assigned = observation_body(0, {"a": 1.0}, 3, None, None)  # ... or the rollout index
    assert len(assigned["observation_id"]) == 24
    explicit = observation_body(0, {"a": 1.0}, 3, 1, None)  # fully addressed: no id needed
    assert "observation_id" not in explicit
    assert observation_body(0, {"a": 1.0}, 3, 1, "mine")["observation_id"] == "mine"
