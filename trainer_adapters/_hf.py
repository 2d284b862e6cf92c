"""What SPARD's adapters for trainers built on Hugging Face's ``Trainer`` (TRL, ms-swift) share.

:class:`SpardLink` opens the run once, makes one service call per generation batch on the
main process and broadcasts the answer (every rank applies the same weights, and an error on
the main process stops every rank), names the metrics the trainers log, and keeps the
curriculum state in each checkpoint (:data:`STATE_FILE`), imported again on resume.

What the trainer accepts, the link accepts: its reward weights as given (a fixed-weight run
hands them back untouched, so ``static`` is the trainer's own GRPO), a weight of 0 (the
objective is tracked, never trained on), a negative weight (a penalty: the engine sees the
negated scores with the weight's magnitude, and the sign is put back on what the trainer
applies), the same reward function twice (objectives ``name``, ``name_2``, ...), and batches
where every reward is ``None`` (no step: the weights are held).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from accelerate.utils import broadcast_object_list

from spard.client import RunInfo, SpardClient, StepOutcome
from spard.config import SpardConfig, config_from_overrides
from spard.names import is_allowed_name, normal_name
from spard.strategies import (
    ADVANTAGE_RULES,
    AdvantageEntry,
    StrategyRules,
    decoupled_variant,
    is_decoupled,
)
from spard.trainer_adapters._settings import get_or_create_run

STATE_FILE = "spard_state.json"
_Result = TypeVar("_Result")


def distinct_names(names: Sequence[str]) -> list[str]:
    """The reward functions' names as objective names: NFC-normalised as the engine knows
    them, ``reward_<i>`` for a name the engine cannot hold (TRL names a reward model built from
    a config ``""``), and a repeated name gets ``_2``, ``_3``... (the first free one), since
    one reward function may be passed twice."""
    normal = [
        normal_name(name) if is_allowed_name(name) else f"reward_{index}"
        for index, name in enumerate(names)
    ]
    taken = set(normal)
    distinct: list[str] = []
    for name in normal:
        candidate, count = name, 1
        while candidate in distinct or (count > 1 and candidate in taken):
            count += 1
            candidate = f"{name}_{count}"
        distinct.append(candidate)
    return distinct


def decoupled_config(strategy: str, config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the decoupled variant of the strategy's advantage rule, for a trainer
    that asks for normalise-then-sum; a summed ``advantage_mode`` set explicitly (or by a
    preset), and a rule without a decoupled variant (``drw``), are refused."""
    resolved = config_from_overrides(config, strategy=strategy)
    rule = resolved.resolved_advantage_mode
    variant = decoupled_variant(rule)
    if rule == variant:
        return config
    if variant is None:
        raise ValueError(
            f"the trainer normalises each reward before summing (GDPO), but the run's advantage "
            f"rule {rule!r} has no decoupled variant; use the trainer's summed setting (the "
            "engine's advantages are applied)"
        )
    if resolved.advantage_mode != "auto":
        raise ValueError(
            f"the trainer normalises each reward before summing (GDPO), but spard_config sets "
            f"advantage_mode={rule!r}, a summed rule; drop advantage_mode (the run then uses "
            f"{variant!r}) or the trainer's normalise-then-sum setting"
        )
    return {**config, "advantage_mode": variant}


class SpardLink:
    """One trainer's link to its SPARD run.

    ``reward_func_names``: the trainer's, in order; ``trainer_weights``: its reward weights
    (K,), as the user gave them; ``accelerator``: the trainer's, for its ranks.
    """

    def __init__(
        self,
        client: SpardClient,
        reward_func_names: Sequence[str],
        trainer_weights: Sequence[float],
        accelerator: Any,
    ) -> None:
        self.client = client
        self.objectives = distinct_names(reward_func_names)
        self.accelerator = accelerator
        self.user_weights = np.asarray(trainer_weights, dtype=np.float64)
        self.signs = np.where(self.user_weights < 0.0, -1.0, 1.0)
        self.run_id = ""
        self.rules = StrategyRules("fixed", "none", "sum")
        # The index of the next training generation batch: the step number sent (TRL's
        # global_step is not one: several generation batches can share an optimizer step).
        self.next_step = 0
        self._scales = np.ones(len(self.objectives))

    @property
    def advantage_rule(self) -> str:
        """The run's advantage rule (a name of ``spard.strategies.ADVANTAGE_RULES``)."""
        return self.rules.advantages

    @property
    def advantage_entry(self) -> AdvantageEntry:
        """The registry entry of the run's advantage rule: what the trainer can do with it."""
        return ADVANTAGE_RULES[self.rules.advantages]

    def open(
        self, run_id: str | None, strategy: str, config: dict[str, Any], decoupled: bool
    ) -> None:
        """Reuse run ``run_id`` if it exists, else create it (on the main process), with the
        magnitudes of the trainer's weights as prior weights; every rank learns its id and
        rules. ``decoupled``: the trainer normalises each reward before summing, so the run
        gets the decoupled variant of the strategy's advantage rule."""
        if decoupled:
            config = decoupled_config(strategy, config)

        def create_or_reuse() -> tuple[str, StrategyRules, int]:
            info = get_or_create_run(
                self.client,
                run_id,
                lambda: self.client.create_run(
                    self.objectives,
                    strategy=strategy,
                    config=config,
                    prior_weights=np.abs(self.user_weights).tolist(),
                    run_id=run_id,
                ),
            )
            self._check_reused(info)
            next_step = 0 if info.last_step is None else info.last_step + 1
            return info.run_id, SpardConfig.model_validate(info.config).rules, next_step

        self.run_id, self.rules, self.next_step = self._on_main(create_or_reuse)
        if decoupled and not is_decoupled(self.rules.advantages):
            raise ValueError(
                f"run {self.run_id!r} sums its rewards (advantage rule "
                f"{self.advantage_rule!r}) but the trainer normalises each reward before "
                "summing (GDPO); use another run id or the trainer's summed setting"
            )
        if self.accelerator.is_main_process:
            print(
                f"SPARD: run {self.run_id!r}, advantages by rule {self.advantage_rule!r}",
                flush=True,
            )

    @property
    def engine_advantages(self) -> bool:
        """Whether the run's advantage rule is one only the engine computes: the adapter then
        replaces the trainer's advantages with the engine's (data weights included)."""
        return self.advantage_entry.trainer_aggregation is None

    @property
    def data_weighted(self) -> bool:
        """Whether the run weights prompts (else every data weight is 1)."""
        return self.rules.data_weights != "none"

    def step(self, rewards: Any, num_generations: int) -> StepOutcome | None:
        """Send the gathered rewards ``(N*G, K)`` of one training generation batch as the
        next step (the main process calls the service); every rank gets the same outcome.
        None when no reward in the batch has a value (every reward function returned None):
        there is nothing to learn from, so no step is applied and the weights are held. An
        infinite reward is a missing score (the trainer's own sum would turn its group's
        advantages to 0)."""
        step = self.next_step
        self.next_step += 1
        scores = rewards.detach().float().cpu().numpy() * self.signs
        scores[np.isinf(scores)] = np.nan
        if not np.isfinite(scores).any():
            return None

        def call() -> StepOutcome:
            grouped = scores.reshape(-1, num_generations, scores.shape[1])
            return self.client.step(
                self.run_id, grouped, step=step, return_advantages=self.engine_advantages
            )

        return self._on_main(call)

    def trainer_weights(self, outcome: StepOutcome) -> np.ndarray[Any, Any]:
        """(K,) the weights the trainer's own weighted sum should apply.

        A run with fixed weights and a rule the trainer computes gets the user's weights
        back exactly (the trainer's GRPO, bit for bit). Otherwise the curriculum's weights,
        under ``scaled`` each divided by its objective's running scale ``s_k`` (the last
        known one when the answer carries none, as a held answer), rescaled to the user's
        total and with each penalty's sign put back."""
        over_scales = self.advantage_entry.weights_over_scales
        if self.rules.reward_weights == "fixed" and not over_scales:
            return self.user_weights
        weights = outcome.reward_weights
        if over_scales:
            if outcome.stats is not None:
                scales = [outcome.stats[name]["scale"] for name in self.objectives]
                known = np.array([np.nan if value is None else value for value in scales])
                self._scales = np.where(np.isfinite(known) & (known > 0.0), known, self._scales)
            weights = weights / self._scales
        rescaled: np.ndarray[Any, Any] = self.signs * weights * np.abs(self.user_weights).sum()
        return rescaled

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
            last = saved["state"]["last_step"]
            self.next_step = 0 if last is None else last + 1

    def _check_reused(self, info: RunInfo) -> None:
        """Refuse a run of other objectives; warn when its prior is not the trainer's."""
        if info.objectives != self.objectives:
            raise ValueError(
                f"run {info.run_id!r} has objectives {info.objectives}, the trainer's reward "
                f"functions are {self.objectives}; use another run id"
            )
        magnitudes = np.abs(self.user_weights)
        if not np.allclose(info.prior_weights, magnitudes / magnitudes.sum(), atol=1e-9):
            print(
                f"SPARD: run {info.run_id!r} keeps its prior weights "
                f"{info.prior_weights.tolist()}, not the trainer's reward_weights",
                flush=True,
            )

    def _on_main(self, work: Callable[[], _Result]) -> _Result:
        """``work()`` on the main process, its result broadcast to every rank. An error there
        is raised on every rank (the others would otherwise wait at the broadcast forever)."""
        payload: tuple[Any, str | None] = (None, None)
        failure: Exception | None = None
        if self.accelerator.is_main_process:
            try:
                payload = (work(), None)
            except Exception as error:  # raised again below, on every rank
                failure = error
                payload = (None, f"{type(error).__name__}: {error}")
        result, message = broadcast_object_list([payload], from_process=0)[0]
        if failure is not None:
            raise failure
        if message is not None:
            raise RuntimeError(f"SPARD failed on the main process: {message}")
        answer: _Result = result
        return answer
