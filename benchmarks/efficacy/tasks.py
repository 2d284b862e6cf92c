"""The token vocabulary of the suite and its first task family (``original`` in the suite).

A prompt is six tokens: ``[source, target length, keyword letter, a, +, b]``. A completion is
up to 8 tokens from ``#``, the digits, the letters a-e and EOS. Four objectives, in [0, 1]:

- ``format`` (easy): the completion starts with ``#``;
- ``keyword`` (medium): the prompt's letter appears; scored by a noisy "judge" on chat prompts;
- ``length`` (medium): ``1 - |len - target| / 6``; short targets conflict with the others,
  which need room for ``#``, the answer and the keyword;
- ``correctness`` (hard): the digit ``(a + b) mod 10`` follows the leading ``#``.

Three prompt sources inform different objectives (the rest are missing, NaN): ``math``
(format, correctness, length), ``chat`` (keyword by the judge, length), ``style`` (format,
keyword, length).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAD, EOS, HASH = 0, 1, 2
DIGITS = np.arange(3, 13)  # "0".."9"
LETTERS = np.arange(13, 18)  # "a".."e"
SOURCES = np.arange(18, 21)  # math, chat, style
LENGTHS = np.arange(21, 27)  # target length 1..6
PLUS = 27
VOCAB = 28
COMPLETION_TOKENS = np.arange(1, 18)  # EOS, #, digits, letters
MAX_LEN = 8
OBJECTIVES = ("format", "keyword", "length", "correctness")
MATH, CHAT, STYLE = 0, 1, 2
# Which objectives each source informs (format, keyword, length, correctness).
INFORMS = np.array(
    [
        [True, False, True, True],
        [False, True, True, False],
        [True, True, True, False],
    ]
)
JUDGE_NOISE = 0.25
OPERAND_RANGE = 5  # a, b in 0..4: 25 sums to learn, hard but learnable in the budget


@dataclass(frozen=True)
class Prompts:
    """A batch of prompts: tokens (P, 6) and what the scorers need."""

    tokens: np.ndarray
    source: np.ndarray  # (P,) 0 math, 1 chat, 2 style
    target_length: np.ndarray  # (P,) 1..6
    keyword: np.ndarray  # (P,) letter token
    answer: np.ndarray  # (P,) digit token of (a + b) mod 10


def sample_prompts(rng: np.random.Generator, count: int) -> Prompts:
    """``count`` prompts from the mixture of sources (equal shares)."""
    source = rng.integers(0, 3, count)
    target = rng.integers(1, 7, count)
    keyword = rng.choice(LETTERS, count)
    a, b = rng.integers(0, OPERAND_RANGE, count), rng.integers(0, OPERAND_RANGE, count)
    tokens = np.stack(
        [SOURCES[source], LENGTHS[target - 1], keyword, DIGITS[a], np.full(count, PLUS), DIGITS[b]],
        axis=1,
    )
    return Prompts(tokens, source, target, keyword, DIGITS[(a + b) % 10])
