"""SpardGRPOTrainer as a drop-in for TRL's GRPOTrainer: ``static`` is TRL's GRPO bit for bit,
and whatever TRL accepts about rewards (weights of 0 or below 0, a reward function passed
twice, batches where every reward is None, normalize_then_sum) the adapter accepts too."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest

pytest.importorskip("trl", reason="the trl extra is not installed")
import torch
from char_tokenizer import char_tokenizer
from trl import GRPOTrainer
from trl_setup import (
    REWARDS,
    grpo_config,
    has_vowel,
    length_score,
    prompts_dataset,
    record_advantages,
    tiny_model,
)

from spard.client import SpardClient
from spard.trainer_adapters._hf import distinct_names
from spard.trainer_adapters.trl import SpardGRPOTrainer

pytestmark = pytest.mark.slow


def _train(trainer_class: type, tmp_path, rewards=REWARDS, spard: dict | None = None, **config):
    """Train a fresh tiny model 3 steps; the trainer and each batch's advantages."""
    tokenizer = char_tokenizer()
    extra: dict[str, Any] = {} if spard is None else {"spard_client": SpardClient.local(), **spard}
    trainer = trainer_class(
        model=tiny_model(tokenizer),
        reward_funcs=list(rewards),
        args=grpo_config(str(tmp_path), **config),
        train_dataset=prompts_dataset(),
        processing_class=tokenizer,
        **extra,
    )
    advantages = record_advantages(trainer)
    trainer.train()
    return trainer, advantages


def _logged(trainer) -> list[dict[str, float]]:
    """What TRL logged each step, without the timing entries (they differ run to run)."""
    timing = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "step_time")
    return [
        {key: value for key, value in entry.items() if key not in timing}
        for entry in trainer.state.log_history
    ]


def _sometimes_inf(completions: list[str], **_: Any) -> list[float]:
    """An unbounded reward: +inf for completions with a digit (TRL zeroes their groups)."""
    return [math.inf if any(c.isdigit() for c in text) else 0.5 for text in completions]


@pytest.mark.parametrize(
    ("rewards", "config"),
    [
        (REWARDS, {}),
        (REWARDS, {"scale_rewards": "none"}),
        (REWARDS, {"scale_rewards": "batch", "reward_weights": [2.0, 0.5, 1.0]}),
        (REWARDS, {"scale_rewards": "group", "reward_weights": [1.5, 0.0, -0.5]}),
        (REWARDS, {"multi_objective_aggregation": "normalize_then_sum"}),
        (
            REWARDS,
            {"multi_objective_aggregation": "normalize_then_sum", "reward_weights": [3, 1, 0]},
        ),
        ([length_score], {"scale_rewards": "none"}),
        ([has_vowel, has_vowel, length_score], {"reward_weights": [1.0, 2.0, 1.0]}),
        (REWARDS, {"gradient_accumulation_steps": 2, "steps_per_generation": 1}),
        ([has_vowel, _sometimes_inf], {}),
    ],
    ids=[
        *("default", "none", "batch", "zero-negative", "nts", "nts-weights", "one", "twice"),
        *("accumulate", "inf"),
    ],
)
def test_static_is_trls_grpo_bit_for_bit(tmp_path, rewards, config):
    plain, plain_advantages = _train(GRPOTrainer, tmp_path / "plain", rewards, **config)
    spard, spard_advantages = _train(
        SpardGRPOTrainer, tmp_path / "spard", rewards, {"spard_strategy": "static"}, **config
    )
    assert len(spard_advantages) == len(plain_advantages) >= 3  # one per generation batch
    tracked = spard.spard_client.get_run(spard.spard_run_id).steps_applied
    assert tracked == len(spard_advantages)
    assert torch.equal(spard.reward_weights, plain.reward_weights)
    assert spard.multi_objective_aggregation == plain.multi_objective_aggregation
    for ours, theirs in zip(spard_advantages, plain_advantages, strict=True):
        assert torch.equal(ours, theirs)
    # What TRL logs (reward, rewards/<name>/mean, loss, ...) is equal; SPARD logs more.
    for ours, theirs in zip(_logged(spard), _logged(plain), strict=True):
        for key, value in theirs.items():
            assert ours[key] == value or (math.isnan(ours[key]) and math.isnan(value)), key
    plain_parameters = dict(plain.model.named_parameters())
    for name, parameter in spard.model.named_parameters():
        assert torch.equal(parameter, plain_parameters[name]), name


def test_a_weight_of_zero_is_tracked_and_never_trained_on(tmp_path):
    trainer, _ = _train(
        SpardGRPOTrainer,
        tmp_path,
        spard={"spard_strategy": "spard", "spard_config": {"warmup": 1}},
        reward_weights=[1.0, 0.0, 2.0],
        max_steps=4,
    )
    history = trainer.spard_client.history(trainer.spard_run_id)
    assert len(history) == 4
    assert all(entry["reward_weights"]["length_score"] == 0.0 for entry in history)
    assert trainer.reward_weights[1] == 0.0
    moved = {round(entry["reward_weights"]["has_vowel"], 6) for entry in history}
    assert len(moved) > 1  # PAWA moved the other two
    stats = trainer.spard_client.get_run(trainer.spard_run_id)
    assert stats.steps_applied == 4
    logged = {key for entry in trainer.state.log_history for key in entry}
    assert "rewards/length_score/mean" in logged
    assert "reward_weights/length_score" in logged


def test_a_negative_weight_is_a_penalty_the_curriculum_keeps_negative(tmp_path):
    client = SpardClient.local()
    trainer, _ = _train(
        SpardGRPOTrainer,
        tmp_path,
        spard={"spard_client": client, "spard_config": {"warmup": 1}},
        reward_weights=[1.0, -1.0, 1.0],
        max_steps=3,
    )
    assert trainer.reward_weights[1] < 0 < trainer.reward_weights[0]
    # Rescaled to TRL's total magnitude, so rewards keep the scale the user tuned for.
    assert torch.isclose(trainer.reward_weights.abs().sum(), torch.tensor(3.0))
    levels = [
        entry["stats"]["length_score"]["level"] for entry in client.history(trainer.spard_run_id)
    ]
    assert all(level <= 0 for level in levels)  # the engine saw the negated scores


def test_a_reward_function_passed_twice_gets_a_second_name(tmp_path):
    trainer, _ = _train(
        SpardGRPOTrainer,
        tmp_path,
        [has_vowel, length_score, has_vowel],
        spard={"spard_config": {"warmup": 1}},
        max_steps=2,
    )
    assert trainer.spard_objectives == ["has_vowel", "length_score", "has_vowel_2"]
    assert trainer.reward_func_names == ["has_vowel", "length_score", "has_vowel"]  # TRL's own


def _none_at_first(completions: list[str], **_: Any) -> list[float | None]:
    """No reward at all in the first generation batch (step 0), then some."""
    _none_at_first.calls += 1  # type: ignore[attr-defined]
    if _none_at_first.calls == 1:  # type: ignore[attr-defined]
        return [None] * len(completions)
    return [float(len(text) % 3) for text in completions]


@pytest.mark.parametrize("strategy", ["spard", "pawa", "static"])
def test_a_batch_without_any_reward_is_skipped_as_trl_skips_it(tmp_path, caplog, strategy):
    _none_at_first.calls = 0  # type: ignore[attr-defined]
    with caplog.at_level(logging.WARNING):
        trainer, advantages = _train(
            SpardGRPOTrainer,
            tmp_path,
            [_none_at_first],
            {"spard_strategy": strategy},
        )
    assert "All reward functions returned None" in caplog.text  # TRL's warning, kept
    assert torch.equal(advantages[0], torch.zeros_like(advantages[0]))
    history = trainer.spard_client.history(trainer.spard_run_id)
    assert [entry["step"] for entry in history] == [1, 2]  # step 0 had nothing to apply


def test_normalize_then_sum_runs_the_strategys_decoupled_variant(tmp_path):
    tokenizer = char_tokenizer()

    def make(strategy: str, spard_config: dict[str, Any]) -> SpardGRPOTrainer:
        return SpardGRPOTrainer(
            model=tiny_model(tokenizer),
            reward_funcs=REWARDS,
            args=grpo_config(str(tmp_path), multi_objective_aggregation="normalize_then_sum"),
            train_dataset=prompts_dataset(),
            processing_class=tokenizer,
            spard_client=SpardClient.local(),
            spard_strategy=strategy,
            spard_config=spard_config,
        )

    assert make("pawa", {}).spard.advantage_rule == "decoupled"
    assert make("static", {}).multi_objective_aggregation == "normalize_then_sum"
    assert make("spard", {}).spard.advantage_rule == "decoupled_floor"
    assert make("spard_gdpo", {}).spard.advantage_rule == "decoupled"
    assert make("gd2po_snr", {}).spard.advantage_rule == "gd2po_snr"  # decoupled already
    with pytest.raises(ValueError, match="'drw' has no decoupled variant"):
        make("drw", {})
    with pytest.raises(ValueError, match="advantage_mode='sum', a summed rule"):
        make("spard", {"preset": "paper"})  # the paper's preset sums, explicitly
    for summed in ("sum", "scaled"):  # asked for explicitly: refused, never silently changed
        with pytest.raises(ValueError, match=f"advantage_mode='{summed}', a summed rule"):
            make("spard", {"advantage_mode": summed})


def test_objective_names_are_the_engines_and_distinct():
    names = ["", "Cafe\u0301", "Caf\u00e9", "a", "a_2", "a"]
    assert distinct_names(names) == ["reward_0", "Caf\u00e9", "Caf\u00e9_2", "a", "a_2", "a_3"]


def test_a_reused_run_of_other_objectives_is_refused(tmp_path):
    client = SpardClient.local()
    client.create_run(["other", "names", "here"], run_id="taken")
    with pytest.raises(ValueError, match="has objectives"):
        _train(SpardGRPOTrainer, tmp_path, spard={"spard_client": client, "spard_run_id": "taken"})
