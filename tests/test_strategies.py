"""Strategies as rows of one rule table: named rows equal their rules spelled out, the
RADR mass normalisation, presets, and the same through the service."""

from __future__ import annotations

import numpy as np
import pytest
from batches import run_specs
from hypothesis import given
from hypothesis import strategies as st

import spard
from spard.strategies import PRESETS, STRATEGY_TABLE

pytestmark = pytest.mark.anyio


def run(objectives, config, batches):
    state = spard.init(objectives, config)
    results = []
    for t, scores in enumerate(batches):
        result, state = spard.step(state, scores, step=t, return_advantages=True)
        results.append(result)
    return results


def assert_same(first, second):
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.reward_weights, b.reward_weights)
        np.testing.assert_array_equal(a.sample_weights, b.sample_weights)
        np.testing.assert_array_equal(a.advantages, b.advantages)


@given(spec=run_specs(), name=st.sampled_from(spard.STRATEGIES))
def test_every_named_strategy_equals_its_rules_spelled_out(spec, name):
    rules = STRATEGY_TABLE[name]
    # "static" has every rule at its most inert: the row's rules on top of it must give the
    # named strategy's results exactly, so the engine reads rules, never names.
    spelled = spard.SpardConfig(
        strategy="static",
        reward_rule=rules.reward_weights,
        data_rule=rules.data_weights,
        advantage_mode=rules.advantages,
        warmup=2,
    )
    named = spard.SpardConfig(strategy=name, warmup=2)
    names = [f"o{k}" for k in range(len(spec.kinds))]
    batches = list(spec.batches())
    assert_same(run(names, named, batches), run(names, spelled, batches))


def test_explicit_rules_override_the_row():
    config = spard.SpardConfig(strategy="gdpo", reward_rule="pawa", data_rule="radr")
    assert (config.rules.reward_weights, config.rules.data_weights) == ("pawa", "radr")
    assert config.rules.advantages == "decoupled"
    assert spard.SpardConfig(
        strategy="spard", advantage_mode="decoupled", data_rule="radr_mass"
    ).rules == (spard.SpardConfig(strategy="spard_gdpo").rules)
    assert spard.SpardConfig(strategy="pawa", advantage_mode="decoupled_floor").rules == (
        spard.SpardConfig().rules
    )


def test_radr_mass_does_not_favour_prompts_scored_on_more_objectives():
    # Prompt 0 is scored on both objectives, prompt 1 only on the first; both disperse the
    # same relative amount on what they are scored on.
    scores = np.array(
        [
            [[0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0]],
            [[0.0, np.nan], [1.0, np.nan], [0.0, np.nan], [1.0, np.nan]],
        ]
    )
    plain = run(["a", "b"], spard.SpardConfig(strategy="radr"), [scores])[0]
    mass = run(["a", "b"], spard.SpardConfig(strategy="radr", data_rule="radr_mass"), [scores])[0]
    assert plain.sample_weights[0] > plain.sample_weights[1]
    np.testing.assert_allclose(mass.sample_weights, [1.0, 1.0])


def test_presets_are_named_overrides():
    paper = spard.SpardConfig.from_preset("paper")
    assert paper == spard.SpardConfig(**PRESETS["paper"])
    assert (paper.pawa_mode, paper.update_every) == ("gain", 4)
    assert spard.SpardConfig.from_preset("paper", warmup=8).warmup == 8
    with pytest.raises(spard.InputError, match="unknown preset 'papr'") as caught:
        spard.SpardConfig.from_preset("papr")
    assert caught.value.field == "config.preset"


async def test_service_takes_presets_and_rules(client):
    body = {"run_id": "p", "objectives": ["a", "b"], "config": {"preset": "paper", "warmup": 2}}
    created = (await client.post("/v1/runs", json=body)).json()
    assert created["config"] == spard.SpardConfig.from_preset("paper", warmup=2).model_dump()
    body = {"run_id": "r", "objectives": ["a", "b"], "strategy": "spard_gdpo"}
    body["config"] = {"data_rule": "radr_mass"}
    created = (await client.post("/v1/runs", json=body)).json()
    assert (created["config"]["strategy"], created["config"]["data_rule"]) == (
        "spard_gdpo",
        "radr_mass",
    )
    for config, field in (
        ({"preset": "nope"}, "config.preset"),
        ({"preset": 3}, "config.preset"),
        ({"data_rule": "radr_sum"}, "config.data_rule"),
        ({"reward_rule": "gdpo"}, "config.reward_rule"),
    ):
        response = await client.post(
            "/v1/runs", json={"run_id": "bad", "objectives": ["a"], "config": config}
        )
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field


def test_registries_are_read_only_and_describe_the_config_fields():
    from spard.strategies import ADVANTAGE_RULES, DATA_RULES, REWARD_RULES

    for registry in (REWARD_RULES, DATA_RULES, ADVANTAGE_RULES, STRATEGY_TABLE, PRESETS):
        with pytest.raises(TypeError):
            registry["new"] = None  # type: ignore[index]
    with pytest.raises(TypeError):
        PRESETS["paper"]["update_every"] = 1  # type: ignore[index]
    description = spard.SpardConfig.model_fields["advantage_mode"].description
    for name, entry in ADVANTAGE_RULES.items():
        assert f"{name} ({entry.description})" in description


def test_a_config_builds_its_chain_once_and_a_copy_builds_its_own():
    config = spard.SpardConfig()
    assert config.build() is config.build()
    copied = config.model_copy(update={"step_size": 0.5})
    assert copied.build().reward.step_size == 0.5
    assert config.build().reward.step_size == 0.2
    assert config == spard.SpardConfig()
