"""What SPARD's adapters for trainers built on Hugging Face's ``Trainer`` (TRL, ms-swift) share.

:class:`SpardLink` opens the run once, makes one service call per generation batch on the
main process and broadcasts the answer (every rank applies the same weights), names the
metrics the trainers log, and keeps the curriculum state in each checkpoint
(:data:`STATE_FILE`), imported again on resume.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from accelerate.utils import broadcast_object_list

from spard.client import SpardClient, StepOutcome
from spard.config import SpardConfig
from spard.trainer_adapters._settings import get_or_create_run

STATE_FILE = "spard_state.json"
# The advantage rules a trainer's own advantage code can compute, given the weights
# :meth:`SpardLink.trainer_weights` hands it: ``scaled`` is the weighted sum with each weight
# divided by its objective's running scale. Under any other rule (``decoupled_floor``, the
# default's) the adapters apply the engine's advantages instead of the trainer's.
TRAINER_RULES = ("sum", "scaled", "decoupled")


class SpardLink:
    """One trainer's link to its SPARD run (``accelerator``: the trainer's, for its ranks)."""

    def __init__(self, client: SpardClient, objectives: list[str], accelerator: Any) -> None:
        self.client = client
        self.objectives = objectives
        self.accelerator = accelerator
        self.run_id = ""
        self.advantage_rule = "sum"
        self._scales = np.ones(len(objectives))

    def open(
        self,
        run_id: str | None,
        strategy: str,
        config: dict[str, Any],
        prior_weights: list[float] | None,
    ) -> None:
        """Reuse run ``run_id`` if it exists, else create it (on the main process); every rank
        learns its id and advantage rule."""
        opened: tuple[str, str] | None = None
        if self.accelerator.is_main_process:
            info = get_or_create_run(
                self.client,
                run_id,
                lambda: self.client.create_run(
                    self.objectives,
                    strategy=strategy,
                    config=config,
                    prior_weights=prior_weights,
                    run_id=run_id,
                ),
            )
            opened = (info.run_id, SpardConfig.model_validate(info.config).resolved_advantage_mode)
        self.run_id, self.advantage_rule = broadcast_object_list([opened], from_process=0)[0]
        if self.accelerator.is_main_process:
            print(
                f"SPARD: run {self.run_id!r}, advantages by rule {self.advantage_rule!r}",
                flush=True,
            )

    @property
    def engine_advantages(self) -> bool:
        """Whether the run's advantage rule is one only the engine computes: the adapter then
        replaces the trainer's advantages with the engine's (data weights included)."""
        return self.advantage_rule not in TRAINER_RULES

    def step(self, rewards: Any, num_generations: int, step: int) -> StepOutcome:
        """Send the gathered rewards ``(N*G, K)`` of one generation batch as step ``step``
        (the main process calls the service); every rank gets the same outcome."""
        outcome = None
        if self.accelerator.is_main_process:
            scores = rewards.detach().float().cpu().numpy()
            grouped = scores.reshape(-1, num_generations, scores.shape[1])
            outcome = self.client.step(
                self.run_id, grouped, step=step, return_advantages=self.engine_advantages
            )
        result: StepOutcome = broadcast_object_list([outcome], from_process=0)[0]
        return result

    def trainer_weights(self, outcome: StepOutcome) -> np.ndarray[Any, Any]:
        """(K,) the weights the trainer's own weighted sum should apply: the reward weights,
        under ``scaled`` each divided by its objective's running scale ``s_k`` (the last
        known one when the answer carries none, as a held answer)."""
        if self.advantage_rule != "scaled":
            return outcome.reward_weights
        if outcome.stats is not None:
            scales = [outcome.stats[name]["scale"] for name in self.objectives]
            known = np.array([np.nan if value is None else value for value in scales])
            self._scales = np.where(np.isfinite(known) & (known > 0.0), known, self._scales)
        weights: np.ndarray[Any, Any] = outcome.reward_weights / self._scales
        return weights

    def completion_advantages(self, outcome: StepOutcome) -> np.ndarray[Any, Any]:
        """Each completion's advantage from the engine, in the gathered batch's order:
        ``(N*G,)``; only when :attr:`engine_advantages`."""
        if outcome.advantages is None:
            raise RuntimeError("the step was not asked for advantages")
        return outcome.advantages.reshape(-1)

    def completion_weights(
        self, outcome: StepOutcome, num_generations: int
    ) -> np.ndarray[Any, Any]:
        """Each completion's data weight, in the gathered batch's order: ``(N*G,)``."""
        return np.repeat(outcome.sample_weights, num_generations)

    def metrics(self, outcome: StepOutcome) -> dict[str, float]:
        """Per-objective weights (next to the trainer's ``rewards/<name>/mean``) and the
        spread of the data weights."""
        values = {
            f"reward_weights/{name}": weight
            for name, weight in zip(self.objectives, outcome.reward_weights.tolist(), strict=True)
        }
        informative = ~outcome.zero_signal
        mean = float(outcome.sample_weights[informative].mean()) if informative.any() else 0.0
        values["spard/sample_weight_mean"] = mean
        values["spard/sample_weight_max"] = float(outcome.sample_weights.max())
        values["spard/zero_signal_frac"] = float(outcome.zero_signal.mean())
        values["spard/held"] = float(outcome.held)
        return values

    def save(self, folder: str) -> None:
        """Write the curriculum state into checkpoint ``folder`` (main process only)."""
        if not self.accelerator.is_main_process:
            return
        state = {"run_id": self.run_id, "state": self.client.export_state(self.run_id)}
        with open(os.path.join(folder, STATE_FILE), "w", encoding="utf-8") as handle:
            json.dump(state, handle)

    def load(self, folder: str) -> None:
        """Resume the run from checkpoint ``folder``'s curriculum state, if it has one."""
        path = os.path.join(folder, STATE_FILE)
        if self.accelerator.is_main_process and os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                saved = json.load(handle)
            self.client.import_state(self.run_id, saved["state"])
