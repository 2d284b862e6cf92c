"""The suite's baselines are TRL's own arithmetic: TRL 1.16's advantage code, cut from its
``GRPOTrainer`` source and run as it is, against the engine's ``static`` (with
``missing_scores="zero"``) and ``gdpo`` on batches with missing scores."""

from __future__ import annotations

import inspect
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")
from trl import GRPOTrainer  # noqa: E402
from trl.trainer.utils import nanstd  # noqa: E402

import spard  # noqa: E402

FIRST_LINE = "unscorable_mask = torch.isnan(rewards_per_func).all(dim=1)"
LAST_LINE = "advantages = torch.nan_to_num(advantages, nan=0.0)"


def trl_advantage_code() -> str:
    """TRL's lines from the unscorable mask to the NaN clean-up of the advantages."""
    source = textwrap.dedent(inspect.getsource(GRPOTrainer._generate_and_score_completions))
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == FIRST_LINE)
    end = next(i for i, line in enumerate(lines) if line.strip() == LAST_LINE)
    return textwrap.dedent("\n".join(lines[start : end + 1]))


def trl_advantages(scores: np.ndarray, aggregation: str, scale_rewards: str) -> np.ndarray:
    """(N, G) advantages as TRL computes them for (N, G, K) scores, weights all 1."""
    n, g, k = scores.shape
    trainer = SimpleNamespace(
        multi_objective_aggregation=aggregation,
        scale_rewards=scale_rewards,
        reward_weights=torch.ones(k, dtype=torch.float64),
        reward_funcs=[None] * k,
    )
    scope = {
        "self": trainer,
        "torch": torch,
        "nanstd": nanstd,
        "num_generations": g,
        "device": "cpu",
        "rewards_per_func": torch.tensor(scores.reshape(n * g, k), dtype=torch.float64),
    }
    exec(trl_advantage_code(), scope)
    return scope["advantages"].numpy().reshape(n, g)


def batch_with_missing(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scores = np.stack(
        [
            (rng.random((6, 8)) < 0.4).astype(float),  # binary
            np.clip(np.rint(rng.normal(3, 1.5, (6, 8))), 0, 5),  # a 0-5 judge
            rng.normal(0, 1, (6, 8)),  # continuous
        ],
        axis=-1,
    )
    scores[rng.random(scores.shape) < 0.25] = np.nan  # judges that failed on single rollouts
    scores[0, :, 2] = np.nan  # a group never scored on an objective
    scores[1, 3, :] = np.nan  # a rollout scored on nothing
    scores[2, :, 0] = 1.0  # a group where an objective does not vary
    return scores


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("scale_rewards", ["group", "batch", "none"])
def test_static_is_trls_sum_then_normalize(seed, scale_rewards):
    scores = batch_with_missing(seed)
    config = spard.SpardConfig(
        strategy="static", missing_scores="zero", scale_rewards=scale_rewards
    )
    result, _ = spard.step(spard.init(["a", "b", "c"], config), scores, return_advantages=True)
    expected = trl_advantages(scores, "sum_then_normalize", scale_rewards)
    # The engine's weights sum to 1 (TRL's are 1 each): the same up to TRL's 1e-4 std floor,
    # and exactly a factor K apart without scaling.
    if scale_rewards == "none":
        np.testing.assert_allclose(3 * result.advantages, expected, rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_allclose(result.advantages, expected, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("seed", range(5))
def test_gdpo_is_trls_normalize_then_sum(seed):
    scores = batch_with_missing(seed)
    state = spard.init(["a", "b", "c"], spard.SpardConfig(strategy="gdpo"))
    result, _ = spard.step(state, scores, return_advantages=True)
    expected = trl_advantages(scores, "normalize_then_sum", "group")
    np.testing.assert_allclose(result.advantages, expected, rtol=1e-3, atol=1e-3)


def test_renormalised_missing_scores_differ_from_trl_where_single_rollouts_miss():
    scores = batch_with_missing(0)
    state = spard.init(["a", "b", "c"], spard.SpardConfig(strategy="static"))  # renormalise
    result, _ = spard.step(state, scores, return_advantages=True)
    expected = trl_advantages(scores, "sum_then_normalize", "group")
    differ = ~np.isclose(result.advantages, expected, atol=1e-3)
    # They differ in the groups where single rollouts miss a score, and only there.
    valid = np.isfinite(scores)
    partly_scored = (valid.any(axis=2) & ~valid.all(axis=2)).any(axis=1)
    assert differ.any(axis=1)[partly_scored].any()
    assert not differ.any(axis=1)[~partly_scored].any()
