"""Score batches for the tests: structured like real rewards (binary, judge, continuous)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

import spard

KINDS = ("binary", "judge", "continuous", "constant", "absent")


@dataclass(frozen=True)
class RunSpec:
    """A reproducible sequence of batches of one shape family."""

    prompts: int
    rollouts: int
    kinds: tuple[str, ...]
    steps: int
    missing: float
    seed: int

    def batches(self) -> list[np.ndarray]:
        rng = np.random.default_rng(self.seed)
        return [self._batch(rng, t) for t in range(self.steps)]

    def _batch(self, rng: np.random.Generator, t: int) -> np.ndarray:
        shape = (self.prompts, self.rollouts)
        columns = []
        for k, kind in enumerate(self.kinds):
            if kind == "binary":
                column = (rng.random(shape) < rng.uniform(0.05, 0.95)).astype(float)
            elif kind == "judge":
                column = np.clip(np.round(rng.normal(5 + 0.2 * t, 2, shape)), 1, 10)
            elif kind == "continuous":
                column = rng.normal(0.1 * t * (k + 1), 1.0, shape)
            elif kind == "constant":
                column = np.full(shape, 0.7)
            else:
                column = np.full(shape, np.nan)
            columns.append(column)
        scores = np.stack(columns, axis=-1)
        if self.missing > 0:
            scores[rng.random(scores.shape) < self.missing] = np.nan
        if np.isnan(scores).all():
            scores[0, 0, -1] = 1.0  # the engine rejects all-missing batches
        return scores


@st.composite
def run_specs(draw: st.DrawFn, max_steps: int = 8) -> RunSpec:
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4))
    return RunSpec(
        prompts=draw(st.integers(1, 7)),
        rollouts=draw(st.integers(2, 6)),
        kinds=tuple(kinds),
        steps=draw(st.integers(1, max_steps)),
        missing=draw(st.sampled_from([0.0, 0.0, 0.15, 0.5])),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def objective_names(count: int) -> list[str]:
    return [f"objective_{k}" for k in range(count)]


def engine_results(
    objectives: list[str], batches: list[np.ndarray], warmup: int
) -> list[spard.StepResult]:
    """The engine's answer to each batch (N, G, K) as steps 0, 1, ... of one fresh run: what a
    service fed the same batches must answer."""
    state = spard.init(objectives, spard.SpardConfig(warmup=warmup))
    results = []
    for t, scores in enumerate(batches):
        result, state = spard.step(state, scores, step=t)
        results.append(result)
    return results
