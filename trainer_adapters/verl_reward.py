"""SPARD in verl 0.9 without a custom trainer mode: a reward manager for verl's reward loop.

verl's default trainer (v1) keeps each reward's components in its TransferQueue, out of reach
of a custom advantage estimator; :mod:`spard.trainer_adapters.verl` therefore ships its own
``spard_<mode>`` trainer modes for full SPARD. This module is the other path, with verl's own
trainer and advantage estimator: :class:`SpardRewardManager`, registered with verl's reward
loop, scores each sample with the per-objective reward function
(:func:`spard.trainer_adapters.verl.objective_reward`), streams the scores to the SPARD service
as an observation (group: the sample's ``uid``) and returns as ``reward_score`` the scores
combined with the run's current PAWA weights; every objective and its weight go to
``reward_extra_info``. The service closes a step whenever a batch's groups are complete
(``commit_after_groups`` = ``data.train_batch_size``, groups of ``rollout.n``).

This gives **PAWA only**: verl's GRPO normalises each group's rewards, which cancels a
per-prompt factor, so RADR's data weights cannot act through rewards. Full SPARD (PAWA and
RADR) needs ``algorithm.adv_estimator=spard`` and a ``spard_<mode>`` trainer mode.

Turn it on with::

    reward.reward_manager.source=importlib
    reward.reward_manager.module.path=$(python -m spard.trainer_adapters.verl_reward)
    reward.reward_manager.name=SpardRewardManager
    reward.custom_reward_function.path=examples/verl_reward.py

and ``SPARD_URL``, ``SPARD_RUN_ID``, ``SPARD_OBJECTIVES`` (comma-separated; for a new run),
optionally ``SPARD_CLIENT_API_KEY``, ``SPARD_STRATEGY`` and ``SPARD_CONFIG`` (JSON) in the reward
workers' environment. A service is required: verl runs several reward workers, and they share
a run only through it.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import threading
from pathlib import Path
from typing import Any

from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase
from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER

from spard.client import RunInfo, SpardClient
from spard.trainer_adapters._rewards import ProcessClient, Row, checked_score, combine, report
from spard.trainer_adapters._settings import AdapterSettings, get_or_create_run

__all__ = ["MANAGER", "SpardRewardManager", "open_streaming_run"]
MANAGER = "spard"  # the name in verl's registry (reward.reward_manager.source=register)
_open_lock = threading.Lock()
_runs: dict[str, RunInfo] = {}  # run id -> run, per process


def open_streaming_run(client: SpardClient, config: Any) -> RunInfo:
    """The run named by ``SPARD_RUN_ID``, created if new (from ``SPARD_OBJECTIVES``,
    ``SPARD_STRATEGY``, ``SPARD_CONFIG``) with verl's group size and prompts per step."""
    settings = AdapterSettings()
    run_id = settings.run_id
    if not run_id:
        raise ValueError(
            "spard: set SPARD_RUN_ID for verl's reward workers: they must all report to one run"
        )

    def create() -> RunInfo:
        if not settings.objective_names:
            raise ValueError("spard: name the objectives of a new run in SPARD_OBJECTIVES")
        streaming = {
            "group_size": int(config.actor_rollout_ref.rollout.n),
            "commit_after_groups": int(config.data.train_batch_size),
        }
        return client.create_run(
            settings.objective_names,
            strategy=settings.strategy,
            config=settings.config,
            run_id=run_id,
            streaming=streaming,
        )

    with _open_lock:
        if run_id not in _runs:
            _runs[run_id] = get_or_create_run(client, run_id, create)
        return _runs[run_id]


def _client() -> SpardClient:
    settings = AdapterSettings()
    if not settings.url:
        raise ValueError(
            "spard: set SPARD_URL: verl's reward workers share a run only through a service"
        )
    # Weights revalidated for every sample (a 304 costs no body): a batch starts right after
    # the commit of the one before, and must see its weights.
    return settings.client(weights_max_age_s=0.0)


_clients = ProcessClient(_client)


class SpardRewardManager(RewardManagerBase):  # type: ignore[misc]
    """verl reward manager: per-objective scores in, PAWA-weighted reward out (see the module
    docstring). ``compute_score`` must return a dict with one key per objective (None or NaN
    where it does not apply), as ``objective_reward`` makes."""

    def __init__(
        self,
        config: Any,
        tokenizer: Any,
        compute_score: Any,
        reward_router_address: str | None = None,
        reward_model_tokenizer: Any = None,
    ) -> None:
        super().__init__(config, tokenizer, compute_score)
        if compute_score is None:
            raise ValueError(
                "spard: set reward.custom_reward_function to a function returning one score per "
                "objective (spard.trainer_adapters.verl.objective_reward)"
            )
        self.is_async_reward_score = inspect.iscoroutinefunction(compute_score)
        self.client = _clients.get()
        self.run = open_streaming_run(self.client, config)

    async def run_single(self, data: Any) -> dict[str, Any]:
        """Score one sample, report it, and return its weighted reward and every objective."""
        item = data[-1:][0]  # multi-sequence outputs: the last sequence, as verl's managers do
        row = self._row(await self._score(item))
        group = str(item.non_tensor_batch["uid"])
        loop = asyncio.get_running_loop()  # the worker's (not necessarily self.loop)
        weights = await loop.run_in_executor(
            None, report, self.client, self.run.run_id, [row], [group], None
        )
        reward = combine(row, weights)
        extra: dict[str, float] = {n: math.nan if v is None else v for n, v in row.items()}
        extra.update({f"spard_weight/{name}": weights[name] for name in self.run.objectives})
        # A sample no objective applies to carries no signal: 0, as verl scores a failure.
        return {"reward_score": 0.0 if math.isnan(reward) else reward, "reward_extra_info": extra}

    async def _score(self, item: Any) -> Any:
        response_ids = item.batch["responses"]
        length = int(item.batch["attention_mask"][-response_ids.shape[-1] :].sum())
        loop = asyncio.get_running_loop()
        text = await loop.run_in_executor(
            None, lambda: self.tokenizer.decode(response_ids[:length], skip_special_tokens=True)
        )
        arguments = {
            "data_source": item.non_tensor_batch["data_source"],
            "solution_str": text,
            "ground_truth": item.non_tensor_batch["reward_model"]["ground_truth"],
            "extra_info": item.non_tensor_batch.get("extra_info", {}),
        }
        if self.is_async_reward_score:
            return await self.compute_score(**arguments)
        return await loop.run_in_executor(None, lambda: self.compute_score(**arguments))

    def _row(self, result: Any) -> Row:
        if not isinstance(result, dict):
            raise ValueError(
                "spard: the reward function must return a dict with one score per objective "
                "(spard.trainer_adapters.verl.objective_reward)"
            )
        missing = [name for name in self.run.objectives if name not in result]
        if missing:
            raise ValueError(f"spard: the reward function's result has no {missing}")
        row: Row = {}
        for name in self.run.objectives:
            value = result[name]
            nan = value is not None and isinstance(value, float) and math.isnan(value)
            row[name] = None if nan else checked_score(name, value)
        return row


# verl's registry refuses a second class under one name; a file loaded again (importlib
# source, one module object per load) keeps the first registration.
REWARD_MANAGER.setdefault(MANAGER, SpardRewardManager)

if __name__ == "__main__":
    print(Path(__file__).resolve())
