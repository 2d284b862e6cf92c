"""What a policy that ignores its prompt can score: the best constant completion.

For a family instance and its held-out prompts, a beam search over completions (every prefix
of ``#``, digits and letters, ended by EOS) finds the single completion with the highest mean
over objectives, and, separately, the best one for each objective. The suite reports learning
as the score above these: a run whose policy answers the same thing to every prompt gets 0.
A beam search finds a lower bound of the true best constant; wider beams (32, 64, 128) found
at most 0.001 more on the families checked, and the tests check it against optima found by
hand and against every completion of up to two tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from benchmarks.efficacy.families import Family, make_family
from benchmarks.efficacy.tasks import EOS, MAX_LEN, PAD, Prompts

BEAM_WIDTH = 16
EXTENSIONS = np.arange(2, 18)  # '#', digits, letters: every completion token but EOS


@dataclass(frozen=True)
class ConstantBaseline:
    """The best constant completions of one family instance on its held-out prompts."""

    mean: float  # the best mean over objectives one completion reaches
    mean_completion: tuple[int, ...]
    per_objective: tuple[float, ...]  # (K,) each objective's best, each by its own completion


def _finished(prefixes: np.ndarray) -> np.ndarray:
    """(B, MAX_LEN) completions: each prefix, then EOS if there is room, then PAD."""
    count, length = prefixes.shape
    out = np.full((count, MAX_LEN), PAD, dtype=np.int64)
    out[:, :length] = prefixes
    if length < MAX_LEN:
        out[:, length] = EOS
    return out


def _scores(family: Family, prompts: Prompts, completions: np.ndarray) -> np.ndarray:
    """(B, K) true score of each constant completion, averaged over the scored prompts."""
    count = completions.shape[0]
    tiled = np.tile(completions, (prompts.tokens.shape[0], 1))  # each prompt gets all B
    values = family.true_scores(prompts, tiled, count)  # (P, B, K)
    return np.asarray(np.nanmean(values, axis=0))


def _beam(family: Family, prompts: Prompts, objective: int | None) -> tuple[float, np.ndarray]:
    """The best constant for one objective (None: the mean over objectives) and its tokens."""

    def rank(values: np.ndarray) -> np.ndarray:
        return values.mean(axis=1) if objective is None else values[:, objective]

    empty = _finished(np.zeros((1, 0), dtype=np.int64))
    best_value, best = float(rank(_scores(family, prompts, empty))[0]), empty[0]
    beam = np.zeros((1, 0), dtype=np.int64)
    for _ in range(MAX_LEN):
        grown = np.concatenate(
            [np.repeat(beam, EXTENSIONS.size, axis=0), np.tile(EXTENSIONS, beam.shape[0])[:, None]],
            axis=1,
        )
        value = rank(_scores(family, prompts, _finished(grown)))
        order = np.argsort(-value, kind="stable")
        if value[order[0]] > best_value:
            best_value, best = float(value[order[0]]), _finished(grown[order[:1]])[0]
        beam = grown[order[:BEAM_WIDTH]]
    return best_value, best


def best_constant(family: Family, prompts: Prompts) -> ConstantBaseline:
    """The best constant completions of ``family`` on ``prompts`` (see the module doc)."""
    mean, completion = _beam(family, prompts, None)
    per_objective = tuple(_beam(family, prompts, k)[0] for k in range(len(family.objectives)))
    return ConstantBaseline(mean, tuple(int(t) for t in completion), per_objective)


@lru_cache(maxsize=64)
def constant_baseline(
    family_name: str, seed: int, eval_prompts: int, eval_seed: int
) -> ConstantBaseline:
    """:func:`best_constant` of an instance on its evaluation prompts (cached per process)."""
    family = make_family(family_name, seed)
    return best_constant(family, family.space.evaluation(eval_prompts, eval_seed))
