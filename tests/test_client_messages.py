"""SDK messages a newcomer meets (#15): bad scores named before sending, a /v1 base URL, the
URL in connection errors, and ``fallback="hold"`` for a run this client never created."""

from __future__ import annotations

import re

import numpy as np
import pytest

from spard.client import SpardClient
from spard.client.errors import InvalidRequestError, SpardConnectionError
from tests.servers import ServiceProcess, free_port

OBJECTIVES = ["a", "b"]


def batch(t: int) -> np.ndarray:
    return np.round(np.random.default_rng(t).random((4, 3, 2)) * 4) / 4


def test_infinite_scores_are_named_before_anything_is_sent():
    client = SpardClient("http://127.0.0.1:9", retries=0)  # nothing listens there
    scores = batch(0)
    scores[2, 1, 0] = np.inf
    with pytest.raises(InvalidRequestError, match=r"index \(2, 1, 0\)") as caught:
        client.step("any", scores)
    assert caught.value.field == "scores"


def test_boolean_scores_are_refused_before_anything_is_sent():
    # The rule of the engine and the service (spard.scores): a reward of True is no number.
    client = SpardClient("http://127.0.0.1:9", retries=0)
    scores = batch(0).tolist()
    scores[1][2][1] = True
    with pytest.raises(InvalidRequestError, match="not true/false") as caught:
        client.step("any", scores)
    assert caught.value.field == "scores"


def test_a_base_url_ending_in_v1_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=re.escape("use 'http://127.0.0.1:8000'")):
        SpardClient("http://127.0.0.1:8000/v1/")


def test_connection_errors_name_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SpardConnectionError, match=re.escape(f"at {url}/v1/runs/r")):
        SpardClient(url, retries=0).get_run("r")


@pytest.mark.slow
def test_hold_uses_the_newest_weights_of_a_run_it_never_created():
    server = ServiceProcess(env={"SPARD_AUTH_DISABLED": "true"}).start()
    try:
        owner = SpardClient(server.url)
        owner.create_run(OBJECTIVES, run_id="held", config={"warmup": 1})
        trainer = SpardClient(server.url, fallback="hold", retries=0)
        for t in range(3):
            trainer.step("held", batch(t), step=t)
        owner.step("held", batch(3), step=3)  # newer weights, seen through GET .../weights
        newest = trainer.weights("held", max_age_s=0).reward_weights
    finally:
        server.stop()
    held = trainer.step("held", batch(4), step=4)
    assert held.held
    np.testing.assert_array_equal(held.reward_weights, newest)
    np.testing.assert_array_equal(held.sample_weights, np.ones(4))
    # Advantages need the run's advantage rule, which this client never read: no guess.
    with pytest.raises(SpardConnectionError):
        trainer.step("held", batch(5), step=5, return_advantages=True)
