"""The reward-manager path (PAWA only, verl's own trainer): verl's real RewardLoopWorker loads
SpardRewardManager from its file as a user would configure it, scores real DataProto samples
concurrently with the example reward function, against a real SPARD service."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("verl", reason="run in .venv-verl (make test does)")
import numpy as np
import torch
from omegaconf import OmegaConf
from verl import DataProto
from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

from spard.client import SpardClient
from spard.trainer_adapters import verl_reward
from spard.trainer_adapters._rewards import combine
from tests.servers import ServiceProcess

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from char_tokenizer import char_tokenizer  # noqa: E402

OBJECTIVES = ["correctness", "format", "brevity"]
PROMPTS, N = 3, 4


@pytest.fixture(scope="module")
def service():
    server = ServiceProcess(env={"SPARD_AUTH_DISABLED": "true"}).start()
    yield server
    server.stop()


def worker(tmp_path: Path) -> RewardLoopWorker:
    tokenizer = char_tokenizer()
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    config = OmegaConf.create(
        {
            "actor_rollout_ref": {
                "model": {"path": str(tmp_path / "tokenizer"), "tokenizer_path": None},
                "rollout": {"n": N},
            },
            "data": {"train_batch_size": PROMPTS},
            "trainer": {"experiment_name": "spard-test"},
            "reward": {
                "reward_manager": {
                    "source": "importlib",
                    "name": "SpardRewardManager",
                    "module": {"path": str(Path(verl_reward.__file__)), "name": None},
                },
                "custom_reward_function": {
                    "path": str(ROOT / "examples" / "verl_reward.py"),
                    "name": "compute_score",
                    "reward_kwargs": {},
                },
                "reward_model": {"enable": False},
            },
        }
    )
    return RewardLoopWorker(config)


def batch(step: int) -> DataProto:
    """PROMPTS x N samples as verl's rollout leaves them: token tensors, uid per prompt."""
    tokenizer = char_tokenizer()
    rng = np.random.default_rng(step)
    texts = [f"{rng.integers(0, 9)} ####" if rng.random() < 0.5 else "abc" for _ in range(12)]
    width = 8
    responses = torch.full((len(texts), width), tokenizer.pad_token_id)
    mask = torch.zeros((len(texts), 2 + width), dtype=torch.long)
    mask[:, :2] = 1
    for row, text in enumerate(texts):
        ids = tokenizer(text)["input_ids"][:width]
        responses[row, : len(ids)] = torch.tensor(ids)
        mask[row, 2 : 2 + len(ids)] = 1
    truth = [None if p == 2 else str(p) for p in range(PROMPTS) for _ in range(N)]
    return DataProto.from_dict(
        tensors={
            "prompts": torch.zeros((len(texts), 2), dtype=torch.long),
            "responses": responses,
            "attention_mask": mask,
        },
        non_tensors={
            "data_source": np.array(["toy"] * len(texts), dtype=object),
            "reward_model": np.array([{"ground_truth": t} for t in truth], dtype=object),
            "uid": np.array([f"s{step}-p{i // N}" for i in range(len(texts))], dtype=object),
            "extra_info": np.array([{} for _ in texts], dtype=object),
        },
    )


def test_reward_loop_streams_scores_and_returns_pawa_weighted_rewards(
    tmp_path, service, monkeypatch
):
    monkeypatch.setenv("SPARD_URL", service.url)
    monkeypatch.setenv("SPARD_RUN_ID", "verl-reward-loop")
    monkeypatch.setenv("SPARD_OBJECTIVES", ",".join(OBJECTIVES))
    monkeypatch.setenv("SPARD_CONFIG", json.dumps({"warmup": 1}))
    client = SpardClient(service.url)
    loop_worker = worker(tmp_path)
    for step in range(3):
        weights = client.weights("verl-reward-loop", max_age_s=0).weights_by_objective()
        # On the worker's own event loop, as its Ray actor runs it.
        outputs = loop_worker.loop.run_until_complete(loop_worker.compute_score_batch(batch(step)))
        assert len(outputs) == PROMPTS * N
        for output in outputs:
            info = output["reward_extra_info"]
            row = {name: None if math.isnan(info[name]) else info[name] for name in OBJECTIVES}
            # The reward is the objectives weighted by the run's weights of this batch.
            assert output["reward_score"] == pytest.approx(combine(row, weights))
            assert [info[f"spard_weight/{name}"] for name in OBJECTIVES] == pytest.approx(
                [weights[name] for name in OBJECTIVES]
            )
        # The batch's groups were complete: the service closed the step by itself.
        assert client.get_run("verl-reward-loop").steps_applied == step + 1
    history = client.history("verl-reward-loop")
    assert [entry["step"] for entry in history] == [0, 1, 2]
    assert history[-1]["reward_weights"] != pytest.approx(dict.fromkeys(OBJECTIVES, 1 / 3))
    # A prompt without reference answers: correctness missing, not zero.
    assert math.isnan(outputs[-1]["reward_extra_info"]["correctness"])


def test_the_manager_needs_a_shared_run(tmp_path, monkeypatch):
    monkeypatch.delenv("SPARD_URL", raising=False)
    with pytest.raises(ValueError, match="SPARD_URL"):
        worker(tmp_path)
