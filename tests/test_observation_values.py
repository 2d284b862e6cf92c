"""Observations are validated exactly as step scores are, at observe time (issue 24, item 8):
a value a step refuses is refused with 422 naming it, and its step stays committable."""

from __future__ import annotations

import numpy as np
import pytest

import spard

pytestmark = pytest.mark.anyio
OBJECTIVES = ["a", "b"]


@pytest.mark.parametrize("bad", [True, False, "0.5", 1e200, -1e101])
async def test_scores_a_step_refuses_are_refused_at_observe_time(client, bad):
    await client.post("/v1/runs", json={"run_id": "v", "objectives": OBJECTIVES})

    def observation(rollout, value):
        return {"step": 0, "group_id": 0, "rollout_index": rollout, "scores": {"a": value}}

    refused = await client.post(
        "/v1/runs/v/observations", json={"observations": [observation(0, 1), observation(1, bad)]}
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "observations.1.scores.a"
    # The corrected resend is taken, and the step commits.
    fixed = await client.post(
        "/v1/runs/v/observations", json={"observations": [observation(0, 1), observation(1, 0)]}
    )
    assert fixed.json()["accepted"] == 2
    assert fixed.json()["late"] == []
    assert (await client.post("/v1/runs/v/steps/0/commit")).status_code == 200


async def test_integers_and_bounds_are_scores(client):
    await client.post("/v1/runs", json={"run_id": "i", "objectives": OBJECTIVES})
    ok = {"step": 0, "group_id": 0, "scores": {"a": 1, "b": -1e100}}
    answer = await client.post("/v1/runs/i/observations", json=ok)
    assert answer.status_code == 200, answer.text


def test_minus_zero_replays_a_step_sent_with_zero():
    scores = np.array([[[0.0, 1.0], [0.5, 0.0]]])
    applied, state = spard.step(spard.init(OBJECTIVES), scores, step=0)
    again, _ = spard.step(state, np.where(scores == 0, -0.0, scores), step=0)
    assert again.replayed
    np.testing.assert_array_equal(applied.sample_weights, again.sample_weights)


async def test_minus_zero_is_a_duplicate_of_zero(client):
    await client.post("/v1/runs", json={"run_id": "z", "objectives": OBJECTIVES})
    first = {"step": 0, "group_id": 0, "rollout_index": 0, "scores": {"a": 0.0, "b": 1}}
    assert (await client.post("/v1/runs/z/observations", json=first)).json()["accepted"] == 1
    minus = {**first, "scores": {"a": -0.0, "b": 1}}  # JSON keeps the sign: -0.0
    again = (await client.post("/v1/runs/z/observations", json=minus)).json()
    assert again["duplicates"] == 1
    assert again["conflicts"] == []
    step = {"step": 1, "scores": [[[0.0, 1.0], [1.0, 0.0]]]}
    assert (await client.post("/v1/runs/z/steps", json=step)).status_code == 200
    minus_step = {"step": 1, "scores": [[[-0.0, 1.0], [1.0, -0.0]]]}
    replay = await client.post("/v1/runs/z/steps", json=minus_step)
    assert replay.status_code == 200, replay.text
    assert replay.json()["replayed"] is True
