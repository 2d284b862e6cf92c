"""The true (noise-free) score features a task family's objectives are built from.

Each feature maps prompts and completions to ``(P*G,)`` scores in [0, 1] (``length`` reaches
-1/6), rows grouped by
prompt (``rollouts`` rows per prompt). Completions are ``(P*G, MAX_LEN)`` token arrays with
PAD after EOS. All vectorised: no loop over prompts or rollouts.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from spard.efficacy.tasks import EOS, HASH, LETTERS, MAX_LEN, PAD, Prompts

Feature = Callable[[Prompts, np.ndarray, int], np.ndarray]


def completion_length(completions: np.ndarray) -> np.ndarray:
    """(B,) tokens before EOS (or MAX_LEN)."""
    is_end = (completions == EOS) | (completions == PAD)
    return np.asarray(np.where(is_end.any(axis=1), is_end.argmax(axis=1), completions.shape[1]))


def _valid(completions: np.ndarray) -> np.ndarray:
    length = completion_length(completions)
    return np.arange(completions.shape[1])[None, :] < length[:, None]


def starts_with_hash(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """Easy: the completion starts with ``#``."""
    return np.asarray(
        ((completions[:, 0] == HASH) & (completion_length(completions) >= 1)).astype(float)
    )


def has_keyword(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """Medium: the prompt's letter appears in the completion."""
    keyword = np.repeat(prompts.keyword, rollouts)
    return np.asarray(
        ((completions == keyword[:, None]) & _valid(completions)).any(axis=1).astype(float)
    )


def length_target(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """Medium: ``1 - |len - target| / 6`` for the prompt's target length (1..6); as the
    original family defined it, so -1/6 for 8 tokens against a target of 1."""
    target = np.repeat(prompts.target_length, rollouts)
    return np.asarray(1.0 - np.abs(completion_length(completions) - target) / 6.0)


def correct_answer(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """Hard, binary: ``#`` then the digit of the prompt's arithmetic answer."""
    length = completion_length(completions)
    answer = np.repeat(prompts.answer, rollouts)
    correct = (completions[:, 0] == HASH) & (length >= 2) & (completions[:, 1] == answer)
    return np.asarray(correct, dtype=float)


def brevity(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """Conflicts with anything that needs room: ``1 - len / MAX_LEN``."""
    return 1.0 - completion_length(completions) / MAX_LEN


def letter_variety(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """Needs room: distinct letters used, out of 3 (capped at 1)."""
    valid = _valid(completions)
    used = (completions[:, :, None] == LETTERS[None, None, :]) & valid[:, :, None]
    return np.asarray(np.minimum(used.any(axis=1).sum(axis=1) / 3.0, 1.0))


def copies_operand(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """Medium: the prompt's first operand digit appears in the completion."""
    operand = np.repeat(prompts.tokens[:, 3], rollouts)
    return np.asarray(
        ((completions == operand[:, None]) & _valid(completions)).any(axis=1).astype(float)
    )


def ends_with_partner(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """Medium-hard: the last token before EOS is the letter two after the prompt's keyword."""
    partner = LETTERS[(np.repeat(prompts.keyword, rollouts) - LETTERS[0] + 2) % len(LETTERS)]
    length = completion_length(completions)
    last = completions[np.arange(len(completions)), np.maximum(length - 1, 0)]
    return np.asarray(((length >= 1) & (last == partner)), dtype=float)


def no_repetition(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """A repetition penalty: 1 minus the share of adjacent repeated tokens (1 when empty)."""
    valid = _valid(completions)
    pairs = valid[:, 1:]
    repeated = (completions[:, 1:] == completions[:, :-1]) & pairs
    count = pairs.sum(axis=1)
    return np.where(count > 0, 1.0 - repeated.sum(axis=1) / np.maximum(count, 1), 1.0)


def clean_stop(prompts: Prompts, completions: np.ndarray, rollouts: int) -> np.ndarray:
    """Easy, saturating: the completion stops with EOS before the token budget runs out."""
    return (completion_length(completions) < MAX_LEN).astype(float)


FEATURES: dict[str, Feature] = {
    "format": starts_with_hash,
    "keyword": has_keyword,
    "length": length_target,
    "correctness": correct_answer,
    "brevity": brevity,
    "variety": letter_variety,
    "copy": copies_operand,
    "ending": ends_with_partner,
    "no_repeat": no_repetition,
    "stop": clean_stop,
}
