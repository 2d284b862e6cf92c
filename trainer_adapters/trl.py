"""SPARD in TRL: ``SpardGRPOTrainer``, a drop-in subclass of TRL's ``GRPOTrainer`` (TRL >= 1.16).

Per training generation batch it sends the rewards gathered from all processes, shaped
(N, G, K), to SPARD once; sets ``self.reward_weights`` to the curriculum's weights for this
batch (TRL then aggregates and normalises as usual), and multiplies each prompt's advantages by
its RADR sample weight. TRL's ``multi_objective_aggregation`` follows the run's advantage rule
(``normalize_then_sum`` for decoupled, GDPO-style rules). Rank 0 makes the call and broadcasts
the answer, so every rank applies the same weights. Evaluation batches are left alone. The
curriculum state is saved in each checkpoint (``spard_state.json``) and imported on resume.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch
from accelerate.utils import broadcast_object_list
from trl import GRPOTrainer

from spard.client import RunInfo, SpardClient, StepOutcome
from spard.client.errors import RunNotFoundError
from spard.config import SpardConfig

STATE_FILE = "spard_state.json"
AGGREGATION = {"sum": "sum_then_normalize", "decoupled": "normalize_then_sum"}


class SpardGRPOTrainer(GRPOTrainer):  # type: ignore[misc]
    """``GRPOTrainer`` whose reward weights and per-prompt advantages follow SPARD.

    Extra arguments: ``spard_client`` (default: :meth:`SpardClient.local`), ``spard_run_id``
    (reused if it exists, else created), ``spard_strategy`` and ``spard_config`` (overrides of
    ``SpardConfig``). Objectives are the reward functions' names; ``args.reward_weights``, if
    set, are the prior weights.
    """

    def __init__(
        self,
        *args: Any,
        spard_client: SpardClient | None = None,
        spard_run_id: str | None = None,
        spard_strategy: str = "spard",
        spard_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.spard_client = spard_client if spard_client is not None else SpardClient.local()
        self.spard_objectives = list(self.reward_func_names)
        self._spard_outcome: StepOutcome | None = None
        opened: tuple[str, str] | None = None
        if self.accelerator.is_main_process:
            info = self._spard_open_run(spard_run_id, spard_strategy, spard_config or {})
            opened = (info.run_id, SpardConfig.model_validate(info.config).resolved_advantage_mode)
        run_id, advantage_rule = broadcast_object_list([opened], from_process=0)[0]
        self.spard_run_id: str = run_id
        if self.accelerator.is_main_process:
            print(f"SPARD: run {run_id!r}, advantages by rule {advantage_rule!r}", flush=True)
        # The run's advantage rule decides TRL's aggregation, so `spard_gdpo` (and any
        # advantage_mode="decoupled") gets GDPO's normalize_then_sum, the rest TRL's default.
        self.multi_objective_aggregation = AGGREGATION[advantage_rule]

    def _spard_open_run(self, run_id: str | None, strategy: str, config: dict[str, Any]) -> RunInfo:
        if run_id is not None:
            try:
                return self.spard_client.get_run(run_id)
            except RunNotFoundError:
                pass
        prior = self.args.reward_weights
        info = self.spard_client.create_run(
            self.spard_objectives,
            strategy=strategy,
            config=config,
            prior_weights=prior,
            run_id=run_id,
        )
        return info

    def _calculate_rewards(
        self, inputs: Any, prompts: Any, completions: Any, completion_ids_list: Any
    ) -> torch.Tensor:
        rewards_per_func: torch.Tensor = super()._calculate_rewards(
            inputs, prompts, completions, completion_ids_list
        )
        if not self.model.training:
            self._spard_outcome = None
            return rewards_per_func
        outcome = None
        if self.accelerator.is_main_process:
            scores = rewards_per_func.detach().float().cpu().numpy()
            grouped = scores.reshape(-1, self.num_generations, scores.shape[1])
            outcome = self.spard_client.step(
                self.spard_run_id, grouped, step=self.state.global_step
            )
        outcome = broadcast_object_list([outcome], from_process=0)[0]
        self._spard_outcome = outcome
        self.reward_weights = torch.tensor(outcome.reward_weights, dtype=torch.float32)
        self._spard_log(outcome)
        return rewards_per_func

    def _generate_and_score_completions(self, inputs: Any) -> dict[str, Any]:
        output: dict[str, Any] = super()._generate_and_score_completions(inputs)
        outcome = self._spard_outcome
        if outcome is None:
            return output
        # One weight per completion, for this process's slice of the gathered batch.
        per_completion = np.repeat(outcome.sample_weights, self.num_generations)
        local = output["advantages"].shape[0]
        start = self.accelerator.process_index * local
        weights = torch.tensor(
            per_completion[start : start + local], dtype=output["advantages"].dtype
        )
        output["advantages"] = output["advantages"] * weights.to(output["advantages"].device)
        self._spard_outcome = None
        return output

    def _spard_log(self, outcome: StepOutcome) -> None:
        metrics = self._metrics["train"]
        for name, weight in zip(
            self.spard_objectives, outcome.reward_weights.tolist(), strict=True
        ):
            # TRL's own tracker proposes this name, next to its rewards/<name>/mean.
            metrics[f"reward_weights/{name}"].append(weight)
        informative = ~outcome.zero_signal
        mean = float(outcome.sample_weights[informative].mean()) if informative.any() else 0.0
        metrics["spard/sample_weight_mean"].append(mean)
        metrics["spard/sample_weight_max"].append(float(outcome.sample_weights.max()))
        metrics["spard/zero_signal_frac"].append(float(outcome.zero_signal.mean()))
        metrics["spard/held"].append(float(outcome.held))

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        if self.args.should_save and self.accelerator.is_main_process:
            folder = os.path.join(
                self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}"
            )
            with open(os.path.join(folder, STATE_FILE), "w", encoding="utf-8") as handle:
                json.dump(
                    {
                        "run_id": self.spard_run_id,
                        "state": self.spard_client.export_state(self.spard_run_id),
                    },
                    handle,
                )

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = os.path.join(resume_from_checkpoint, STATE_FILE)
        if self.accelerator.is_main_process and os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                saved = json.load(handle)
            self.spard_client.import_state(self.spard_run_id, saved["state"])
