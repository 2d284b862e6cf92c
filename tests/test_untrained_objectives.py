"""Objectives with prior weight 0 (TRL's ``reward_weights`` entry 0: logged, not trained on):
every rule keeps their weight at 0, nothing the engine returns depends on their scores' values
(whether a rollout was scored at all still counts under the decoupled rules, as TRL counts a
rollout scored by any reward), they are still tracked, and a run holding one stores, exports
and imports like any other."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import spard

pytestmark = pytest.mark.anyio

OBJECTIVES = ["logged", "correct", "judge"]
PRIOR = [0.0, 1.0, 2.0]


def _batches(seed: int, replace_logged: bool = False) -> list[np.ndarray]:
    """Batches of (6, 4, 3) scores; with ``replace_logged`` the first objective's scores are
    drawn again (the rest unchanged)."""
    rng = np.random.default_rng(seed)
    other = np.random.default_rng(seed + 1)
    batches = []
    for t in range(24):
        correct = (rng.random((6, 4)) < 0.3 + 0.02 * t).astype(float)
        judge = np.round(rng.normal(2 + 0.05 * t, 1.0, (6, 4)))
        logged = rng.normal(5.0 * t, 3.0, (6, 4))
        if replace_logged:
            logged = other.normal(-t, 10.0, (6, 4))
        batches.append(np.stack([logged, correct, judge], axis=-1))
    return batches


def _run(strategy: str, batches: list[np.ndarray]) -> list[spard.StepResult]:
    state = spard.init(OBJECTIVES, spard.SpardConfig(strategy=strategy), prior_weights=PRIOR)
    results = []
    for scores in batches:
        result, state = spard.step(state, scores, return_advantages=True)
        results.append(result)
    assert state.reward_weights[0] == 0.0
    return results


@pytest.mark.parametrize("strategy", spard.STRATEGIES)
def test_every_strategy_keeps_an_untrained_objective_at_weight_zero(strategy):
    results = _run(strategy, _batches(0))
    weights = np.array([result.reward_weights for result in results])
    assert (weights[:, 0] == 0.0).all()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    if strategy in ("spard", "pawa", "saw"):  # a moving rule moved the other two
        assert np.ptp(weights[:, 1]) > 0.01
    last = results[-1].stats["logged"]
    assert last["level"] is not None
    assert last["level"] > 50


@pytest.mark.parametrize("strategy", spard.STRATEGIES)
def test_nothing_returned_depends_on_an_untrained_objectives_scores(strategy):
    first = _run(strategy, _batches(3))
    second = _run(strategy, _batches(3, replace_logged=True))
    for one, other in zip(first, second, strict=True):
        np.testing.assert_array_equal(one.reward_weights, other.reward_weights)
        np.testing.assert_array_equal(one.sample_weights, other.sample_weights)
        np.testing.assert_array_equal(one.advantages, other.advantages)


def test_an_untrained_objective_never_counts_as_a_prompts_signal():
    scores = np.zeros((2, 4, 2))
    scores[0, :, 0] = [0.0, 1.0, 2.0, 3.0]  # only the untrained objective varies on prompt 0
    scores[1, :, 1] = [0.0, 1.0, 0.0, 1.0]
    config = spard.SpardConfig(strategy="radr")
    result, _ = spard.step(spard.init(["logged", "trained"], config, prior_weights=[0, 1]), scores)
    assert result.zero_signal.tolist() == [True, False]


async def test_the_service_stores_exports_and_imports_a_run_with_one(client):
    body = {"run_id": "z", "objectives": OBJECTIVES, "prior_weights": PRIOR}
    assert (await client.post("/v1/runs", json=body)).status_code == 201
    for t, scores in enumerate(_batches(5)[:6]):
        answer = await client.post("/v1/runs/z/steps", json={"step": t, "scores": scores.tolist()})
        assert answer.status_code == 200, answer.text
        assert answer.json()["reward_weights"]["logged"] == 0.0
    exported = (await client.get("/v1/runs/z/state")).json()
    assert exported["prior_weights"][0] == 0.0
    twin = {"run_id": "z2", "objectives": OBJECTIVES, "prior_weights": PRIOR}
    assert (await client.post("/v1/runs", json=twin)).status_code == 201
    assert (await client.put("/v1/runs/z2/state", json=exported)).status_code == 200
    assert (await client.get("/v1/runs/z2/state")).json() == exported
    for field, change in (
        ("state.reward_weights", lambda state: state.update(reward_weights=[0.2, 0.4, 0.4])),
        (
            "state.recent.reward_weights",
            lambda state: state["recent"][-1].update(reward_weights=[0.2, 0.4, 0.4]),
        ),
    ):
        broken = copy.deepcopy(exported)
        change(broken)
        refused = await client.put("/v1/runs/z2/state", json=broken)
        assert refused.status_code == 422
        assert refused.json()["field"] == field
