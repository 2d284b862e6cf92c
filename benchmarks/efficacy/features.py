"""The true (noise-free) score features a task family's objectives are built from.

Each feature maps prompts and completions to ``(P*G,)`` scores in [0, 1], rows grouped by
prompt (``rollouts`` rows per prompt). Completions are ``(P*G, MAX_LEN)`` token arrays with
PAD after EOS. All vectorised: no loop over prompts or rollouts.

Most features depend on the prompt, so a policy that ignores its input cannot reach them; the
suite reports, for every objective, the best score a constant completion gets
(:mod:`benchmarks.efficacy.constant`) and counts only learning above it. ``format`` and ``stop`` are
the exceptions on purpose: real format rewards are like that.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmarks.efficacy.tasks import DIGITS, EOS, HASH, LETTERS, MAX_LEN, PAD, Prompts

Feature = Callable[[Prompts, np.ndarray, int], np.ndarray]


def completion_length(completions: np.ndarray) -> np.ndarray:
    """(B,) tokens before EOS (or MAX_LEN)."""
    is_end = (completions == EOS) | (completions == PAD)
    return np.asarray(np.where(is_end.any(axis=1), is_end.argmax(axis=1), completions.shape[1]))


def _valid(completions: np.ndarray) -> np.ndarray:
    length = completion_length(completions)
    return np.arange(completions.shape[1])[None, :] < length[:, None]


def _per_rollout(values: np.ndarray, rollouts: int) -> np.ndarray:
    return np.repeat(values, rollouts)


def _contains(completions: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """(B,) whether each completion's valid part holds its row's token."""
    return np.asarray(((completions == tokens[:, None]) & _valid(completions)).any(axis=1))


def starts_with_hash(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """Easy, input-free: the completion starts with ``#``."""
    return np.asarray(
        ((completions[:, 0] == HASH) & (completion_length(completions) >= 1)).astype(float)
    )


def clean_stop(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """Easy, input-free, saturating: the completion ends with EOS within the budget."""
    return (completion_length(completions) < MAX_LEN).astype(float)


def keyword_only(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """Medium: the prompt's letter appears and no other letter does (a constant gets 1/5)."""
    keyword = _per_rollout(prompts.keyword, rollouts)
    letters = (completions[:, :, None] == LETTERS[None, None, :]) & _valid(completions)[:, :, None]
    used = letters.any(axis=1)  # (B, 5)
    own = used[np.arange(len(keyword)), keyword - LETTERS[0]]
    return np.asarray((own & (used.sum(axis=1) == 1)).astype(float))


def length_target(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """Medium, fine-grained: ``max(0, 1 - |len - target| / 3)`` for a target of 1..6."""
    target = _per_rollout(prompts.target_length, rollouts)
    distance = np.abs(completion_length(completions) - target)
    return np.asarray(np.maximum(0.0, 1.0 - distance / 3.0))


def length_tokens(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """The same target as a token-count distance, ``1 - |len - target| / 7`` (a trainer sees
    it as the penalty ``-|len - target|`` in tokens: see ``ObjectiveSpec.units``)."""
    target = _per_rollout(prompts.target_length, rollouts)
    return np.asarray(1.0 - np.abs(completion_length(completions) - target) / 7.0)


def echo_operand(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """Medium: the first digit of the completion is the prompt's operand ``a``."""
    operand = _per_rollout(prompts.operand, rollouts)
    is_digit = (completions >= DIGITS[0]) & (completions <= DIGITS[-1]) & _valid(completions)
    first = np.where(is_digit.any(axis=1), is_digit.argmax(axis=1), 0)
    digit = completions[np.arange(len(completions)), first]
    return np.asarray((is_digit.any(axis=1) & (digit == operand)).astype(float))


def correct_answer(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """Hard, sparse, binary: ``#`` then the digit of ``(a op b) mod 10``."""
    length = completion_length(completions)
    answer = _per_rollout(prompts.answer, rollouts)
    correct = (completions[:, 0] == HASH) & (length >= 2) & (completions[:, 1] == answer)
    return np.asarray(correct, dtype=float)


def ends_with_partner(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """Medium-hard: the last token before EOS is the letter two after the prompt's keyword."""
    keyword = _per_rollout(prompts.keyword, rollouts)
    partner = LETTERS[(keyword - LETTERS[0] + 2) % len(LETTERS)]
    length = completion_length(completions)
    last = completions[np.arange(len(completions)), np.maximum(length - 1, 0)]
    return np.asarray(((length >= 1) & (last == partner)), dtype=float)


def echo_then_keyword(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """Dependent, binary: ``echo`` holds and the keyword letter is the only letter. It cannot
    be earned before ``echo`` is learnt (a constant gets at most 1/(5 x operands))."""
    both = echo_operand(prompts, completions, rollouts) * keyword_only(
        prompts, completions, rollouts
    )
    return np.asarray(both)


def brevity(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """Input-free, conflicts with anything that needs room: ``1 - len / MAX_LEN``."""
    return 1.0 - completion_length(completions) / MAX_LEN


def no_repetition(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """Input-free: 1 minus the share of adjacent repeated tokens (1 when empty)."""
    valid = _valid(completions)
    pairs = valid[:, 1:]
    repeated = (completions[:, 1:] == completions[:, :-1]) & pairs
    count = pairs.sum(axis=1)
    return np.where(count > 0, 1.0 - repeated.sum(axis=1) / np.maximum(count, 1), 1.0)


FEATURES: dict[str, Feature] = {
    "format": starts_with_hash,
    "stop": clean_stop,
    "keyword": keyword_only,
    "length": length_target,
    "length_tokens": length_tokens,
    "echo": echo_operand,
    "answer": correct_answer,
    "ending": ends_with_partner,
    "echo_keyword": echo_then_keyword,
    "brevity": brevity,
    "no_repeat": no_repetition,
}
