"""The suite's task families: each isolates one trait that real multi-objective rewards have.

A family is built per seed (:func:`make_family`): the seed draws its free parameters (judge
noise, failure rates, which prompt sources score which objective, the rubrics), so a (family,
seed) pair is one task instance, the same for every arm. Objectives are features of
:mod:`benchmarks.efficacy.features`; while training a trainer sees them through a judge (its
units, noise, failures returning NaN, integer rubrics), at evaluation exactly, on [0, 1], on
held-out prompts (:mod:`benchmarks.efficacy.tasks`).

The families cover where each arm is supposed to win, not only SPARD: objectives on unequal
units (GDPO's case), noise-free twins of every noisy family (where plain sums should do), a
sparse objective, one that can only be earned after another, fine-grained next to binary
objectives, and groups of 4, 8 and 16 rollouts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from benchmarks.efficacy.features import FEATURES
from benchmarks.efficacy.tasks import Prompts, PromptSpace

ROLLOUTS_PER_STEP = 256  # prompts x rollouts per step, the same budget whatever the group size


@dataclass(frozen=True)
class ObjectiveSpec:
    """One objective: a true feature on [0, 1] and the judge that scores it while training.

    The judge reports ``units * value + offset``: a 0-10 judge has units 10, a token-count
    penalty ``-|len - target|`` units 7 and offset -7. ``levels`` > 0 rounds the judged value
    to an integer rubric ``0..levels`` (then ``units`` is ignored). ``judge_noise``: Gaussian
    sd in the judge's own units, only on ``noisy_sources`` (None: every source).
    ``failure_rate``: chance that a training score is missing (NaN), as a judge that fails.
    """

    name: str
    feature: str
    units: float = 1.0
    offset: float = 0.0
    levels: int = 0
    judge_noise: float = 0.0
    noisy_sources: tuple[int, ...] | None = None
    failure_rate: float = 0.0

    def judge(self, value: np.ndarray, source: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The training scores a trainer's reward function would return for true ``value``."""
        noise = rng.normal(0.0, self.judge_noise, value.shape) if self.judge_noise else 0.0
        if self.noisy_sources is not None:
            noise = np.where(np.isin(source, self.noisy_sources), noise, 0.0)
        if self.levels:
            judged = np.clip(np.rint(self.levels * value + noise), 0.0, self.levels)
        else:
            judged = self.units * value + self.offset + noise
        if self.failure_rate > 0.0:
            judged = np.where(rng.random(value.shape) < self.failure_rate, np.nan, judged)
        return np.asarray(judged, dtype=float)

    def to_unit_range(self, judged: np.ndarray) -> np.ndarray:
        """Judged scores mapped back to [0, 1] by the judge's known range (noise kept)."""
        if self.levels:
            return judged / self.levels
        return (judged - self.offset) / self.units


@dataclass(frozen=True)
class Family:
    """A task instance: objectives, which sources score which, prompt space, group size."""

    name: str
    trait: str
    objectives: tuple[ObjectiveSpec, ...]
    informs: np.ndarray  # (sources, K) bool: the objectives each prompt source is scored on
    space: PromptSpace
    rollouts: int = 8

    @property
    def objective_names(self) -> tuple[str, ...]:
        """The K objective names, in score order."""
        return tuple(spec.name for spec in self.objectives)

    @property
    def prompts_per_step(self) -> int:
        """Prompts per training step: the same number of rollouts for every group size."""
        return ROLLOUTS_PER_STEP // self.rollouts

    def true_scores(self, prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
        """(P, G, K) true scores on [0, 1]; NaN where a source is not scored on an objective."""
        source = np.repeat(prompts.source, rollouts)
        columns = [
            FEATURES[spec.feature](prompts, completions, rollouts) for spec in self.objectives
        ]
        values = np.where(self.informs[source], np.stack(columns, axis=1), np.nan)
        return values.reshape(-1, rollouts, len(self.objectives))

    def judged_scores(
        self, prompts: Prompts, completions: np.ndarray, rollouts: int, rng: np.random.Generator
    ) -> np.ndarray:
        """(P, G, K) the scores training sees: each objective through its judge."""
        true = self.true_scores(prompts, completions, rollouts)
        source = np.repeat(prompts.source, rollouts).reshape(true.shape[:2])
        judged = np.stack(
            [spec.judge(true[..., k], source, rng) for k, spec in enumerate(self.objectives)],
            axis=-1,
        )
        return np.where(np.isnan(true), np.nan, judged)

    def to_unit_range(self, judged: np.ndarray) -> np.ndarray:
        """(P, G, K) judged scores, each objective mapped back to [0, 1] by its known range."""
        return np.stack(
            [spec.to_unit_range(judged[..., k]) for k, spec in enumerate(self.objectives)],
            axis=-1,
        )


def _spec(name: str) -> ObjectiveSpec:
    """An exact [0, 1] judge of the feature of the same name."""
    return ObjectiveSpec(name, name)


def _everywhere(
    name: str,
    trait: str,
    specs: tuple[ObjectiveSpec, ...],
    *,
    rollouts: int = 8,
    space: PromptSpace | None = None,
) -> Family:
    """A family whose every prompt source is scored on every objective."""
    space = space if space is not None else PromptSpace(3, 5)
    informs = np.ones((space.sources, len(specs)), dtype=bool)
    return Family(name, trait, specs, informs, space, rollouts)


def _speeds(rng: np.random.Generator) -> Family:
    specs = (_spec("format"), _spec("length"), _spec("echo"), _spec("ending"))
    return _everywhere(
        "speeds",
        "objectives learnt at different speeds, all on [0, 1], exact; 6-8 operands",
        specs,
        space=PromptSpace(3, int(rng.integers(6, 9))),
    )


def _unequal_units(rng: np.random.Generator, rollouts: int = 8) -> Family:
    specs = (
        _spec("format"),  # a [0, 1] check
        ObjectiveSpec("keyword", "keyword", levels=10, judge_noise=float(rng.uniform(0.5, 1.0))),
        ObjectiveSpec("length", "length_tokens", units=7.0, offset=-7.0),  # -|len - target|
        _spec("echo"),
        ObjectiveSpec("ending", "ending", units=100.0),  # a 0-100 score
    )
    suffix = "" if rollouts == 8 else f"_g{rollouts}"
    return _everywhere(
        f"unequal_units{suffix}",
        f"a [0,1] check, a 0-10 judge, a token-count penalty, a 0-100 score; G={rollouts}",
        specs,
        rollouts=rollouts,
    )


def _noisy_judge(rng: np.random.Generator, noise: bool = True) -> Family:
    sd = float(rng.uniform(0.6, 1.0))  # drawn in both twins: same instance but the noise
    specs = (
        _spec("format"),
        ObjectiveSpec("keyword", "keyword", judge_noise=sd if noise else 0.0),
        _spec("length"),
        _spec("echo"),
    )
    if noise:
        return _everywhere("noisy_judge", "one judge whose noise sd is 0.6-1.0 on [0, 1]", specs)
    return _everywhere("noisy_judge_clean", "noisy_judge's noise-free twin", specs)


RUBRIC_POOL = ("format", "keyword", "length", "echo", "ending", "no_repeat", "answer")


def _rubric(rng: np.random.Generator, noise: bool = True) -> Family:
    count = int(rng.integers(5, 7))
    chosen = sorted(rng.choice(len(RUBRIC_POOL), size=count, replace=False).tolist())
    sd = float(rng.uniform(0.4, 0.8))
    specs = tuple(
        ObjectiveSpec(RUBRIC_POOL[i], RUBRIC_POOL[i], levels=5, judge_noise=sd if noise else 0.0)
        for i in chosen
    )
    informs = np.ones((4, count), dtype=bool)
    for k, spec in enumerate(specs):
        if spec.feature in ("answer", "echo"):
            informs[1:, k] = False  # only the "technical" category is graded on these
        if spec.feature == "ending":
            informs[:2, k] = False  # only the "creative" categories
    name, trait = (
        ("rubric", "5-6 integer 0-5 judge rubrics, noise sd 0.4-0.8 points, 4 categories")
        if noise
        else ("rubric_clean", "rubric's noise-free twin (integer rubrics, no noise)")
    )
    return Family(name, trait, specs, informs, PromptSpace(4, 5))


def _judge_failures(rng: np.random.Generator) -> Family:
    specs = (
        _spec("format"),
        ObjectiveSpec("keyword", "keyword", failure_rate=float(rng.uniform(0.2, 0.4))),
        ObjectiveSpec("length", "length", failure_rate=float(rng.uniform(0.1, 0.3))),
        ObjectiveSpec("echo", "echo", failure_rate=float(rng.uniform(0.3, 0.5))),
    )
    return _everywhere(
        "judge_failures", "judges that return nothing on 10-50% of single rollouts", specs
    )


def _missing_by_source(rng: np.random.Generator) -> Family:
    specs = tuple(_spec(name) for name in ("format", "keyword", "length", "echo", "ending"))
    informs = np.zeros((4, 5), dtype=bool)
    while not informs.any(axis=0).all():  # every objective scored by some source
        informs = np.zeros((4, 5), dtype=bool)
        for row in informs:
            row[rng.choice(5, size=int(rng.integers(2, 4)), replace=False)] = True
    return Family(
        "missing_by_source",
        "each of 4 prompt sources is scored on only 2-3 of 5 objectives",
        specs,
        informs,
        PromptSpace(4, 5),
    )


def _sparse(rng: np.random.Generator) -> Family:
    specs = (_spec("format"), _spec("answer"), _spec("length"))
    space = PromptSpace(3, 3, str(rng.choice(["+", "*"])))
    return _everywhere(
        "sparse",
        "a sparse binary answer (most groups all wrong) next to dense ones",
        specs,
        space=space,
    )


def _dependent(rng: np.random.Generator) -> Family:
    specs = (_spec("format"), _spec("echo"), _spec("echo_keyword"), _spec("length"))
    return _everywhere(
        "dependent", "an objective that can only be earned once another is learnt", specs
    )


def _fine_and_binary(rng: np.random.Generator) -> Family:
    specs = (_spec("length"), _spec("echo"), _spec("keyword"))
    return _everywhere(
        "fine_binary_g16",
        "a fine-grained length score next to binary checks; G=16",
        specs,
        rollouts=16,
    )


def _saturating(rng: np.random.Generator) -> Family:
    specs = (_spec("stop"), _spec("echo"), _spec("ending"))
    return _everywhere(
        "saturating_g4",
        "an easy objective saturates within a few steps; G=4",
        specs,
        rollouts=4,
        space=PromptSpace(3, int(rng.integers(4, 7))),
    )


def _conflict(rng: np.random.Generator) -> Family:
    specs = (_spec("brevity"), _spec("keyword"), _spec("ending"), _spec("length"))
    return _everywhere(
        "conflict",
        "brevity against content, and keyword against ending: conflicting pairs",
        specs,
    )


BUILDERS: dict[str, Callable[[np.random.Generator], Family]] = {
    "speeds": _speeds,
    "unequal_units": _unequal_units,
    "unequal_units_g4": lambda rng: _unequal_units(rng, rollouts=4),
    "noisy_judge": _noisy_judge,
    "noisy_judge_clean": lambda rng: _noisy_judge(rng, noise=False),
    "rubric": _rubric,
    "rubric_clean": lambda rng: _rubric(rng, noise=False),
    "judge_failures": _judge_failures,
    "missing_by_source": _missing_by_source,
    "sparse": _sparse,
    "dependent": _dependent,
    "fine_binary_g16": _fine_and_binary,
    "saturating_g4": _saturating,
    "conflict": _conflict,
}
FAMILIES: tuple[str, ...] = tuple(BUILDERS)
# Noise-free twins draw their instance from their noisy family's stream.
_STREAM = {"noisy_judge_clean": "noisy_judge", "rubric_clean": "rubric"}


def make_family(name: str, seed: int) -> Family:
    """The instance of family ``name`` for ``seed`` (the same for every arm)."""
    if name not in BUILDERS:
        raise ValueError(f"unknown task family {name!r}; known: {', '.join(FAMILIES)}")
    stream = FAMILIES.index(_STREAM.get(name, name))
    # Its own stream, apart from the training stream of the same seed.
    return BUILDERS[name](np.random.default_rng([seed, 7_919, stream]))


def with_rollouts(family: Family, rollouts: int) -> Family:
    """The same instance with another group size (for tests and quick runs)."""
    return replace(family, rollouts=rollouts)
