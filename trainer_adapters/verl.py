"""SPARD in verl 0.9.x.

1. :func:`objective_reward` wraps per-objective scorers into a ``reward.custom_reward_function``
   that returns ``{"score": ..., <objective>: ..., ...}``, so every objective's score reaches
   ``reward_extra_info``.
2. Importing this module registers the advantage estimator ``"spard"``
   (``algorithm.adv_estimator=spard``): it groups rows by ``uid``, sends the (N, G, K) scores to
   SPARD once per step and returns SPARD's advantages (weighted, group-normalised, scaled by each
   prompt's data weight) as ``(advantages, returns)``.
3. verl's ``compute_advantage`` hands ``non_tensor_batch`` (where ``reward_extra_info`` lives)
   to the ``gdpo`` estimator only; :func:`install` wraps it so ``spard`` gets it too, on the
   legacy trainer (``ray_trainer``) and on v1 (``ppo.v1.utils``). The v1 trainer does not even
   fetch ``reward_extra_info`` from the TransferQueue: :func:`spard_trainer` makes the subclass
   that does, registered as ``trainer.v1.trainer_mode=spard_<mode>``.
4. verl runs the trainer inside a Ray actor; :class:`SpardTaskRunner` (and ``python -m
   spard.trainer_adapters.verl``) installs all of the above in that actor.

That is full SPARD. With verl's own trainer and estimator, :mod:`spard.trainer_adapters.verl_reward`
gives PAWA only, through verl's reward loop.

The run is chosen by :func:`configure` or by ``SPARD_URL``, ``SPARD_CLIENT_API_KEY``,
``SPARD_RUN_ID``, ``SPARD_OBJECTIVES`` (comma-separated) and ``SPARD_STRATEGY`` in the trainer's
environment.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo.core_algos import register_adv_est

from spard.client import RunInfo, SpardClient
from spard.trainer_adapters._settings import AdapterSettings, get_or_create_run

ESTIMATOR = "spard"
Scorer = Callable[..., float | None]


def objective_reward(
    scorers: Mapping[str, Scorer], score_weights: Mapping[str, float] | None = None
) -> Callable[..., dict[str, float]]:
    """A verl ``compute_score`` that returns the weighted ``score`` and one key per objective.

    Each scorer takes verl's arguments (``data_source, solution_str, ground_truth,
    extra_info``) and returns a float, or None when it does not apply (missing: NaN). ``score``
    is the weighted mean over the objectives present (uniform weights by default); the ``spard``
    estimator ignores it and reads the objectives.
    """
    names = list(scorers)
    weights = dict(score_weights or dict.fromkeys(names, 1.0))

    def compute_score(
        data_source: Any, solution_str: str, ground_truth: Any, extra_info: Any = None, **_: Any
    ) -> dict[str, float]:
        values: dict[str, float] = {}
        for name in names:
            value = scorers[name](
                data_source=data_source,
                solution_str=solution_str,
                ground_truth=ground_truth,
                extra_info=extra_info,
            )
            values[name] = math.nan if value is None else float(value)
        present = [n for n in names if not math.isnan(values[n])]
        total = sum(weights[n] for n in present)
        score = sum(weights[n] * values[n] for n in present) / total if total else 0.0
        return {"score": score, **values}

    return compute_score


@dataclass
class _Session:
    client: SpardClient
    run_id: str
    objectives: list[str]
    next_step: int


_session: _Session | None = None


def configure(
    client: SpardClient | None = None,
    run_id: str | None = None,
    objectives: Sequence[str] | None = None,
    strategy: str | None = None,
    config: dict[str, Any] | None = None,
) -> _Session:
    """Choose the SPARD run the estimator steps; unset arguments come from ``SPARD_*``."""
    global _session
    settings = AdapterSettings()
    client = client if client is not None else settings.client()
    run_id = run_id or settings.run_id
    names = list(objectives) if objectives is not None else settings.objective_names

    def create() -> RunInfo:
        if not names:
            raise ValueError(
                "spard: name the objectives (configure(objectives=...) or SPARD_OBJECTIVES) "
                "or give an existing run (SPARD_RUN_ID)"
            )
        chosen = strategy or settings.strategy
        return client.create_run(names, strategy=chosen, config=config, run_id=run_id)

    info = get_or_create_run(client, run_id, create)
    next_step = 0 if info.last_step is None else info.last_step + 1
    _session = _Session(client, info.run_id, list(info.objectives), next_step)
    return _session


def _current_session() -> _Session:
    return _session if _session is not None else configure()


def group_rows(index: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(B,) group ids (in order of first appearance) and slots within each group, for uids."""
    _, first, inverse = np.unique(
        np.asarray(index).astype(str), return_index=True, return_inverse=True
    )
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    groups = rank[inverse.reshape(-1)]
    order = np.argsort(groups, kind="stable")
    counts = np.bincount(groups)
    starts = np.cumsum(counts) - counts
    slots = np.empty_like(groups)
    slots[order] = np.arange(groups.size) - np.repeat(starts, counts)
    return groups, slots


def objective_columns(
    non_tensor_batch: Mapping[str, Any] | None, objectives: Sequence[str]
) -> np.ndarray[Any, Any]:
    """(B, K) per-objective scores from ``reward_extra_info`` columns; None/missing = NaN."""
    missing = [n for n in objectives if non_tensor_batch is None or n not in non_tensor_batch]
    if missing:
        raise ValueError(
            f"spard: the batch has no reward_extra_info for {missing}. Return them from the reward "
            "function (spard.trainer_adapters.verl.objective_reward) and call "
            "spard.trainer_adapters.verl.install() in the trainer's process (SpardTaskRunner does)"
        )
    assert non_tensor_batch is not None
    columns = [
        [math.nan if v is None else float(v) for v in np.asarray(non_tensor_batch[n]).tolist()]
        for n in objectives
    ]
    return np.array(columns, dtype=np.float64).T


@register_adv_est(ESTIMATOR)  # type: ignore[misc, untyped-decorator, unused-ignore]
def compute_spard_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray[Any, Any],
    config: Any = None,
    non_tensor_batch: Mapping[str, Any] | None = None,
    **_: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """verl advantage estimator ``spard``: (bs, L) advantages and returns (outcome-level)."""
    session = _current_session()
    rows = objective_columns(non_tensor_batch, session.objectives)
    groups, slots = group_rows(index)
    scores = np.full((groups.max() + 1, slots.max() + 1, rows.shape[1]), np.nan)
    scores[groups, slots] = rows
    outcome = session.client.step(
        session.run_id, scores, step=session.next_step, return_advantages=True
    )
    session.next_step += 1
    assert outcome.advantages is not None
    per_row = torch.tensor(outcome.advantages[groups, slots], dtype=torch.float32)
    advantages = per_row.to(response_mask.device).unsqueeze(-1) * response_mask
    return advantages, advantages


# Hooks: hand reward_extra_info to the estimator -----------------------------------------------
_original_compute_advantage: Callable[..., Any] | None = None
_pending_columns: dict[str, np.ndarray[Any, Any]] | None = None  # set by the v1 trainer


def compute_advantage(data: Any, adv_estimator: Any, *args: Any, **kwargs: Any) -> Any:
    """verl's ``compute_advantage``, but ``spard`` also gets the batch's non-tensor columns."""
    if str(getattr(adv_estimator, "value", adv_estimator)) != ESTIMATOR:
        assert _original_compute_advantage is not None
        return _original_compute_advantage(data, adv_estimator, *args, **kwargs)
    from verl.trainer.ppo.ray_trainer import compute_response_mask

    # TensorDict refuses `in` on itself; membership goes through keys().
    if "response_mask" not in data.batch.keys():  # noqa: SIM118
        data.batch["response_mask"] = compute_response_mask(data)
    columns = {**data.non_tensor_batch, **(_pending_columns or {})}
    advantages, returns = compute_spard_advantage(
        token_level_rewards=data.batch["token_level_rewards"],
        response_mask=data.batch["response_mask"],
        index=data.non_tensor_batch["uid"],
        config=kwargs.get("config"),
        non_tensor_batch=columns,
    )
    data.batch["advantages"] = advantages
    data.batch["returns"] = returns
    return data


def reward_extra_columns(
    extra_fields: Any, objectives: Sequence[str]
) -> dict[str, np.ndarray[Any, Any]]:
    """Per-objective columns from v1's per-row ``extra_fields["reward_extra_info"]``."""
    rows = extra_fields.tolist() if hasattr(extra_fields, "tolist") else list(extra_fields)
    infos = [
        (row or {}).get("reward_extra_info", {}) if isinstance(row, dict) else {} for row in rows
    ]
    return {name: np.array([info.get(name) for info in infos], dtype=object) for name in objectives}


def spard_trainer(base: type) -> type:
    """A v1 ``PPOTrainer`` subclass that fetches ``reward_extra_info`` for ``spard``."""

    class SpardTrainer(base):  # type: ignore[misc, valid-type, unused-ignore]
        def _compute_advantage(self, batch: Any, metrics: dict[str, Any]) -> Any:
            global _pending_columns
            if str(self.config.algorithm.adv_estimator) != ESTIMATOR:
                return super()._compute_advantage(batch, metrics)
            import transfer_queue as tq

            fetched = tq.kv_batch_get(
                keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_fields"]
            )
            objectives = _current_session().objectives
            _pending_columns = reward_extra_columns(fetched["extra_fields"], objectives)
            try:
                return super()._compute_advantage(batch, metrics)
            finally:
                _pending_columns = None

    SpardTrainer.__name__ = SpardTrainer.__qualname__ = f"Spard{base.__name__}"
    return SpardTrainer


def install() -> None:
    """Route ``spard`` through :func:`compute_advantage` and register ``spard_<mode>`` v1
    trainers, in this process. Idempotent."""
    global _original_compute_advantage
    import verl.trainer.ppo.ray_trainer as legacy

    if legacy.compute_advantage is not compute_advantage:
        _original_compute_advantage = legacy.compute_advantage
        legacy.compute_advantage = compute_advantage
    try:
        import verl.trainer.ppo.v1  # noqa: F401  (registers verl's own trainer modes)
        import verl.trainer.ppo.v1.utils as v1_utils
        from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY, register_trainer
    except ImportError:  # the v1 trainer needs verl's TransferQueue
        return
    v1_utils.compute_advantage = compute_advantage
    for name, trainer in list(TRAINER_REGISTRY.items()):
        if not name.startswith("spard_") and f"spard_{name}" not in TRAINER_REGISTRY:
            register_trainer(f"spard_{name}")(spard_trainer(trainer))


def spard_task_runner(v1: bool = True) -> Any:
    """verl's TaskRunner (v1 or legacy) as a Ray actor class that runs :func:`install` first."""
    import ray

    if v1:
        from verl.trainer.main_ppo import TaskRunnerV1 as Runner
    else:
        from verl.trainer.main_ppo_v0 import TaskRunner as Runner
    base = Runner.__ray_metadata__.modified_class

    class SpardTaskRunner(base):  # type: ignore[misc, valid-type]
        def run(self, config: Any) -> Any:
            install()
            return super().run(config)

    return ray.remote(SpardTaskRunner)


def main() -> None:
    """``python -m spard.trainer_adapters.verl <hydra overrides>``: verl's ``main_ppo`` with
    SPARD installed in the trainer's Ray actor."""
    from importlib import resources

    import hydra
    from verl.trainer.main_ppo import run_ppo

    config_dir = str(resources.files("verl.trainer") / "config")

    @hydra.main(config_path=config_dir, config_name="ppo_trainer", version_base=None)  # type: ignore[untyped-decorator, misc, unused-ignore]
    def _main(config: Any) -> None:
        from verl.trainer.main_ppo import (
            auto_set_device,
            need_critic,
            need_reference_policy,
            validate_config,
        )

        auto_set_device(config)
        validate_config(
            config=config,
            use_reference_policy=need_reference_policy(config),
            use_critic=need_critic(config),
        )
        run_ppo(config, task_runner_class=spard_task_runner(v1=bool(config.trainer.use_v1)))

    _main()


install()

if __name__ == "__main__":
    main()
