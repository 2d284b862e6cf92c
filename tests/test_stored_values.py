"""Whatever is accepted can be stored and loaded again (#13.3): extreme but valid input keeps
every state loadable; the values that used to make a run un-loadable are refused up front."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from batches import objective_names, run_specs
from hypothesis import given, settings
from hypothesis import strategies as st

import spard
from spard.service.protocol.wire import encode_step

pytestmark = pytest.mark.anyio

EXTREME_CONFIGS = st.fixed_dictionaries(
    {},
    optional={
        "strategy": st.sampled_from(spard.STRATEGIES),
        "pawa_mode": st.sampled_from(["gain", "lag", "absolute"]),
        "eps_rel": st.sampled_from([0.0, 1e-12, 1e6]),
        "eps": st.sampled_from([1e-30, 1.0]),
        "utility_clip": st.sampled_from([1e-9, 1e3]),
        "step_size": st.sampled_from([1e-9, 1e3]),
        "prior_strength": st.sampled_from([0.0, 1e6]),
        "data_weight_power": st.sampled_from([0.0, 10.0]),
        "data_weight_max": st.sampled_from([0.2, 1e6]),
        "advantage_eps": st.sampled_from([1e-12, 1.0]),
        "warmup": st.sampled_from([1, 2]),
    },
)


@settings(max_examples=150, deadline=None)
@given(
    spec=run_specs(),
    overrides=EXTREME_CONFIGS,
    magnitude=st.sampled_from([1e-300, 1.0, 1e100]),
    prior_spread=st.sampled_from([1.0, 1e8]),
    untrained_first=st.booleans(),
)
def test_every_state_from_accepted_input_round_trips_and_steps_on(
    spec, overrides, magnitude, prior_spread, untrained_first
):
    config = spard.SpardConfig(**overrides)
    names = objective_names(len(spec.kinds))
    prior = np.geomspace(1.0, prior_spread, len(names)) * min(magnitude, 1e300)
    if untrained_first and len(names) > 1:
        prior[0] = 0.0  # tracked, never trained on
    state = spard.init(names, config, prior_weights=prior)
    batches = [np.clip(b * magnitude, -1e100, 1e100) for b in spec.batches()]
    for t, scores in enumerate(batches):
        result, state = spard.step(state, scores, step=t, return_advantages=True)
        assert np.isfinite(result.reward_weights).all()
        assert np.isfinite(result.sample_weights).all()
        # What the service stores, read back as another replica would.
        loaded = spard.State.from_dict(orjson.loads(state.to_json()))
        assert loaded.to_json() == state.to_json()
    again, _ = spard.step(loaded, batches[0], step=len(batches))
    expected, _ = spard.step(state, batches[0], step=len(batches))
    np.testing.assert_array_equal(again.reward_weights, expected.reward_weights)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"config": {"eps_rel": 1e999}}, "config.eps_rel"),
        ({"config": {"saw_offsets": {"a": float("nan")}}}, "config.saw_offsets.a"),
        ({"config": {"step_size": 1e300}}, "config.step_size"),
        ({"prior_weights": [5e-324, 1, 1]}, "prior_weights"),
    ],
)
def test_values_that_made_runs_unloadable_are_refused(body, field):
    def create() -> None:
        config = spard.config.config_from_overrides(body.get("config", {}))
        spard.init(["a", "b", "c"], config, prior_weights=body.get("prior_weights"))

    with pytest.raises(spard.InputError) as caught:
        create()
    assert caught.value.field == field


def test_huge_but_finite_priors_are_normalised_without_overflow():
    state = spard.init(["a", "b", "c"], prior_weights=[1e308, 1e308, 1e308])
    np.testing.assert_allclose(state.prior_weights, [1 / 3] * 3)


def test_scores_beyond_the_magnitude_limit_are_refused_with_their_index():
    scores = np.zeros((2, 4, 2))
    scores[1, 2, 0] = -1.7e308
    with pytest.raises(spard.InputError, match=r"index \(1, 2, 0\)") as caught:
        spard.step(spard.init(["a", "b"]), scores)
    assert caught.value.field == "scores"


def test_a_state_with_nan_or_overflowing_counts_is_refused():
    state = spard.step(spard.init(["a", "b"]), np.eye(2)[None].repeat(2, axis=0))[1]
    for path, value in (
        (("progress", 0), float("nan")),
        (("steps_applied",), 10**30),
        (("observations", 0), 10**30),
        (("last_step",), -5),
        (("recent", 0, "step"), 2**53),
    ):
        document = state.to_dict()
        target = document
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
        with pytest.raises(spard.InputError) as caught:
            spard.State.from_dict(document)
        assert caught.value.field.startswith("state."), caught.value.field


async def test_the_service_refuses_them_and_the_run_stays_loadable(client):
    created = await client.post("/v1/runs", json={"run_id": "v", "objectives": ["a", "b"]})
    assert created.status_code == 201
    huge = [[[1.7e308, 0.0], [0.0, 0.0]]]
    answer = await client.post("/v1/runs/v/steps", json={"scores": huge})
    assert answer.status_code == 422
    assert answer.json()["field"] == "scores"
    for config, field in (
        ({"eps_rel": 1e300}, "config.eps_rel"),
        ({"prior_mix": 0.5, "data_weight_power": 1e9}, "config.data_weight_power"),
    ):
        answer = await client.post(
            "/v1/runs", json={"run_id": "w", "objectives": ["a"], "config": config}
        )
        assert answer.status_code == 422
        assert answer.json()["field"] == field
    state = (await client.get("/v1/runs/v/state")).json()
    state["progress"][0] = 1e301
    answer = await client.put("/v1/runs/v/state", json=state)
    assert answer.status_code == 422
    assert answer.json()["field"].startswith("state.progress")
    step = await client.post("/v1/runs/v/steps", json={"step": 0, "scores": [[[1, 0], [0, 1]]]})
    assert step.status_code == 200
    assert (await client.get("/metrics")).status_code == 200


def test_kept_steps_are_bounded_by_prompts_whatever_the_window():
    config = spard.SpardConfig(replay_window=10_000, replay_max_prompts=10_000)
    state = spard.init(["a", "b"], config)
    rng = np.random.default_rng(0)
    sizes = []
    for t in range(30):
        _, state = spard.step(state, rng.random((4096, 2, 2)), step=t)
        sizes.append(len(state.to_json()))
    assert [entry.step for entry in state.recent] == [28, 29]  # 2 x 4096 prompts fit
    assert max(sizes) < 1.05 * min(sizes[2:])  # no growth past the bound
    with pytest.raises(spard.StepOrderError):
        spard.step(state, rng.random((4096, 2, 2)), step=27)
    # One step larger than the bound is still kept: the last step always replays.
    _, state = spard.step(state, rng.random((20_000, 2, 2)), step=30)
    assert [entry.step for entry in state.recent] == [30]


async def test_a_large_run_exports_and_imports_again(client):
    body = {"run_id": "big", "objectives": ["a", "b"], "config": {"replay_window": 10_000}}
    assert (await client.post("/v1/runs", json=body)).status_code == 201
    rng = np.random.default_rng(1)
    headers = {"content-type": "application/octet-stream"}

    for t in range(20):
        content = encode_step(rng.random((4096, 2, 2)), t, return_advantages=False)
        assert (
            await client.post("/v1/runs/big/steps", content=content, headers=headers)
        ).status_code == 200
    exported = await client.get("/v1/runs/big/state")
    assert len(exported.content) < 4 * 2**20
    assert len(exported.json()["recent"]) == 16  # 16 x 4096 prompts = replay_max_prompts
    answer = await client.put(
        "/v1/runs/big/state", content=exported.content, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 200, answer.text
