"""One GRPO training run of the tiny policy on one task instance, with any engine configuration."""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import spard
from benchmarks.efficacy.constant import constant_baseline
from benchmarks.efficacy.families import Family, make_family
from benchmarks.efficacy.policy import Policy
from benchmarks.efficacy.tasks import PAD, Prompts

EVAL_SEED = 20_251_125  # the held-out prompts are the same for every run of a family instance
TRAJECTORY_EVERY = 5  # steps between recorded weights (keeps the committed JSON small)


@dataclass(frozen=True)
class BenchConfig:
    """The compute budget, optimiser and sampling, identical for every arm."""

    steps: int = 200
    eval_every: int = 20
    eval_prompts: int = 192  # distinct held-out prompts (fewer where a family has fewer)
    eval_rollouts: int = 8
    learning_rate: float = 3e-3
    temperature: float = 1.0
    clip: float = 0.2
    epochs: int = 1  # TRL's default num_iterations: one gradient step per batch
    # As ms-swift's --dynamic_sample (the authors used it in every arm): groups without any
    # within-group variation are replaced by fresh prompts, up to max_resample rounds.
    dynamic_sampling: bool = False
    max_resample: int = 3
    objectives: tuple[str, ...] | None = None  # a subset of the family's, None for all
    engine: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Arm:
    """A named engine configuration: a strategy plus SpardConfig overrides."""

    name: str
    strategy: str
    overrides: dict[str, Any] = field(default_factory=dict)
    # Rescale every training score to [0, 1] by its judge's known range before the engine
    # sees it (GRPOavg as a practitioner who knows the units would run it).
    rescale: bool = False

    def config(self, bench: BenchConfig) -> spard.SpardConfig:
        """The engine configuration of this arm under ``bench``'s global overrides."""
        return spard.SpardConfig(**{"strategy": self.strategy, **bench.engine, **self.overrides})

    def identity(self, bench: BenchConfig) -> dict[str, Any]:
        """What this arm runs, resolved: its engine config, the rules a named strategy stands
        for today, whether it rescales, and the engine's source (a fix to a rule's code
        changes no config, so a resume must not reuse runs made before it). A run is reused
        on resume only if this matches."""
        config = self.config(bench)
        return {
            "config": config.model_dump(mode="json"),
            "rules": asdict(config.rules),
            "rescale": self.rescale,
            "engine": engine_source_digest(),
        }


@functools.cache
def engine_source_digest() -> str:
    """A digest of the engine's source files (``spard/*.py``), as installed or in a clone."""
    digest = hashlib.sha256()
    for path in sorted(Path(spard.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def evaluate(
    policy: Policy, family: Family, prompts: Prompts, keep: list[int], bench: BenchConfig
) -> np.ndarray:
    """(K,) true held-out scores: mean over applicable prompts and sampled rollouts."""
    generator = torch.Generator().manual_seed(EVAL_SEED)
    tokens = torch.as_tensor(np.repeat(prompts.tokens, bench.eval_rollouts, axis=0))
    completions = policy.sample(tokens, bench.temperature, generator).numpy()
    values = family.true_scores(prompts, completions, bench.eval_rollouts)[..., keep]
    return np.asarray(np.nanmean(values, axis=(0, 1)))


def grpo_update(
    policy: Policy,
    optimizer: torch.optim.Optimizer,
    tokens: torch.Tensor,
    completions: torch.Tensor,
    advantages: torch.Tensor,
    bench: BenchConfig,
) -> None:
    """Clipped policy-gradient epochs on one batch (token-level ratios, sequence advantages)."""
    mask = (completions != PAD).float()
    old: torch.Tensor | None = None
    for _ in range(bench.epochs):
        log_probs = policy.log_probs(tokens, completions)
        if old is None:  # the sampling policy's: the first epoch's forward pass, detached
            old = log_probs.detach()
        ratio = torch.exp(log_probs - old)
        clipped = torch.clamp(ratio, 1 - bench.clip, 1 + bench.clip)
        gain = torch.minimum(ratio * advantages[:, None], clipped * advantages[:, None])
        loss = -(gain * mask).sum() / mask.sum().clamp_min(1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def zero_signal_groups(scores: np.ndarray) -> np.ndarray:
    """(P,) groups in which no objective varies between rollouts (no GRPO signal at all)."""
    missing = np.isnan(scores)
    highest = np.where(missing, -np.inf, scores).max(axis=1)  # (P, K); -inf where unscored
    lowest = np.where(missing, np.inf, scores).min(axis=1)
    return np.asarray(~np.any(highest > lowest, axis=1))


class _Sampler:
    """Draws scored groups for one run; with dynamic sampling, refills zero-signal groups."""

    def __init__(
        self,
        family: Family,
        policy: Policy,
        seed: int,
        keep: list[int],
        bench: BenchConfig,
        rescale: bool,
    ) -> None:
        self.family, self.policy, self.keep, self.bench = family, policy, keep, bench
        self.rescale = rescale
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.groups_generated = 0

    def _draw(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rollouts = self.family.rollouts
        prompts = self.family.space.sample_training(self.rng, count)
        tokens = np.repeat(prompts.tokens, rollouts, axis=0)
        completions = self.policy.sample(
            torch.as_tensor(tokens), self.bench.temperature, self.generator
        ).numpy()
        scores = self.family.judged_scores(prompts, completions, rollouts, self.rng)
        if self.rescale:
            scores = self.family.to_unit_range(scores)
        scores = scores[..., self.keep]
        self.groups_generated += count
        shape = (count, rollouts, -1)
        return tokens.reshape(shape), completions.reshape(shape), scores

    def batch(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(P, G, 6) prompt tokens, (P, G, L) completions and (P, G, K) training scores."""
        tokens, completions, scores = self._draw(self.family.prompts_per_step)
        if not self.bench.dynamic_sampling:
            return tokens, completions, scores
        for _ in range(self.bench.max_resample):
            dead = np.flatnonzero(zero_signal_groups(scores))
            if dead.size == 0:
                break
            new_tokens, new_completions, new_scores = self._draw(dead.size)
            alive = np.flatnonzero(~zero_signal_groups(new_scores))[: dead.size]
            slots = dead[: alive.size]
            tokens[slots], completions[slots] = new_tokens[alive], new_completions[alive]
            scores[slots] = new_scores[alive]
        return tokens, completions, scores


def train_run(arm: Arm, family_name: str, seed: int, bench: BenchConfig) -> dict[str, Any]:
    """Train from scratch on the (family, seed) instance; held-out curves and trajectories."""
    started = time.perf_counter()
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    family = make_family(family_name, seed)
    names = bench.objectives or family.objective_names
    keep = [family.objective_names.index(name) for name in names]
    policy = Policy()
    optimizer = torch.optim.Adam(policy.parameters(), lr=bench.learning_rate)
    state = spard.init(list(names), arm.config(bench))
    held_out = family.space.evaluation(bench.eval_prompts, EVAL_SEED)
    sampler = _Sampler(family, policy, seed, keep, bench, arm.rescale)
    eval_steps, eval_scores = [0], [evaluate(policy, family, held_out, keep, bench)]
    weights, spread, zero_share = [], [], []
    for step in range(bench.steps):
        tokens, completions, scores = sampler.batch()
        result, state = spard.step(state, scores, step=step, return_advantages=True)
        assert result.advantages is not None
        advantages = torch.as_tensor(result.advantages.reshape(-1), dtype=torch.float32)
        grpo_update(
            policy,
            optimizer,
            torch.as_tensor(tokens.reshape(-1, tokens.shape[-1])),
            torch.as_tensor(completions.reshape(-1, completions.shape[-1])),
            advantages,
            bench,
        )
        zero_share.append(float(result.zero_signal.mean()))
        if step % TRAJECTORY_EVERY == 0:
            weights.append(result.reward_weights.tolist())
            informative = result.sample_weights[~result.zero_signal]
            spread.append(float(informative.std()) if informative.size else 0.0)
        if (step + 1) % bench.eval_every == 0 or step + 1 == bench.steps:
            eval_steps.append(step + 1)
            eval_scores.append(evaluate(policy, family, held_out, keep, bench))
    constant = constant_baseline(family_name, seed, bench.eval_prompts, EVAL_SEED)
    return {
        "family": family_name,
        "arm": arm.name,
        "seed": seed,
        "objectives": list(names),
        "rollouts": family.rollouts,
        # What a policy that ignores its prompt scores on the same held-out prompts.
        "constant_mean": round(constant.mean, 4),
        "constant_per_objective": [round(constant.per_objective[k], 4) for k in keep],
        "eval_steps": eval_steps,
        # Rounded: the committed results stay small, and 1e-4 is far below seed-to-seed spread.
        "scores": np.round(eval_scores, 4).tolist(),  # (evals, K)
        "weights": np.round(weights, 3).tolist(),  # (steps / TRAJECTORY_EVERY, K)
        "data_weight_std": np.round(spread, 3).tolist(),
        "zero_signal_share": round(float(np.mean(zero_share)), 4),
        "groups_generated": sampler.groups_generated,
        "seconds": round(time.perf_counter() - started, 2),
        "bench": asdict(bench),
        "arm_identity": arm.identity(bench),
    }
