"""The OpenRLHF reward function, called exactly as OpenRLHF's executor calls it: loaded from a
.py file with importlib, one sample per call, from many threads. (OpenRLHF itself pins
flash-attn and cannot be installed on this CPU machine.)"""

from __future__ import annotations

import importlib.util
import logging
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import spard
from spard.client import SpardClient
from spard.trainer_adapters.openrlhf import SpardAdvantagesMixin, combine, prompt_group_id
from tests.servers import ServiceProcess, free_port

OBJECTIVES = ["correctness", "format"]
REWARD_FILE = """
from spard.trainer_adapters.openrlhf import make_reward_func

def correctness(query, prompt, label):
    return float(query.endswith(label))

def format_score(query, prompt, label):
    response = query[len(prompt):]
    return None if not response else float(response.startswith(" "))

reward_func = make_reward_func(
    {{"correctness": correctness, "format": format_score}},
    url={url!r},
    run_id={run_id!r},
    weights_max_age_s=0,
)
"""


@pytest.fixture(scope="module")
def service():
    server = ServiceProcess(env={"SPARD_AUTH_DISABLED": "true"}).start()
    yield server
    server.stop()


def load_reward_func(path):
    """What OpenRLHF's RemoteRewardModel does with a .py remote_url."""
    spec = importlib.util.spec_from_file_location("reward_func", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reward_func


def samples(step: int, prompts: int = 12, rollouts: int = 4):
    rng = np.random.default_rng(step)
    found = []
    for n in range(prompts):
        prompt, label = f"question {n} of step {step}:", str(n % 7)
        for _ in range(rollouts):
            answer = label if rng.random() < 0.2 + 0.05 * n else "x"
            spacer = " " if rng.random() < 0.6 else ""
            found.append((prompt + spacer + answer, prompt, label))
    return found


def engine_scores(batch, prompts: int = 12, rollouts: int = 4) -> np.ndarray:
    scores = np.full((prompts, rollouts, 2), np.nan)
    for i, (query, prompt, label) in enumerate(batch):
        response = query[len(prompt) :]
        scores[i // rollouts, i % rollouts] = [float(query.endswith(label)), response[0] == " "]
    return scores


def test_reward_func_in_threads_streams_the_step(service, tmp_path):
    client = SpardClient(service.url)
    run = client.create_run(OBJECTIVES, config={"warmup": 1}, streaming={"group_size": 4})
    path = tmp_path / "reward_func.py"
    path.write_text(textwrap.dedent(REWARD_FILE.format(url=service.url, run_id=run.run_id)))
    reward_func = load_reward_func(str(path))
    state = spard.init(OBJECTIVES, spard.SpardConfig(warmup=1))
    for step in range(3):
        batch = samples(step)
        with ThreadPoolExecutor(max_workers=32) as pool:
            answers = list(pool.map(lambda s: reward_func([s[0]], [s[1]], [s[2]]), batch))
        weights = client.get_run(run.run_id).reward_weights
        for (query, _prompt, label), answer in zip(batch, answers, strict=True):
            assert set(answer) == {"rewards", "scores", "extra_logs"}
            assert answer["rewards"].shape == (1,)
            correct = float(query.endswith(label))
            assert answer["extra_logs"]["correctness"].item() == correct
            expected = combine(
                {"correctness": correct, "format": answer["extra_logs"]["format"].item()},
                dict(zip(OBJECTIVES, weights, strict=True)),
            )
            assert answer["rewards"].item() == pytest.approx(expected, rel=1e-6)
        outcome = client.commit(run.run_id, step)
        assert outcome.observations == 48
        expected_result, state = spard.step(state, engine_scores(batch), step=step)
        # Groups are ordered by id (a digest of prompt and label), rollouts by arrival.
        order = sorted(range(12), key=lambda n: prompt_group_id(batch[4 * n][1], batch[4 * n][2]))
        np.testing.assert_allclose(outcome.sample_weights, expected_result.sample_weights[order])
        np.testing.assert_allclose(outcome.reward_weights, expected_result.reward_weights)
    assert not np.allclose(client.get_run(run.run_id).reward_weights, [0.5, 0.5])


def test_reward_func_survives_a_down_service(tmp_path, caplog):
    path = tmp_path / "reward_func.py"
    url = f"http://127.0.0.1:{free_port()}"
    path.write_text(textwrap.dedent(REWARD_FILE.format(url=url, run_id="r")))
    reward_func = load_reward_func(str(path))
    with caplog.at_level(logging.WARNING, logger="spard.openrlhf"):
        answer = reward_func(["q: 1"], ["q:"], ["1"])
    assert answer["rewards"].item() == pytest.approx(1.0)  # uniform weights, both scores 1
    assert "SPARD unavailable" in caplog.text


class _Experience:
    def __init__(self, prompts, labels, advantages):
        self.prompts, self.labels, self.advantages = prompts, labels, advantages


class _GroupNormMaker:
    """Stand-in for OpenRLHF's experience maker (not installable here): group_norm advantages
    broadcast over each response's tokens, as OpenRLHF computes them."""

    def compute_advantages_and_returns(self, experiences, **kwargs):
        for experience in experiences:
            rewards = experience.advantages[:, 0].reshape(-1, 4)
            normed = (rewards - rewards.mean(-1, keepdim=True)) / (
                rewards.std(-1, keepdim=True) + 1e-9
            )
            experience.advantages = normed.reshape(-1, 1).expand(-1, 5).clone()
        return experiences


def test_advantages_mixin_scales_by_sample_weights():
    client = SpardClient.local()
    run = client.create_run(OBJECTIVES, config={"warmup": 1}, streaming={"group_size": 4})
    batch = samples(0)
    scores = engine_scores(batch)
    for i, (_query, prompt, label) in enumerate(batch):
        values = dict(zip(OBJECTIVES, scores[i // 4, i % 4].tolist(), strict=True))
        client.observe(run.run_id, prompt_group_id(prompt, label), values)

    class Maker(SpardAdvantagesMixin, _GroupNormMaker):
        spard_client = client
        spard_run_id = run.run_id

    rewards = torch.tensor(scores.mean(-1).reshape(-1, 1)).float().expand(-1, 5)
    experiences = [
        _Experience([s[1] for s in batch[:24]], [s[2] for s in batch[:24]], rewards[:24].clone()),
        _Experience([s[1] for s in batch[24:]], [s[2] for s in batch[24:]], rewards[24:].clone()),
    ]
    plain = _GroupNormMaker().compute_advantages_and_returns(
        [_Experience(e.prompts, e.labels, e.advantages.clone()) for e in experiences]
    )
    scaled = Maker().compute_advantages_and_returns(experiences)
    result, _ = spard.step(spard.init(OBJECTIVES, spard.SpardConfig(warmup=1)), scores, step=0)
    per_sample = torch.tensor(np.repeat(result.sample_weights, 4)).float()
    expected = torch.cat([e.advantages for e in plain]) * per_sample[:, None]
    torch.testing.assert_close(torch.cat([e.advantages for e in scaled]), expected)
    assert client.get_run(run.run_id).last_step == 0
