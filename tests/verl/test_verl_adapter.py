"""The verl adapter with real verl 0.9 code on CPU: DataProto, tensors, the registered estimator,
verl's compute_advantage (legacy and v1 paths) and a real SPARD service."""

from __future__ import annotations

import math

import numpy as np
import pytest

verl = pytest.importorskip("verl", reason="run in .venv-verl (make test does)")
import torch  # noqa: E402
from verl import DataProto  # noqa: E402
from verl.trainer.ppo import core_algos, ray_trainer  # noqa: E402
from verl.trainer.ppo.v1 import utils as v1_utils  # noqa: E402
from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY  # noqa: E402

import spard  # noqa: E402
import spard.trainer_adapters.verl as spard_verl  # noqa: E402
from spard.client import SpardClient  # noqa: E402
from tests.servers import ServiceProcess  # noqa: E402

OBJECTIVES = ["correctness", "format", "length"]
N_PROMPTS, N_ROLLOUTS, LENGTH = 4, 4, 6


def scores(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = np.stack(
        [
            (rng.random((N_PROMPTS, N_ROLLOUTS)) < 0.4).astype(float),
            (rng.random((N_PROMPTS, N_ROLLOUTS)) < 0.7).astype(float),
            rng.random((N_PROMPTS, N_ROLLOUTS)),
        ],
        axis=-1,
    )
    values[0, :, 0] = np.nan  # a prompt source with no correctness label
    return values


def rows_of(values: np.ndarray, seed: int):
    """The (N, G, K) scores as verl rows: shuffled, uid per prompt, per-objective columns."""
    order = np.random.default_rng(seed).permutation(N_PROMPTS * N_ROLLOUTS)
    prompt = np.repeat(np.arange(N_PROMPTS), N_ROLLOUTS)[order]
    rollout = np.tile(np.arange(N_ROLLOUTS), N_PROMPTS)[order]
    uids = np.array([f"uid-{p}" for p in prompt], dtype=object)
    lengths = torch.tensor(np.random.default_rng(seed).integers(1, LENGTH + 1, len(order)))
    mask = (torch.arange(LENGTH)[None, :] < lengths[:, None]).float()
    columns = {}
    for k, name in enumerate(OBJECTIVES):
        column = values[prompt, rollout, k]
        columns[name] = np.array([None if math.isnan(v) else v for v in column], dtype=object)
    token_rewards = torch.zeros(len(order), LENGTH)
    token_rewards[torch.arange(len(order)), lengths - 1] = torch.tensor(
        np.nanmean(values[prompt, rollout], axis=1), dtype=torch.float32
    )
    return prompt, rollout, uids, mask, columns, token_rewards


def expected_advantages(seeds, prompt, rollout, mask):
    state = spard.init(OBJECTIVES, spard.SpardConfig(warmup=1))
    for t, seed in enumerate(seeds):
        result, state = spard.step(state, scores(seed), step=t, return_advantages=True)
    per_row = torch.tensor(result.advantages[prompt, rollout], dtype=torch.float32)
    return per_row[:, None] * mask


@pytest.fixture
def local_run():
    session = spard_verl.configure(SpardClient.local(), objectives=OBJECTIVES, config={"warmup": 1})
    yield session
    spard_verl._session = None


def test_objective_reward_returns_score_and_each_objective():
    compute_score = spard_verl.objective_reward(
        {
            "correctness": lambda solution_str, ground_truth, **_: float(
                solution_str == ground_truth
            ),
            "format": lambda solution_str, **_: None if not solution_str else 1.0,
        },
        score_weights={"correctness": 3.0, "format": 1.0},
    )
    assert compute_score("gsm8k", "42", "42") == {"score": 1.0, "correctness": 1.0, "format": 1.0}
    wrong = compute_score("gsm8k", "41", "42")
    assert wrong["score"] == pytest.approx(0.25)
    empty = compute_score("gsm8k", "", "42")
    assert math.isnan(empty["format"])
    assert empty["score"] == 0.0


def test_group_rows_matches_a_loop():
    uids = np.array(["b", "a", "b", "c", "a", "b", "c", "a"], dtype=object)
    groups, slots = spard_verl.group_rows(uids)
    seen: dict[str, int] = {}
    counts: dict[str, int] = {}
    for i, uid in enumerate(uids):
        seen.setdefault(uid, len(seen))
        assert groups[i] == seen[uid]
        assert slots[i] == counts.get(uid, 0)
        counts[uid] = counts.get(uid, 0) + 1


def test_registered_estimator_returns_spard_advantages(local_run):
    estimator = core_algos.get_adv_estimator_fn("spard")
    assert estimator is spard_verl.compute_spard_advantage
    for t, seed in enumerate((1, 2, 3)):
        prompt, rollout, uids, mask, columns, token_rewards = rows_of(scores(seed), seed)
        advantages, returns = estimator(
            token_level_rewards=token_rewards,
            response_mask=mask,
            index=uids,
            non_tensor_batch=columns,
        )
        expected = expected_advantages((1, 2, 3)[: t + 1], prompt, rollout, mask)
        torch.testing.assert_close(advantages, expected)
        torch.testing.assert_close(returns, advantages)
        assert ((advantages == 0) | (mask == 1)).all()
    assert local_run.client.get_run(local_run.run_id).steps_applied == 3


def test_legacy_compute_advantage_hands_the_objectives_to_spard(local_run):
    assert ray_trainer.compute_advantage is spard_verl.compute_advantage
    prompt, rollout, uids, mask, columns, token_rewards = rows_of(scores(5), 5)
    data = DataProto.from_dict(
        tensors={"token_level_rewards": token_rewards, "response_mask": mask},
        non_tensors={"uid": uids, **columns},
    )
    out = ray_trainer.compute_advantage(data, adv_estimator="spard", config=None)
    torch.testing.assert_close(
        out.batch["advantages"], expected_advantages((5,), prompt, rollout, mask)
    )

    # Other estimators still run verl's own code.
    grpo = DataProto.from_dict(
        tensors={"token_level_rewards": token_rewards, "response_mask": mask},
        non_tensors={"uid": uids},
    )
    grpo = ray_trainer.compute_advantage(grpo, adv_estimator=core_algos.AdvantageEstimator.GRPO)
    reference, _ = core_algos.compute_grpo_outcome_advantage(token_rewards, mask, uids)
    torch.testing.assert_close(grpo.batch["advantages"], reference)


def test_v1_advantage_path_reaches_spard_with_reward_extra_info(local_run):
    prompt, rollout, uids, mask, columns, token_rewards = rows_of(scores(7), 7)
    data = DataProto.from_dict(
        tensors={"token_level_rewards": token_rewards, "response_mask": mask},
        non_tensors={"uid": uids},
    )
    # What the spard v1 trainer fetches from the TransferQueue: per-row extra_fields.
    extra_fields = [
        {"reward_extra_info": {name: columns[name][i] for name in OBJECTIVES}}
        for i in range(len(uids))
    ]
    spard_verl._pending_columns = spard_verl.reward_extra_columns(extra_fields, OBJECTIVES)
    try:
        out = v1_utils.compute_advantage_for_multi_trajectories(
            data, batch_keys=[f"{u}_0_0" for u in uids], adv_estimator="spard"
        )
    finally:
        spard_verl._pending_columns = None
    torch.testing.assert_close(
        out.batch["advantages"], expected_advantages((7,), prompt, rollout, mask)
    )
    assert TRAINER_REGISTRY["spard_sync"].__mro__[1] is TRAINER_REGISTRY["sync"]


def test_missing_objective_columns_fail_with_the_fix(local_run):
    _, _, uids, mask, _, token_rewards = rows_of(scores(1), 1)
    with pytest.raises(ValueError, match=r"no reward_extra_info for \['correctness'"):
        spard_verl.compute_spard_advantage(
            token_rewards, mask, uids, non_tensor_batch={"uid": uids}
        )


def test_estimator_against_a_real_service_steps_once_per_call():
    server = ServiceProcess(env={"SPARD_AUTH_DISABLED": "true"}).start()
    try:
        client = SpardClient(server.url)
        session = spard_verl.configure(client, objectives=OBJECTIVES, run_id="verl-run")
        for seed in (1, 2):
            _, _, uids, mask, columns, token_rewards = rows_of(scores(seed), seed)
            spard_verl.compute_spard_advantage(token_rewards, mask, uids, non_tensor_batch=columns)
        history = client.history("verl-run")
        assert [entry["step"] for entry in history] == [0, 1]
        # A new session on the same run resumes after the last applied step.
        assert spard_verl.configure(client, run_id="verl-run").next_step == 2
        assert session.objectives == OBJECTIVES
    finally:
        spard_verl._session = None
        server.stop()
