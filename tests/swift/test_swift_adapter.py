"""The ms-swift adapter with ms-swift's real GRPO trainer on CPU: ``swift rlhf``'s own entry
point, a tiny random Qwen2 built from a config, a locally built tokenizer, dynamic sampling on,
SPARD turned on by the plugin file alone, against a real ``spard serve``."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("swift", reason="run in .venv-swift (make test does)")
import torch
from swift.rlhf_trainers import GRPOTrainer
from swift_run import G, swift_rlhf

import spard
from spard.client import SpardClient
from spard.trainer_adapters.swift import STATE_FILE, SpardSwiftGRPOTrainer

pytestmark = pytest.mark.slow


def test_swift_grpo_uses_the_engines_weights_and_scales_advantages(setup, tmp_path, monkeypatch):
    folder, server = setup
    monkeypatch.setenv("SPARD_URL", server.url)
    monkeypatch.setenv("SPARD_RUN_ID", "swift-run")
    # PAWA and RADR over ms-swift's own summed advantages: its advantages times data weights.
    config = {"warmup": 1, "advantage_mode": "sum", "data_rule": "radr_mass"}
    monkeypatch.setenv("SPARD_CONFIG", json.dumps(config))
    calls = []
    base = GRPOTrainer._compute_advantages

    def record_base(self, samples, rewards_per_func, batch_encoded_inputs):
        advantages = base(self, samples, rewards_per_func, batch_encoded_inputs)
        if self.model.training:
            calls.append(
                {
                    "rewards": rewards_per_func.detach().clone(),
                    "weights": self.reward_weights.detach().clone(),
                    "base": advantages.detach().clone(),
                }
            )
        return advantages

    adapted = SpardSwiftGRPOTrainer._compute_advantages

    def record_final(self, samples, rewards_per_func, batch_encoded_inputs):
        advantages = adapted(self, samples, rewards_per_func, batch_encoded_inputs)
        if self.model.training:
            calls[-1]["final"] = advantages.detach().clone()
        return advantages

    monkeypatch.setattr(GRPOTrainer, "_compute_advantages", record_base)
    monkeypatch.setattr(SpardSwiftGRPOTrainer, "_compute_advantages", record_final)
    swift_rlhf(folder, tmp_path / "out", "--max_steps", "3")

    assert len(calls) == 3
    objectives = ["HasVowel", "LengthScore", "Digits"]
    state = spard.init(objectives, spard.SpardConfig(**config))
    for step, call in enumerate(calls):
        grouped = call["rewards"].double().numpy().reshape(-1, G, len(objectives))
        assert np.isnan(grouped[..., 2]).any() or step > 0  # None from the reward: missing
        expected, state = spard.step(state, grouped, step)
        # The weights ms-swift summed with are the engine's, and each advantage is scaled by
        # its prompt's data weight.
        # (rescaled to the total of ms-swift's weights, three 1s)
        np.testing.assert_allclose(
            call["weights"].double().numpy(), 3 * expected.reward_weights, atol=1e-6
        )
        scale = torch.tensor(np.repeat(expected.sample_weights, G), dtype=call["base"].dtype)
        torch.testing.assert_close(call["final"], call["base"] * scale)
    client = SpardClient(server.url)
    assert [entry["step"] for entry in client.history("swift-run")] == [0, 1, 2]
    # ms-swift's own log carries the weights; the checkpoints carry the curriculum.
    logged = [
        json.loads(line) for line in (tmp_path / "out" / "logging.jsonl").read_text().splitlines()
    ]
    assert any("reward_weights/HasVowel" in entry for entry in logged)
    saved = json.loads((tmp_path / "out" / "checkpoint-2" / STATE_FILE).read_text())
    assert saved["run_id"] == "swift-run"
    assert saved["state"]["last_step"] == 1


def test_swift_grpo_trains_on_the_engines_advantages_under_the_default(
    setup, tmp_path, monkeypatch
):
    # The default's rule (decoupled_floor) is not one of ms-swift's: the engine's advantages
    # replace ms-swift's, data weights included.
    folder, server = setup
    monkeypatch.setenv("SPARD_URL", server.url)
    monkeypatch.setenv("SPARD_RUN_ID", "swift-default")
    monkeypatch.setenv("SPARD_CONFIG", json.dumps({"warmup": 1}))
    calls = []
    adapted = SpardSwiftGRPOTrainer._compute_advantages

    def record(self, samples, rewards_per_func, batch_encoded_inputs):
        advantages = adapted(self, samples, rewards_per_func, batch_encoded_inputs)
        if self.model.training:
            calls.append((rewards_per_func.detach().clone(), advantages.detach().clone()))
        return advantages

    monkeypatch.setattr(SpardSwiftGRPOTrainer, "_compute_advantages", record)
    swift_rlhf(folder, tmp_path / "out", "--max_steps", "2")
    assert len(calls) == 2
    state = spard.init(["HasVowel", "LengthScore", "Digits"], spard.SpardConfig(warmup=1))
    for step, (rewards, final) in enumerate(calls):
        grouped = rewards.double().numpy().reshape(-1, G, 3)
        expected, state = spard.step(state, grouped, step, return_advantages=True)
        np.testing.assert_allclose(
            final.double().numpy(), expected.advantages.reshape(-1), atol=1e-6
        )


def test_swift_resume_brings_the_curriculum_back(setup, tmp_path, monkeypatch):
    folder, server = setup
    monkeypatch.setenv("SPARD_URL", server.url)
    monkeypatch.setenv("SPARD_RUN_ID", "swift-resumed")
    swift_rlhf(folder, tmp_path / "out", "--max_steps", "2")
    client = SpardClient(server.url)
    checkpoint = tmp_path / "out" / "checkpoint-2"
    saved = json.loads((checkpoint / STATE_FILE).read_text())["state"]
    client.delete_run("swift-resumed")  # the service forgot it: only the checkpoint remembers
    swift_rlhf(
        folder, tmp_path / "out", "--max_steps", "3", "--resume_from_checkpoint", str(checkpoint)
    )
    history = client.history("swift-resumed")
    assert [entry["step"] for entry in history] == [2]
    state = client.export_state("swift-resumed")
    assert state["last_step"] == 2
    assert state["objectives"] == saved["objectives"]
    assert state["steps_applied"] == saved["steps_applied"] + 1
