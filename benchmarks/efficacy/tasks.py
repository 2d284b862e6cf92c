"""The suite's token vocabulary and its prompt space, split into training and held-out prompts.

A prompt is six tokens: ``[source, target length, keyword letter, a, op, b]``. A completion is
up to 8 tokens from ``#``, the digits, the letters a-e and EOS.

Every family enumerates its whole prompt space (sources x 6 target lengths x 5 letters x
operands) and splits it by a fixed hash of the prompt: about a fifth is held out and never
sampled for training, so evaluation measures what the policy learnt to do with a prompt, not
what it memorised. Every single field value (a letter, an operand, a length) still occurs in
training; only its combinations with the other fields are new at evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

PAD, EOS, HASH = 0, 1, 2
DIGITS = np.arange(3, 13)  # "0".."9"
LETTERS = np.arange(13, 18)  # "a".."e"
SOURCE_TOKENS = np.array([18, 19, 20, 28])  # up to four prompt sources (data categories)
LENGTHS = np.arange(21, 27)  # target length 1..6
PLUS, TIMES, MINUS = 27, 29, 30
VOCAB = 31
COMPLETION_TOKENS = np.arange(1, 18)  # EOS, #, digits, letters
MAX_LEN = 8
HELD_OUT_SHARE = 5  # one prompt in five is held out
OPERATIONS: dict[str, tuple[int, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    "+": (PLUS, np.add),
    "*": (TIMES, np.multiply),
    "-": (MINUS, np.subtract),
}


@dataclass(frozen=True)
class Prompts:
    """A batch of prompts: tokens (P, 6) and what the scorers need, each (P,)."""

    tokens: np.ndarray
    source: np.ndarray  # 0..3
    target_length: np.ndarray  # 1..6
    keyword: np.ndarray  # letter token
    operand: np.ndarray  # digit token of a
    answer: np.ndarray  # digit token of (a op b) mod 10

    def take(self, rows: np.ndarray) -> Prompts:
        """The prompts at ``rows``."""
        return Prompts(
            self.tokens[rows],
            self.source[rows],
            self.target_length[rows],
            self.keyword[rows],
            self.operand[rows],
            self.answer[rows],
        )


def held_out(tokens: np.ndarray) -> np.ndarray:
    """(P,) whether each prompt (P, 6) is in the held-out fifth: a multiplicative hash of its
    tokens, the same for every family, seed and arm."""
    key = np.zeros(tokens.shape[0], dtype=np.uint64)
    for column in range(tokens.shape[1]):
        key = key * np.uint64(37) + tokens[:, column].astype(np.uint64)
    mixed = (key * np.uint64(2_654_435_761)) % np.uint64(2**32)
    return np.asarray((mixed >> np.uint64(13)) % np.uint64(HELD_OUT_SHARE) == 0)


@dataclass(frozen=True)
class PromptSpace:
    """Every prompt of a family: ``sources`` sources, operands ``0..operand_range-1``."""

    sources: int
    operand_range: int
    operation: str = "+"

    @cached_property
    def every_prompt(self) -> Prompts:
        """The whole space, in a fixed order."""
        grids = np.meshgrid(
            np.arange(self.sources),
            np.arange(1, 7),
            np.arange(len(LETTERS)),
            np.arange(self.operand_range),
            np.arange(self.operand_range),
            indexing="ij",
        )
        source, target, letter, a, b = (grid.reshape(-1) for grid in grids)
        op_token, apply = OPERATIONS[self.operation]
        tokens = np.stack(
            [
                SOURCE_TOKENS[source],
                LENGTHS[target - 1],
                LETTERS[letter],
                DIGITS[a],
                np.full(source.size, op_token),
                DIGITS[b],
            ],
            axis=1,
        )
        answer = DIGITS[apply(a, b) % 10]
        return Prompts(tokens, source, target, LETTERS[letter], DIGITS[a], answer)

    @cached_property
    def held_out_rows(self) -> np.ndarray:
        """Indices of the held-out prompts."""
        return np.flatnonzero(held_out(self.every_prompt.tokens))

    @cached_property
    def training_rows(self) -> np.ndarray:
        """Indices of the prompts training may sample."""
        return np.flatnonzero(~held_out(self.every_prompt.tokens))

    def sample_training(self, rng: np.random.Generator, count: int) -> Prompts:
        """``count`` training prompts, uniformly (so every source has an equal share)."""
        return self.every_prompt.take(rng.choice(self.training_rows, size=count))

    def evaluation(self, count: int, seed: int) -> Prompts:
        """``count`` distinct held-out prompts (all of them if fewer), fixed by ``seed``."""
        rows = self.held_out_rows
        if rows.size > count:
            rows = np.sort(np.random.default_rng(seed).choice(rows, size=count, replace=False))
        return self.every_prompt.take(rows)
