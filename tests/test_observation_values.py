"""Observations are validated exactly as step scores are, at observe time (issue 24, item 8):
a value a step refuses is refused with 422 naming it, and its step stays committable."""

from __future__ import annotations

import pytest

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
