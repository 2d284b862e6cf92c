"""DRW's hypervolume-guided meta reward (strategy ``drw``) against a loop written from the
authors' trainer (yining610/dynamic-reward-weighting, ray_trainer_vanilla.py: the buffer
starts with the reference point, every reward is multiplied by the meta reward, a point joins
the buffer when it adds hypervolume), with the batch's mean scores as the performance point
(our reading: a reward service has no validation set); its optional state key; and what of the
meta reward survives group normalisation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import spard
from spard.drw import hypervolume, meta_reward

pytestmark = pytest.mark.anyio


def test_hypervolume_of_a_staircase_is_the_area_it_covers():
    # Points (1, 3), (2, 2), (3, 1) over reference (0, 0): 3 + 2 + 1 = 6 unit squares.
    assert hypervolume([(1.0, 3.0), (2.0, 2.0), (3.0, 1.0)], (0.0, 0.0)) == 6.0
    # A dominated point adds nothing; a 3-d box is its volume.
    assert hypervolume([(1.0, 3.0), (0.5, 1.0)], (0.0, 0.0)) == 3.0
    assert hypervolume([(1.0, 2.0, 3.0)], (0.0, 0.0, 0.0)) == 6.0
    assert meta_reward([(0.0, 0.0)], (1.0, 1.0)) == (0.5 + 1.5 * math.tanh(1.0), 1.0)
    assert meta_reward([(0.0, 0.0), (2.0, 2.0)], (1.0, 1.0)) == (0.5, 0.0)


def loop_drw(batches, weights, eps=1e-6):
    """Their loop: meta reward 1 and the reference from the first point; after it, each point's
    meta reward from the buffer, the point kept when it adds hypervolume; each reward is
    the weighted sum times the meta reward; GRPO advantages as verl computes them."""
    buffer, out = [], []
    for scores in batches:
        point = tuple(float(np.mean(scores[..., k])) for k in range(scores.shape[2]))
        if not buffer:
            meta = 1.0
            buffer.append(point)
        else:
            meta, contribution = meta_reward(buffer, point)
            if contribution > 0:
                buffer.append(point)
        prompts, rollouts, _ = scores.shape
        advantages = np.zeros((prompts, rollouts))
        for i in range(prompts):
            rewards = [meta * float(np.dot(weights, scores[i, g])) for g in range(rollouts)]
            mean = sum(rewards) / rollouts
            std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / (rollouts - 1))
            for g in range(rollouts):
                advantages[i, g] = (rewards[g] - mean) / (std + eps)
        out.append((meta, advantages, len(buffer)))
    return out


def improving_batches(seed, steps=8):
    rng = np.random.default_rng(seed)
    batches = []
    for t in range(steps):
        scores = rng.normal([0.1 * t, 0.05 * t], 0.5, size=(5, 4, 2))
        scores[0, :, 1] = 0.25  # a constant group: where the meta reward shows
        scores[1] = np.round(scores[1])  # ties
        batches.append(scores)
    return batches


@pytest.mark.parametrize("seed", range(8))
def test_drw_is_the_authors_loop_on_batch_means(seed):
    batches = improving_batches(seed)
    state = spard.init(["a", "b"], spard.SpardConfig(strategy="drw"), prior_weights=[0.6, 0.4])
    for scores, (meta, advantages, kept) in zip(
        batches, loop_drw(batches, [0.6, 0.4]), strict=True
    ):
        result, state = spard.step(state, scores, return_advantages=True)
        assert state.recent[-1].reward_scale == pytest.approx(meta, abs=1e-12)
        assert state.reward_scale_state.shape == (kept, 2)
        np.testing.assert_allclose(result.advantages, advantages, atol=1e-9)


def test_the_meta_reward_survives_group_normalisation_only_through_the_std_floor():
    batches = improving_batches(0)
    drw = spard.init(["a", "b"], spard.SpardConfig(strategy="drw", scale_rewards="none"))
    static = spard.init(["a", "b"], spard.SpardConfig(strategy="static", scale_rewards="none"))
    grouped = spard.init(["a", "b"], spard.SpardConfig(strategy="drw"))
    for t, scores in enumerate(batches):
        a, drw = spard.step(drw, scores, return_advantages=True)
        b, static = spard.step(static, scores, return_advantages=True)
        c, grouped = spard.step(grouped, scores, return_advantages=True)
        meta = drw.recent[-1].reward_scale
        # Without the std division every advantage is scaled by the meta reward ...
        np.testing.assert_allclose(a.advantages, meta * b.advantages, atol=1e-12)
        # ... with it, (m r - m mu) / (m sigma + eps): only groups whose std is near eps move.
        spread = np.ptp(scores @ np.array([0.5, 0.5]), axis=1) > 1e-3
        plain = b.advantages / (np.std(scores @ [0.5, 0.5], axis=1, ddof=1)[:, None] + 1e-6)
        np.testing.assert_allclose(c.advantages[spread], plain[spread], rtol=1e-5)
        if t > 0:
            assert meta != 1.0


def test_a_batch_missing_a_trained_objective_holds_the_buffer_at_scale_one():
    batches = improving_batches(1, steps=3)
    batches[2][:, :, 1] = np.nan
    state = spard.init(["a", "b"], spard.SpardConfig(strategy="drw"))
    for scores in batches:
        _, state = spard.step(state, scores)
    assert state.recent[-1].reward_scale == 1.0
    assert state.reward_scale_state.shape[0] <= 2


def test_the_buffer_keeps_the_reference_and_the_newest_points():
    state = spard.init(["a", "b"], spard.SpardConfig(strategy="drw", drw_buffer_max=3))
    spread = np.array([0.0, 1.0, 2.0])[None, :, None]  # rollouts 0, 1, 2: mean 1 above t
    for t in range(6):  # every batch better on both: each point adds hypervolume
        _, state = spard.step(state, np.full((2, 3, 2), float(t)) + spread)
    means = [1.0 + t for t in (0, 4, 5)]
    np.testing.assert_allclose(state.reward_scale_state, np.repeat(means, 2).reshape(3, 2))


def exported_drw_state():
    state = spard.init(["a", "b"], spard.SpardConfig(strategy="drw"))
    for scores in improving_batches(2, steps=4):
        _, state = spard.step(state, scores)
    return json.loads(json.dumps(state.to_dict()))


def test_the_buffer_round_trips_and_is_validated_by_name():
    document = exported_drw_state()
    restored = spard.State.from_dict(document)
    assert restored.to_dict() == document
    for change, field in (
        (lambda d: d["reward_scale_state"][0].append(1.0), "state.reward_scale_state[m]"),
        (lambda d: d["reward_scale_state"][0].__setitem__(0, None), "state.reward_scale_state"),
        (lambda d: d["recent"][-1].__setitem__("reward_scale", 3.0), "state.recent"),
        (lambda d: d["config"].__setitem__("strategy", "gdpo"), "state.reward_scale_state"),
        (lambda d: d["config"].__setitem__("drw_buffer_max", 1), "state.config.drw_buffer_max"),
    ):
        broken = json.loads(json.dumps(document))
        change(broken)
        with pytest.raises(spard.InputError) as refused:
            spard.State.from_dict(broken)
        assert refused.value.field.startswith(field)


def test_drw_buffer_max_is_validated_by_name():
    with pytest.raises(spard.InputError) as refused:
        spard.config.config_from_overrides({"strategy": "drw", "drw_buffer_max": 1})
    assert refused.value.field == "config.drw_buffer_max"


def test_states_without_the_optional_keys_still_load():
    document = exported_drw_state()
    del document["reward_scale_state"]
    for entry in document["recent"]:
        entry.pop("reward_scale", None)
    state = spard.State.from_dict(document)
    assert state.reward_scale_state is None  # the buffer starts again from the next batch
    _, state = spard.step(state, improving_batches(0)[0])
    assert state.reward_scale_state.shape == (1, 2)
    gdpo = spard.init(["a", "b"], spard.SpardConfig(strategy="gdpo"))
    assert "reward_scale_state" not in gdpo.to_dict()


async def test_drw_steps_through_the_service_and_its_state_imports(client):
    body = {"run_id": "drw", "objectives": ["a", "b"], "strategy": "drw"}
    assert (await client.post("/v1/runs", json=body)).status_code == 201
    state = spard.init(["a", "b"], spard.SpardConfig(strategy="drw"))
    for t, scores in enumerate(improving_batches(3, steps=4)):
        step = {"step": t, "scores": scores.tolist(), "return_advantages": True}
        answer = await client.post("/v1/runs/drw/steps", json=step)
        assert answer.status_code == 200, answer.text
        expected, state = spard.step(state, scores, step=t, return_advantages=True)
        np.testing.assert_allclose(answer.json()["advantages"], expected.advantages, atol=1e-12)
    exported = (await client.get("/v1/runs/drw/state")).json()
    assert exported["reward_scale_state"] == state.to_dict()["reward_scale_state"]
    broken = {**exported, "reward_scale_state": [[0.0]]}
    refused = await client.put("/v1/runs/drw/state", json=broken)
    assert refused.status_code == 422
    assert refused.json()["field"].startswith("state.reward_scale_state")


def test_many_objectives_keep_a_smaller_buffer_so_a_step_stays_cheap():
    from spard.drw import affordable_points

    assert affordable_points(2) > affordable_points(4) > affordable_points(8) >= 2
    names = [f"o{k}" for k in range(6)]
    state = spard.init(names, spard.SpardConfig(strategy="drw"))
    for t in range(3 * affordable_points(6)):  # each batch best so far on one objective
        scores = np.full((2, 3, 6), 0.01 * t)
        scores[:, :, t % 6] += t
        _, state = spard.step(state, scores)
    assert state.reward_scale_state.shape[0] == affordable_points(6)
