"""The ms-swift plugin as a drop-in: with ``static`` it is ms-swift's GRPO exactly, and what
ms-swift accepts about rewards (``--reward_weights`` of 0 or below 0, a reward function named
twice, batches where every reward is None, ``--scale_rewards gdpo``) the plugin accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("swift", reason="run in .venv-swift (make test does)")
import torch
from safetensors.torch import load_file
from swift_run import swift_rlhf

from spard.client import SpardClient

pytestmark = pytest.mark.slow
TIMING = ("train_speed(s/it)", "elapsed_time", "remaining_time", "memory(GiB)", "step_time")


def _logged(out: Path) -> list[dict]:
    """Each training step's logged metrics, without the timings (they differ run to run)."""
    entries = [json.loads(line) for line in (out / "logging.jsonl").read_text().splitlines()]
    return [
        {key: value for key, value in entry.items() if key not in TIMING}
        for entry in entries
        if "loss" in entry
    ]


def _parameters(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "checkpoint-3" / "model.safetensors"))


@pytest.mark.parametrize(
    "extra",
    [("--reward_weights", "2", "0", "-0.5"), ("--scale_rewards", "gdpo")],
    ids=["zero-negative", "gdpo"],
)
def test_static_is_swifts_grpo_exactly(setup, tmp_path, monkeypatch, extra):
    folder, _ = setup
    for name in ("SPARD_URL", "SPARD_RUN_ID", "SPARD_CONFIG"):  # in-process, a fresh run
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPARD_STRATEGY", "static")
    swift_rlhf(folder, tmp_path / "plain", "--max_steps", "3", *extra, spard=False)
    swift_rlhf(folder, tmp_path / "spard", "--max_steps", "3", *extra)
    plain, ours = _logged(tmp_path / "plain"), _logged(tmp_path / "spard")
    assert len(plain) == len(ours) == 3
    for mine, theirs in zip(ours, plain, strict=True):
        assert {key: mine[key] for key in theirs} == theirs  # reward, loss, ... equal
    plain_parameters = _parameters(tmp_path / "plain")
    for name, parameter in _parameters(tmp_path / "spard").items():
        assert torch.equal(parameter, plain_parameters[name]), name


def test_zero_and_negative_weights_and_a_reward_named_twice(setup, tmp_path, monkeypatch):
    folder, server = setup
    monkeypatch.setenv("SPARD_URL", server.url)
    monkeypatch.setenv("SPARD_RUN_ID", "swift-weights")
    monkeypatch.setenv("SPARD_CONFIG", json.dumps({"warmup": 1}))
    swift_rlhf(
        folder,
        tmp_path / "out",
        "--max_steps",
        "3",
        "--reward_weights",
        "1",
        "0",
        "-1",
        "1",
        rewards=("has_vowel", "digits", "length_score", "has_vowel"),
    )
    client = SpardClient(server.url)
    assert client.get_run("swift-weights").objectives == [
        "HasVowel",
        "Digits",
        "LengthScore",
        "HasVowel_2",
    ]
    history = client.history("swift-weights")
    assert len(history) == 3
    assert all(entry["reward_weights"]["Digits"] == 0.0 for entry in history)
    # The penalty's scores reach the engine negated (the lengths are >= 0).
    assert all(entry["stats"]["LengthScore"]["level"] <= 0 for entry in history)


def test_a_batch_without_any_reward_applies_no_step(setup, tmp_path, monkeypatch):
    folder, server = setup
    monkeypatch.setenv("SPARD_URL", server.url)
    monkeypatch.setenv("SPARD_RUN_ID", "swift-none")
    swift_rlhf(
        folder,
        tmp_path / "out",
        "--max_steps",
        "3",
        "--dynamic_sample",
        "false",
        rewards=("none_at_first",),
    )
    steps = [entry["step"] for entry in SpardClient(server.url).history("swift-none")]
    assert steps == [1, 2]
