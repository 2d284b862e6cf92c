"""verl's default (v1) trainer path for real: Ray in local mode, a real TransferQueue controller
and storage units, rollouts put into the queue as verl's agent loop puts them, and the
``spard_sync`` trainer's own ``_compute_advantage`` reading them back and writing SPARD's
advantages into the queue."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("verl", reason="run in .venv-verl (make test does)")
tq = pytest.importorskip("transfer_queue")
import ray  # noqa: E402
import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY  # noqa: E402
from verl.utils.tensordict_utils import list_of_dict_to_tensordict  # noqa: E402

import spard  # noqa: E402
import spard.trainer_adapters.verl as spard_verl  # noqa: E402
from spard.client import SpardClient  # noqa: E402

pytestmark = pytest.mark.slow
OBJECTIVES = ["correctness", "format", "length"]
PROMPTS, N = 3, 4


@pytest.fixture(scope="module")
def queue():
    # Logical CPUs for the queue's controller and storage actors (they each ask for one).
    ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
    tq.init()
    yield
    tq.close()
    ray.shutdown()


def rollouts(seed: int) -> tuple[list[str], list[dict], np.ndarray]:
    """PROMPTS x N rollouts as verl's agent loop puts them into the queue (one dict each,
    reward_extra_info in extra_fields), and their (N, G, K) scores."""
    rng = np.random.default_rng(seed)
    scores = rng.random((PROMPTS, N, len(OBJECTIVES))).round(2)
    scores[0, :, 0] = np.nan  # a prompt source without a correctness label
    keys, fields = [], []
    for p in range(PROMPTS):
        for g in range(N):
            length = int(rng.integers(2, 6))
            rm_scores = torch.zeros(length)
            rm_scores[-1] = float(np.nanmean(scores[p, g]))
            info = {
                name: None if math.isnan(scores[p, g, k]) else float(scores[p, g, k])
                for k, name in enumerate(OBJECTIVES)
            }
            keys.append(f"s{seed}-p{p}_{g}_0")
            fields.append(
                {
                    "uid": f"s{seed}-p{p}",
                    "response_mask": torch.ones(length, dtype=torch.int64),
                    "rm_scores": rm_scores,
                    "extra_fields": {"reward_extra_info": info},
                }
            )
    return keys, fields, scores


def test_spard_sync_trainer_computes_advantages_through_the_transfer_queue(queue):
    spard_verl.install()
    spard_verl.configure(SpardClient.local(), objectives=OBJECTIVES, config={"warmup": 1})
    trainer = object.__new__(TRAINER_REGISTRY["spard_sync"])  # only its config is read here
    trainer.config = OmegaConf.create(
        {
            "algorithm": {
                "adv_estimator": "spard",
                "use_kl_in_reward": False,
                "gamma": 1.0,
                "lam": 1.0,
                "norm_adv_by_std_in_grpo": True,
            },
            "actor_rollout_ref": {"rollout": {"n": N}},
        }
    )
    state = spard.init(OBJECTIVES, spard.SpardConfig(warmup=1))
    try:
        for step in range(3):
            keys, fields, scores = rollouts(step)
            tags = [{"status": "success"} for _ in keys]
            batch = tq.kv_batch_put(
                keys=keys,
                fields=list_of_dict_to_tensordict(fields),
                tags=tags,
                partition_id="train",
            )
            trainer._compute_advantage(batch, metrics={})
            written = tq.kv_batch_get(keys=keys, partition_id="train", select_fields=["advantages"])
            expected, state = spard.step(state, scores, step, return_advantages=True)
            for row, key in enumerate(keys):
                p, g = divmod(row, N)
                advantages = written["advantages"][row]
                assert advantages.shape == fields[row]["response_mask"].shape, key
                # Outcome-level: the rollout's SPARD advantage on every response token.
                torch.testing.assert_close(
                    advantages, torch.full_like(advantages, expected.advantages[p, g])
                )
    finally:
        spard_verl._session = None
