"""SPARD in TRL: ``SpardGRPOTrainer``, a drop-in subclass of TRL's ``GRPOTrainer`` (TRL >= 1.16).

Per training generation batch it sends the rewards gathered from all processes, shaped
(N, G, K), to SPARD once; sets ``self.reward_weights`` to the curriculum's weights for this
batch (rescaled to the total of the user's ``reward_weights``, and divided by each objective's
running scale under the ``scaled`` rule; TRL then aggregates and normalises as usual), and
multiplies each prompt's advantages by its RADR sample weight. A run with fixed weights
(``static``, ``gdpo``) leaves TRL's weights, aggregation and advantages exactly as they are:
``static`` is TRL's GRPO bit for bit, and the run only tracks the objectives.

The run's advantage rule sets TRL's ``multi_objective_aggregation`` (``normalize_then_sum`` for
decoupled, GDPO-style rules); a user who sets ``normalize_then_sum`` gets the decoupled variant
of the chosen strategy. Under a rule TRL cannot compute (``decoupled_floor``, the default's)
the engine's advantages replace TRL's. Rank 0 makes the call and broadcasts the answer, so
every rank applies the same weights. Evaluation batches are left alone. The curriculum state
is saved in each checkpoint (``spard_state.json``) and imported on resume. Zero and negative
reward weights, a reward function passed twice and batches without any reward are accepted
as TRL accepts them (see :mod:`spard.trainer_adapters._hf`).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from trl import GRPOTrainer

from spard.client import SpardClient, StepOutcome
from spard.trainer_adapters._hf import STATE_FILE, SpardLink

__all__ = ["ASYNC_REFUSAL", "STATE_FILE", "SpardGRPOTrainer"]
ASYNC_REFUSAL = (
    "SpardGRPOTrainer does not apply to TRL's experimental AsyncGRPOTrainer: its rollout "
    "workers sum the rewards with weight 1, in the background and ahead of the optimizer, so "
    "there is no per-batch weighting for SPARD to set and no advantage to scale. Use "
    "SpardGRPOTrainer with GRPOConfig (TRL's synchronous trainer), or have one reward function "
    "combine the objectives with the run's current weights (SpardClient.weights), as the "
    "OpenRLHF recipe in the README does (PAWA only, no data weights)."
)


class SpardGRPOTrainer(GRPOTrainer):  # type: ignore[misc]
    """``GRPOTrainer`` whose reward weights and per-prompt advantages follow SPARD.

    Extra arguments: ``spard_client`` (default: :meth:`SpardClient.local`), ``spard_run_id``
    (reused if it exists, else created), ``spard_strategy`` and ``spard_config`` (overrides of
    ``SpardConfig``). Objectives are the reward functions' names (a repeated one gets ``_2``,
    ...); the magnitudes of ``args.reward_weights`` (TRL's, all 1 when unset) are the prior
    weights.
    """

    multi_objective_aggregation: str
    reward_weights: torch.Tensor

    def __init__(
        self,
        *args: Any,
        spard_client: SpardClient | None = None,
        spard_run_id: str | None = None,
        spard_strategy: str = "spard",
        spard_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        _refuse_async(self, kwargs.get("args", args[2] if len(args) > 2 else None))
        super().__init__(*args, **kwargs)
        client = spard_client if spard_client is not None else SpardClient.local()
        self.spard = SpardLink(
            client, self.reward_func_names, self.reward_weights.tolist(), self.accelerator
        )
        decoupled = self.multi_objective_aggregation == "normalize_then_sum"
        self.spard.open(spard_run_id, spard_strategy, spard_config or {}, decoupled)
        self._spard_outcome: StepOutcome | None = None
        # The run's advantage rule decides TRL's aggregation (its registry entry says which),
        # so `spard_gdpo` (and any advantage_mode="decoupled") gets GDPO's normalize_then_sum,
        # the summed rules TRL's default. Under rules TRL cannot compute (decoupled_floor) the
        # engine's advantages replace TRL's, whatever it aggregated.
        aggregation = self.spard.advantage_entry.trainer_aggregation
        if aggregation is not None:
            self.multi_objective_aggregation = aggregation

    @property
    def spard_client(self) -> SpardClient:
        """The SDK client the trainer steps its run with."""
        return self.spard.client

    @property
    def spard_run_id(self) -> str:
        """The run's id (the same on every rank)."""
        return self.spard.run_id

    @property
    def spard_objectives(self) -> list[str]:
        """The objectives: the reward functions' names, in order."""
        return self.spard.objectives

    def _calculate_rewards(
        self, inputs: Any, prompts: Any, completions: Any, completion_ids_list: Any
    ) -> torch.Tensor:
        rewards_per_func: torch.Tensor = super()._calculate_rewards(
            inputs, prompts, completions, completion_ids_list
        )
        if not self.model.training:
            self._spard_outcome = None
            return rewards_per_func
        outcome = self.spard.step(rewards_per_func, self.num_generations)
        self._spard_outcome = outcome
        if outcome is None:  # no reward at all (TRL has warned): weights held, advantages 0
            return rewards_per_func
        self.reward_weights = torch.tensor(self.spard.trainer_weights(outcome), dtype=torch.float32)
        for name, value in self.spard.metrics(outcome).items():
            self._metrics["train"][name].append(value)
        return rewards_per_func

    def _generate_and_score_completions(self, inputs: Any) -> dict[str, Any]:
        output: dict[str, Any] = super()._generate_and_score_completions(inputs)
        outcome = self._spard_outcome
        if outcome is None:
            return output
        # This process's slice of the gathered batch: the engine's advantages where TRL cannot
        # compute the run's rule, else TRL's own scaled by each prompt's data weight.
        advantages = output["advantages"]
        local = advantages.shape[0]
        start = self.accelerator.process_index * local
        if self.spard.engine_advantages:
            engine = self.spard.completion_advantages(outcome)[start : start + local]
            output["advantages"] = torch.tensor(engine, dtype=advantages.dtype).to(
                advantages.device
            )
        elif self.spard.data_weighted:
            per_completion = self.spard.completion_weights(outcome, self.num_generations)
            weights = torch.tensor(per_completion[start : start + local], dtype=advantages.dtype)
            output["advantages"] = advantages * weights.to(advantages.device)
        self._spard_outcome = None
        return output

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = os.path.join(
                self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}"
            )
            self.spard.save(folder)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        self.spard.load(resume_from_checkpoint)


def _refuse_async(trainer: object, args: object) -> None:
    """Raise :data:`ASYNC_REFUSAL` for TRL's asynchronous trainer or its config."""
    try:
        from trl.experimental.async_grpo import AsyncGRPOConfig, AsyncGRPOTrainer
    except ImportError:  # a TRL without it
        return
    if isinstance(trainer, AsyncGRPOTrainer) or isinstance(args, AsyncGRPOConfig):
        raise TypeError(ASYNC_REFUSAL)
