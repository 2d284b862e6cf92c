"""The placebo arm: SPARD's machinery with its signal removed.

Reward weights do a random walk with SPARD's spread (an AR(1) walk of the centred log-weights
around the prior, fitted to SPARD's own development-seed trajectories by :func:`calibrate`),
and each prompt's advantages are scaled by RADR's sample weights *shuffled across the batch's
informative prompts*. The advantages are computed by the engine's own rule (``decoupled_floor``,
SPARD's default), with the engine's running scales, so the placebo differs from SPARD only in
where its weights come from.

``python -m benchmarks.trl_lm.placebo RUN.json ...`` fits the walk to SPARD runs' weight
histories and writes ``placebo.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.trl_lm.protocol import PLACEBO_FILE
from spard.advantages import compute_advantages
from spard.config import SpardConfig
from spard.scores import batch_statistics
from spard.trainer_adapters.trl import SpardGRPOTrainer

BURN_IN = 10  # steps of SPARD's trajectory left out of the fit (the walk starts at the prior)


def walk(steps: int, objectives: int, rho: float, sigma: float, seed: int) -> np.ndarray:
    """(steps + 1, K) reward weights: softmax of an AR(1) walk of log-weights from uniform."""
    rng = np.random.default_rng([seed, 7])
    logits = np.zeros((steps + 1, objectives))
    for t in range(1, steps + 1):
        logits[t] = rho * logits[t - 1] + sigma * rng.standard_normal(objectives)
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    normalised: np.ndarray = weights / weights.sum(axis=1, keepdims=True)
    return normalised


def calibrate(histories: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Fit the walk to SPARD's weight trajectories: ``sd_level``, the spread of the centred
    log-weights after :data:`BURN_IN`, and ``sd_step``, the spread of their one-step changes;
    an AR(1) walk with ``rho = 1 - sd_step^2 / (2 sd_level^2)`` and
    ``sigma = sd_level sqrt(K / (K - 1)) sqrt(1 - rho^2)`` has both once centred."""
    levels, changes = [], []
    for history in histories:
        names = sorted(history[0]["reward_weights"])
        logs = np.log([[entry["reward_weights"][n] for n in names] for entry in history])
        centred = logs - logs.mean(axis=1, keepdims=True)
        levels.append(centred[BURN_IN:].ravel())
        changes.append(np.diff(centred[BURN_IN:], axis=0).ravel())
    if sum(len(changes_) for changes_ in changes) < 2:
        raise ValueError(f"SPARD trajectories longer than {BURN_IN + 2} steps are needed")
    sd_level = float(np.concatenate(levels).std())
    sd_step = float(np.concatenate(changes).std())
    rho = float(np.clip(1.0 - sd_step**2 / (2.0 * sd_level**2), 0.0, 0.999))
    # Centring K independent walks shrinks their spread by sqrt((K - 1) / K): undo it.
    count = len(histories[0][0]["reward_weights"])
    return {
        "rho": rho,
        "sigma": float(sd_level * np.sqrt(count / (count - 1)) * np.sqrt(1.0 - rho**2)),
        "sd_level": sd_level,
        "sd_step": sd_step,
        "runs": len(histories),
    }


class PlaceboMixin(SpardGRPOTrainer):  # type: ignore[misc]
    """SpardGRPOTrainer (rules ``fixed`` + ``radr`` + ``decoupled_floor``) whose advantages are
    recomputed with the random-walk weights and the shuffled RADR sample weights."""

    def __init__(self, *args: Any, placebo: dict[str, Any], placebo_seed: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.placebo_seed = placebo_seed
        steps = self.args.max_steps
        self.placebo_weights = walk(
            steps, len(self.reward_func_names), placebo["rho"], placebo["sigma"], placebo_seed
        )
        self.placebo_history: list[dict[str, Any]] = []
        self.placebo_config = SpardConfig(strategy="spard", reward_rule="fixed", data_rule="radr")

    def _calculate_rewards(self, *args: Any) -> torch.Tensor:
        rewards: torch.Tensor = super()._calculate_rewards(*args)
        outcome = self._spard_outcome
        if outcome is None:
            return rewards
        start = time.perf_counter()
        step = self.state.global_step
        weights = self.placebo_weights[min(step, len(self.placebo_weights) - 1)]
        rng = np.random.default_rng([self.placebo_seed, step, 11])
        sample = outcome.sample_weights.copy()
        informative = np.flatnonzero(~outcome.zero_signal)
        sample[informative] = sample[rng.permutation(informative)]
        scores = rewards.detach().double().cpu().numpy()
        grouped = scores.reshape(-1, self.num_generations, scores.shape[1])
        stats = outcome.stats or {}
        scales = np.array(
            [
                np.nan if stats.get(n, {}).get("scale") is None else stats[n]["scale"]
                for n in self.spard_objectives
            ],
            dtype=float,
        )
        advantages = compute_advantages(
            batch_statistics(grouped), weights, sample, self.placebo_config, scales
        )
        self._spard_outcome = replace(outcome, advantages=advantages, reward_weights=weights)
        self.reward_weights = torch.tensor(weights, dtype=torch.float32)
        self.placebo_history.append(
            {
                "step": step,
                "reward_weights": dict(zip(self.spard_objectives, weights.tolist(), strict=True)),
                "sample_weights": _quantiles(sample[informative]),
            }
        )
        self.placebo_seconds = getattr(self, "placebo_seconds", 0.0) + time.perf_counter() - start
        return rewards


def _quantiles(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return dict.fromkeys(("min", "p10", "p50", "p90", "max"))
    low, p10, p50, p90, high = np.quantile(values, [0, 0.1, 0.5, 0.9, 1.0])
    return {"min": low, "p10": p10, "p50": p50, "p90": p90, "max": high}


def main() -> None:
    parser = argparse.ArgumentParser(description="fit the placebo's walk to SPARD runs")
    parser.add_argument("runs", nargs="+", type=Path, help="SPARD runs' result JSON files")
    parser.add_argument("--out", type=Path, default=PLACEBO_FILE)
    args = parser.parse_args()
    runs = [json.loads(path.read_text()) for path in args.runs]
    if any(run["arm"] != "spard" for run in runs):
        raise SystemExit("calibrate on SPARD runs only")
    calibration = calibrate([run["history"] for run in runs])
    calibration["source"] = "SPARD development runs, seeds " + ", ".join(
        str(run["seed"]) for run in runs
    )
    args.out.write_text(json.dumps(calibration, indent=1) + "\n")
    print(json.dumps(calibration, indent=1))


if __name__ == "__main__":
    main()
