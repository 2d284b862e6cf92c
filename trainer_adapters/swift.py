"""SPARD in ms-swift 4.x (``swift rlhf --rlhf_type grpo``), the trainer SPARD was published with.

The authors ran ``swift rlhf`` with ``--dynaopt_*`` flags of an unpublished fork. Here SPARD is
turned on through ms-swift's own extension point instead: one ``--external_plugins`` file (the
plugin module :mod:`spard.trainer_adapters.swift_plugin`; ``python -m
spard.trainer_adapters.swift`` prints its path) registers :class:`SpardSwiftGRPOTrainer` as
the ``grpo`` trainer; the rest of the command line stays the authors'.

Per training generation batch (after ms-swift's dynamic sampling, so on the rollouts that are
trained on) it sends the gathered rewards, shaped (N, G, K), to SPARD once; sets
``reward_weights`` to the curriculum's weights for this batch (ms-swift then weighs and
normalises as usual) and multiplies each completion's advantage by its prompt's RADR data
weight. A run with fixed weights (``static``) leaves ms-swift's weights and advantages as
they are, so it is ms-swift's GRPO exactly. A run whose advantage rule is decoupled
(``spard_gdpo``, ``gdpo``) gets ms-swift's ``scale_rewards="gdpo"``, and a user who sets
``--scale_rewards gdpo`` gets the decoupled variant of the chosen strategy; under a rule
ms-swift cannot compute (``decoupled_floor``, the default's) the engine's advantages replace
ms-swift's. A batch where every reward is None applies no step (the weights are held). Rank 0
makes the call and broadcasts the answer; the curriculum state is saved in every checkpoint
and imported on resume; the weights are logged as ``reward_weights/<objective>``.

Settings come from the environment: ``SPARD_URL`` (none: the service runs in-process),
``SPARD_CLIENT_API_KEY``, ``SPARD_RUN_ID``, ``SPARD_STRATEGY`` (default ``spard``) and
``SPARD_CONFIG``, a JSON object of ``SpardConfig`` overrides: ``{"update_every": 4}`` moves the
weights every 4 steps, as the authors' ``--dynaopt_every_steps 4``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from swift.rlhf_trainers import GRPOTrainer
from swift.trainers import TrainerFactory

from spard.trainer_adapters._hf import STATE_FILE, SpardLink
from spard.trainer_adapters._settings import AdapterSettings

__all__ = ["STATE_FILE", "SpardSwiftGRPOTrainer", "install", "plugin_path"]


class SpardSwiftGRPOTrainer(GRPOTrainer):  # type: ignore[misc]
    """ms-swift's ``GRPOTrainer`` whose reward weights and advantages follow SPARD (see the
    module docstring). Objectives are the reward functions' names (a repeated one gets
    ``_2``, ...); the magnitudes of ``--reward_weights`` (all 1 when unset) are the prior
    weights, a weight of 0 is tracked and never trained on, a negative one is a penalty."""

    reward_weights: torch.Tensor
    scale_rewards: str
    kl_in_reward: bool
    advantage_estimator: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = AdapterSettings()
        weights = self.reward_weights.tolist()
        self.spard = SpardLink(settings.client(), self.reward_func_names, weights, self.accelerator)
        decoupled = self.scale_rewards == "gdpo"
        self.spard.open(settings.run_id, settings.strategy, settings.config, decoupled)
        if self.spard.advantage_entry.trainer_aggregation == "normalize_then_sum":
            self.scale_rewards = "gdpo"
        _refuse_ignored_settings(self)

    def _compute_advantages(
        self, samples: Any, rewards_per_func: torch.Tensor, batch_encoded_inputs: Any
    ) -> torch.Tensor:
        if not self.model.training:
            advantages: torch.Tensor = super()._compute_advantages(
                samples, rewards_per_func, batch_encoded_inputs
            )
            return advantages
        if self.dynamic_num_samples:
            raise ValueError(
                "SPARD needs num_generations rollouts per prompt; ms-swift's multi-turn "
                "request-aware mode (a varying number per prompt) is not supported"
            )
        outcome = self.spard.step(rewards_per_func, self.num_generations)
        if outcome is None:  # no reward at all: no step, the weights held, ms-swift's advantages
            held: torch.Tensor = super()._compute_advantages(
                samples, rewards_per_func, batch_encoded_inputs
            )
            return held
        # Where ms-swift keeps its own reward_weights.
        device = self.accelerator.device
        self.reward_weights = torch.tensor(
            self.spard.trainer_weights(outcome), dtype=torch.float32, device=device
        )
        for name, value in self.spard.metrics(outcome).items():
            self._metrics["train"][name].append(value)
        advantages = super()._compute_advantages(samples, rewards_per_func, batch_encoded_inputs)
        if self.spard.engine_advantages:  # a rule ms-swift cannot compute: the engine's
            engine = self.spard.completion_advantages(outcome)
            return torch.tensor(engine, dtype=advantages.dtype, device=advantages.device)
        if not self.spard.data_weighted:
            return advantages
        # The advantages of the whole gathered batch, in its order: one data weight each.
        weights = self.spard.completion_weights(outcome, self.num_generations)
        return advantages * torch.tensor(weights, dtype=advantages.dtype, device=advantages.device)

    def _save_checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        result = super()._save_checkpoint(*args, **kwargs)
        if self.args.should_save:
            self.spard.save(self.state.last_model_checkpoint)
        return result

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        self.spard.load(resume_from_checkpoint)


def _refuse_ignored_settings(trainer: SpardSwiftGRPOTrainer) -> None:
    """Refuse ms-swift settings the run's advantage rule would drop without a word: its
    ``gdpo`` has no KL term (ms-swift itself switches ``kl_in_reward`` off for it, in a check
    that ran before the plugin chose gdpo), and the engine's advantages (``decoupled_floor``)
    are GRPO's, without KL or another estimator."""
    rule = trainer.spard.advantage_rule
    gdpo = trainer.spard.advantage_entry.trainer_aggregation == "normalize_then_sum"
    if gdpo and trainer.kl_in_reward:
        raise ValueError(
            "SPARD's run uses ms-swift's scale_rewards=gdpo, which has no KL term: turn "
            "--kl_in_reward off, or use a summed strategy"
        )
    if trainer.spard.engine_advantages and (
        trainer.kl_in_reward or trainer.advantage_estimator != "grpo"
    ):
        raise ValueError(
            f"SPARD's run computes its advantages itself (rule {rule!r}), as GRPO's without a "
            "KL term: --advantage_estimator must be grpo and --kl_in_reward off; or choose a "
            'summed rule (SPARD_CONFIG=\'{"advantage_mode": "sum"}\') that ms-swift computes'
        )


def install() -> None:
    """Make ``SpardSwiftGRPOTrainer`` the trainer of ``--rlhf_type grpo`` in this process."""
    TrainerFactory.TRAINER_MAPPING["grpo"] = f"{__name__}.{SpardSwiftGRPOTrainer.__name__}"


def plugin_path() -> Path:
    """The file to pass as ``--external_plugins``."""
    return Path(__file__).with_name("swift_plugin.py")


if __name__ == "__main__":
    print(plugin_path())
