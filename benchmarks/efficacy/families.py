"""The suite's task families: each isolates one trait that real multi-objective rewards have.

A family is built per seed (:func:`make_family`): the seed draws its free parameters (judge
noise, failure rates, which prompt sources score which objective, the arithmetic, K), so a
(family, seed) pair is one task instance, the same for every arm. Prompts are the six tokens
of :mod:`spard.efficacy.tasks` (``[source, target length, letter, a, op, b]``); objectives
are features of :mod:`spard.efficacy.features`, seen through a judge while training (noise,
failures returning NaN, integer 0-5 rubrics) and exactly at evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from spard.efficacy import tasks
from spard.efficacy.features import FEATURES
from spard.efficacy.tasks import DIGITS, LENGTHS, LETTERS, PLUS, SOURCES, Prompts

# Tokens beyond the original family's vocabulary (tasks.VOCAB = 28).
FOURTH_SOURCE, TIMES, MINUS = 28, 29, 30
EXTENDED_VOCAB = 31
SOURCE_TOKENS = np.array([*SOURCES, FOURTH_SOURCE])
OPERATIONS: dict[str, tuple[int, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    "+": (PLUS, np.add),
    "*": (TIMES, np.multiply),
    "-": (MINUS, np.subtract),
}
Sampler = Callable[[np.random.Generator, int], Prompts]


@dataclass(frozen=True)
class ObjectiveSpec:
    """One objective: a true feature and the judge that scores it while training.

    ``judge_noise``: Gaussian noise sd (in rubric points for a rubric, else in score units),
    only on ``noisy_sources`` (None: every source). ``failure_rate``: chance that a training
    score is missing (NaN), as a judge that fails to answer. ``rubric``: the judge returns an
    integer 0-5, ``clip(round(5 x + noise), 0, 5)``.
    """

    name: str
    feature: str
    judge_noise: float = 0.0
    noisy_sources: tuple[int, ...] | None = None
    failure_rate: float = 0.0
    rubric: bool = False


@dataclass(frozen=True)
class Family:
    """A task instance: objectives, which sources score which objective, prompt sampler."""

    name: str
    trait: str
    objectives: tuple[ObjectiveSpec, ...]
    informs: np.ndarray  # (sources, K) bool: the objectives each prompt source is scored on
    sampler: Sampler = field(repr=False)
    vocab: int = EXTENDED_VOCAB

    @property
    def objective_names(self) -> tuple[str, ...]:
        """The K objective names, in score order."""
        return tuple(spec.name for spec in self.objectives)

    def sample_prompts(self, rng: np.random.Generator, count: int) -> Prompts:
        """``count`` prompts of this family."""
        return self.sampler(rng, count)

    def score(
        self,
        prompts: Prompts,
        completions: np.ndarray,
        rollouts: int,
        rng: np.random.Generator | None,
    ) -> np.ndarray:
        """(P, G, K) scores; with ``rng`` as the training judges give them (noise, NaN
        failures, 0-5 rubrics), without it the true scores in [0, 1]. NaN where a source is
        not scored on an objective."""
        source = np.repeat(prompts.source, rollouts)
        columns = []
        for spec in self.objectives:
            value = FEATURES[spec.feature](prompts, completions, rollouts)
            if rng is not None:
                value = _judge(spec, value, source, rng)
            columns.append(value)
        values = np.where(self.informs[source], np.stack(columns, axis=1), np.nan)
        return values.reshape(-1, rollouts, len(self.objectives))


def _judge(
    spec: ObjectiveSpec, value: np.ndarray, source: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    if spec.rubric:
        noise = rng.normal(0.0, spec.judge_noise, value.shape)
        value = np.clip(np.rint(5.0 * value + noise), 0.0, 5.0)
    elif spec.judge_noise > 0.0:
        judged = value + rng.normal(0.0, spec.judge_noise, value.shape)
        noisy = np.ones_like(value, dtype=bool)
        if spec.noisy_sources is not None:
            noisy = np.isin(source, spec.noisy_sources)
        value = np.where(noisy, judged, value)
    if spec.failure_rate > 0.0:
        value = np.where(rng.random(value.shape) < spec.failure_rate, np.nan, value)
    return value


def sample_prompts(
    rng: np.random.Generator,
    count: int,
    *,
    source_probs: tuple[float, ...],
    operand_range: int,
    operation: str,
) -> Prompts:
    """Prompts over ``len(source_probs)`` sources (at most 4) with ``a op b mod 10`` answers."""
    source = rng.choice(len(source_probs), size=count, p=np.asarray(source_probs))
    target = rng.integers(1, 7, count)
    keyword = rng.choice(LETTERS, count)
    a, b = rng.integers(0, operand_range, count), rng.integers(0, operand_range, count)
    op_token, apply = OPERATIONS[operation]
    tokens = np.stack(
        [
            SOURCE_TOKENS[source],
            LENGTHS[target - 1],
            keyword,
            DIGITS[a],
            np.full(count, op_token),
            DIGITS[b],
        ],
        axis=1,
    )
    return Prompts(tokens, source, target, keyword, DIGITS[apply(a, b) % 10])


def _sampler(
    sources: int, rng: np.random.Generator, operand_range: int = 5, operation: str = "+"
) -> Sampler:
    del rng  # equal shares: the draw is kept in the signature for families that vary them
    return partial(
        sample_prompts,
        source_probs=tuple([1.0 / sources] * sources),
        operand_range=operand_range,
        operation=operation,
    )


def _everywhere(sources: int, k: int) -> np.ndarray:
    return np.ones((sources, k), dtype=bool)


def _scored_everywhere(
    name: str, trait: str, specs: tuple[ObjectiveSpec, ...], sampler: Sampler
) -> Family:
    """A family of 3 prompt sources, each scored on every objective."""
    return Family(name, trait, specs, _everywhere(3, len(specs)), sampler)


def _original(rng: np.random.Generator) -> Family:
    del rng  # today's family, unchanged (tasks.py): the one the earlier defaults were tuned on
    specs = (
        ObjectiveSpec("format", "format"),
        ObjectiveSpec("keyword", "keyword", tasks.JUDGE_NOISE, noisy_sources=(tasks.CHAT,)),
        ObjectiveSpec("length", "length"),
        ObjectiveSpec("correctness", "correctness"),
    )
    return Family(
        "original",
        "the earlier single benchmark: mixed speeds, sources, a noisy chat judge",
        specs,
        tasks.INFORMS,
        tasks.sample_prompts,
        tasks.VOCAB,
    )


def _saturating(rng: np.random.Generator) -> Family:
    specs = (
        ObjectiveSpec("stop", "stop"),
        ObjectiveSpec("copy", "copy"),
        ObjectiveSpec("ending", "ending", judge_noise=float(rng.uniform(0.0, 0.2))),
    )
    sampler = _sampler(3, rng, operand_range=int(rng.integers(4, 9)))
    return _scored_everywhere(
        "saturating", "an easy objective saturates within a few steps", specs, sampler
    )


def _late_bloomer(rng: np.random.Generator) -> Family:
    operation = str(rng.choice(["+", "*", "-"]))
    specs = (
        ObjectiveSpec("format", "format"),
        ObjectiveSpec("keyword", "keyword", judge_noise=0.2),
        ObjectiveSpec("correctness", "correctness"),
    )
    sampler = _sampler(3, rng, operand_range=int(rng.integers(5, 8)), operation=operation)
    return _scored_everywhere(
        "late_bloomer",
        "a hard objective with almost no signal until the easy ones are learnt",
        specs,
        sampler,
    )


def _conflict(rng: np.random.Generator) -> Family:
    specs = (
        ObjectiveSpec("brevity", "brevity"),
        ObjectiveSpec("variety", "variety"),
        ObjectiveSpec("keyword", "keyword", judge_noise=float(rng.uniform(0.0, 0.3))),
    )
    return _scored_everywhere(
        "conflict", "brevity against letter variety: a conflicting pair", specs, _sampler(3, rng)
    )


def _noisy_judge(rng: np.random.Generator) -> Family:
    specs = (
        ObjectiveSpec("format", "format"),
        ObjectiveSpec("keyword", "keyword", judge_noise=float(rng.uniform(0.7, 1.2))),
        ObjectiveSpec("length", "length"),
        ObjectiveSpec("copy", "copy"),
    )
    return _scored_everywhere(
        "noisy_judge",
        "one judge whose noise is as large as the score range",
        specs,
        _sampler(3, rng),
    )


def _judge_failures(rng: np.random.Generator) -> Family:
    specs = (
        ObjectiveSpec("format", "format"),
        ObjectiveSpec(
            "keyword", "keyword", judge_noise=0.2, failure_rate=float(rng.uniform(0.2, 0.4))
        ),
        ObjectiveSpec("length", "length", failure_rate=float(rng.uniform(0.1, 0.3))),
        ObjectiveSpec("copy", "copy", failure_rate=float(rng.uniform(0.3, 0.5))),
    )
    return _scored_everywhere(
        "judge_failures", "judges that fail (NaN) on 10-50% of rollouts", specs, _sampler(3, rng)
    )


def _missing_by_source(rng: np.random.Generator) -> Family:
    specs = (
        ObjectiveSpec("format", "format"),
        ObjectiveSpec("keyword", "keyword", judge_noise=0.2),
        ObjectiveSpec("length", "length"),
        ObjectiveSpec("copy", "copy"),
        ObjectiveSpec("ending", "ending"),
    )
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
        _sampler(4, rng),
    )


RUBRIC_POOL = (
    "format",
    "keyword",
    "length",
    "copy",
    "no_repeat",
    "ending",
    "variety",
    "correctness",
)


def _rubric(rng: np.random.Generator) -> Family:
    count = int(rng.integers(6, 9))
    chosen = sorted(rng.choice(len(RUBRIC_POOL), size=count, replace=False).tolist())
    noise = float(rng.uniform(0.4, 0.8))
    specs = tuple(
        ObjectiveSpec(RUBRIC_POOL[i], RUBRIC_POOL[i], judge_noise=noise, rubric=True)
        for i in chosen
    )
    informs = _everywhere(4, count)
    for k, spec in enumerate(specs):
        if spec.feature == "correctness":
            informs[1:, k] = False  # only the "technical" category is graded on correctness
        if spec.feature == "variety":
            informs[:2, k] = False  # only the "creative" categories
    return Family(
        "rubric",
        "6-8 integer 0-5 judge rubrics over 4 prompt categories (the paper's setting)",
        specs,
        informs,
        _sampler(4, rng),
    )


def _verifiable(rng: np.random.Generator) -> Family:
    specs = (ObjectiveSpec("correctness", "correctness"), ObjectiveSpec("format", "format"))
    return _scored_everywhere(
        "verifiable",
        "binary verifiable correctness: most groups are all-wrong (zero signal)",
        specs,
        _sampler(3, rng, operand_range=int(rng.integers(4, 6))),
    )


BUILDERS: dict[str, Callable[[np.random.Generator], Family]] = {
    "original": _original,
    "saturating": _saturating,
    "late_bloomer": _late_bloomer,
    "conflict": _conflict,
    "noisy_judge": _noisy_judge,
    "judge_failures": _judge_failures,
    "missing_by_source": _missing_by_source,
    "rubric": _rubric,
    "verifiable": _verifiable,
}
FAMILIES: tuple[str, ...] = tuple(BUILDERS)


def make_family(name: str, seed: int) -> Family:
    """The instance of family ``name`` for ``seed`` (the same for every arm)."""
    if name not in BUILDERS:
        raise ValueError(f"unknown task family {name!r}; known: {', '.join(FAMILIES)}")
    # Its own stream, apart from the training stream of the same seed.
    return BUILDERS[name](np.random.default_rng([seed, 7_919, FAMILIES.index(name)]))
