"""The prompts, the pretraining corpus and the reward functions of the TRL benchmark.

Five prompt categories, each a small instruction a real policy is asked for:

- ``arith``: "what is 2 + 3 ?", answered with a ``#### 5`` line (verifiable);
- ``words``: "describe the sea in 4 words ." (a length target);
- ``mention``: "write about a dog and mention red ." (a keyword, scored by a noisy judge);
- ``json``: "give json with name tom and age 7 ." (a format, and values to get right);
- ``chat``: "hello , how are you ?" (free text).

The pretraining corpus answers them imperfectly on purpose (wrong sums, miscounted words,
forgotten keywords, broken JSON, repeated words), so the pretrained policy sometimes succeeds
and GRPO has signal on every objective.

The reward functions are TRL reward functions on decoded text (``completions``, plus the
dataset's ``category`` and ``target`` columns as keyword arguments). Objectives that do not
apply to a prompt's category return ``None`` (TRL makes it NaN, SPARD a missing score).
Evaluation uses the same functions without the judge's noise.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

CATEGORIES = ("arith", "words", "mention", "json", "chat")
EVALUATED = ("arith", "words", "mention", "json")  # chat is trained on, never evaluated
OBJECTIVES = ("correctness", "format_ok", "length", "judge", "repetition")
SUBJECTS = ["sea", "dog", "cat", "city", "tree", "sun", "road", "bird", "house", "rain"]
KEYWORDS = ["red", "blue", "green", "fast", "slow", "big", "small", "warm", "cold", "old"]
NAMES = ["tom", "ann", "bob", "eve", "max", "kim", "leo", "sam", "ivy", "joe"]
FILLER = ["the", "a", "is", "and", "very", "it", "was", "with", "so", "of", "in", "my"]
GREETINGS = ["hello , how are you ?", "hi , what is new ?", "good morning !", "tell me a joke ."]
REPLIES = ["i am fine , thanks .", "not much , and you ?", "good morning to you .", "why not ."]
OPERANDS = range(10)  # arith: every sum a + b of two digits (100 prompts, answers 0-18)
WORD_COUNTS = range(2, 7)
AGES = range(1, 10)
# The length target (words) a correct answer meets: `#### 12` is one word, a JSON answer
# `{"name": "tom", "age": 7}` four; `words` asks its own count; mention and chat about 8.
LENGTH_TARGETS = {"arith": 1, "json": 4, "mention": 8, "chat": 8}
MAX_COMPLETION_TOKENS = 24
JUDGE_NOISE = 1.0  # standard deviation of the training judge's noise, before rounding
JUDGE_SCALE = 5.0  # the judge's range is 0-5; "unit" reward functions divide by this
HELD_OUT_SHARE = 0.2  # of each evaluated category's prompt space, chosen by a hash rank

Prompt = dict[str, Any]  # {"prompt": str, "category": str, "target": str}


def _prompt(category: str, text: str, target: dict[str, Any]) -> Prompt:
    return {"prompt": f"q: {text}\na:", "category": category, "target": json.dumps(target)}


def prompt_space(category: str) -> list[Prompt]:
    """Every distinct prompt of ``category``, in a fixed order."""
    if category == "arith":
        return [
            _prompt(category, f"what is {a} + {b} ?", {"answer": a + b})
            for a in OPERANDS
            for b in OPERANDS
        ]
    if category == "words":
        return [
            _prompt(category, f"describe the {subject} in {count} words .", {"words": count})
            for subject in SUBJECTS
            for count in WORD_COUNTS
        ]
    if category == "mention":
        return [
            _prompt(
                category,
                f"write about the {subject} and mention {keyword} .",
                {"subject": subject, "keyword": keyword},
            )
            for subject in SUBJECTS
            for keyword in KEYWORDS
        ]
    if category == "json":
        return [
            _prompt(
                category, f"give json with name {name} and age {age} .", {"name": name, "age": age}
            )
            for name in NAMES
            for age in AGES
        ]
    return [_prompt(category, text, {}) for text in GREETINGS]


def _rank(prompt: Prompt) -> tuple[int, str]:
    return zlib.crc32(prompt["prompt"].encode()), prompt["prompt"]


def held_out_prompts() -> list[Prompt]:
    """The evaluation set: per evaluated category, the ``HELD_OUT_SHARE`` of its prompt space
    with the lowest CRC-32 of their text (at least 8 each); never in pretraining or GRPO."""
    chosen: list[Prompt] = []
    for category in EVALUATED:
        space = prompt_space(category)
        count = max(8, round(HELD_OUT_SHARE * len(space)))
        chosen += sorted(space, key=_rank)[:count]
    return chosen


_HELD_OUT_TEXTS = frozenset(prompt["prompt"] for prompt in held_out_prompts())


def held_out(prompt: Prompt) -> bool:
    """Whether ``prompt`` is reserved for evaluation."""
    return prompt["prompt"] in _HELD_OUT_TEXTS


def training_space(category: str) -> list[Prompt]:
    """The prompts of ``category`` that pretraining and GRPO may use."""
    return [prompt for prompt in prompt_space(category) if not held_out(prompt)]


def make_prompts(count: int, seed: int) -> list[Prompt]:
    """``count`` training prompts drawn with replacement, the categories in turn: the same list
    for every arm of a seed. Never a held-out prompt."""
    rng = np.random.default_rng(seed)
    spaces = {category: training_space(category) for category in CATEGORIES}
    prompts: list[Prompt] = []
    while len(prompts) < count:
        space = spaces[CATEGORIES[len(prompts) % len(CATEGORIES)]]
        prompts.append(space[int(rng.integers(len(space)))])
    return prompts


def _words(rng: np.random.Generator, count: int, pool: list[str]) -> list[str]:
    return [str(word) for word in rng.choice(pool, size=max(count, 0))]


def demonstration(prompt: Prompt, rng: np.random.Generator) -> str:
    """An imperfect answer to ``prompt`` (the pretraining corpus is made of these)."""
    target, category = json.loads(prompt["target"]), prompt["category"]
    if category == "arith":
        answer = target["answer"] + (int(rng.integers(1, 3)) if rng.random() < 0.5 else 0)
        line = f"#### {answer}" if rng.random() < 0.7 else f"it is {answer}"
        text = line
    elif category == "words":
        count = target["words"] + (int(rng.integers(-2, 5)) if rng.random() < 0.6 else 0)
        text = " ".join(_words(rng, count, SUBJECTS + KEYWORDS + FILLER)) + " ."
    elif category == "mention":
        words = ["the", *_words(rng, int(rng.integers(3, 12)), FILLER + SUBJECTS)]
        for word in (target["subject"], target["keyword"]):
            if rng.random() < 0.5:
                words.insert(int(rng.integers(1, len(words) + 1)), word)
        text = " ".join(words) + " ."
    elif category == "json":
        age = target["age"] + (int(rng.integers(1, 3)) if rng.random() < 0.5 else 0)
        text = f'{{"name": "{target["name"]}", "age": {age}}}'
        if rng.random() < 0.4:  # a broken document: a brace or a quote lost
            drop = int(rng.choice([0, len(text) - 1, text.index('"')]))
            text = text[:drop] + text[drop + 1 :]
    else:
        text = str(rng.choice(REPLIES))
    if rng.random() < 0.25:  # a stutter: the repetition penalty has something to remove
        words = text.split()
        text = " ".join(words + words[-3:])
    return f" {text}"


def corpus(count: int, seed: int) -> list[str]:
    """``count`` prompt + answer documents for pretraining."""
    rng = np.random.default_rng(seed)
    documents = []
    for prompt in make_prompts(count, seed):
        documents.append(prompt["prompt"] + demonstration(prompt, rng))
    return documents


# Rewards --------------------------------------------------------------------------------------
_ANSWER = re.compile(r"####\s*(-?\d+)")


def _answer_line(text: str) -> int | None:
    found = _ANSWER.search(text)
    return int(found[1]) if found else None


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text.strip())
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _word_list(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def correctness(
    completions: list[str], category: list[str], target: list[str], **_: Any
) -> list[float | None]:
    """Verifiable, binary: the ``####`` answer of a sum, the values of a JSON document."""
    scores: list[float | None] = []
    for text, kind, raw in zip(completions, category, target, strict=True):
        goal = json.loads(raw)
        if kind == "arith":
            scores.append(float(_answer_line(text) == goal["answer"]))
        elif kind == "json":
            document = _json_object(text)
            right = document is not None and all(document.get(k) == v for k, v in goal.items())
            scores.append(float(right))
        else:
            scores.append(None)
    return scores


def format_ok(completions: list[str], category: list[str], **_: Any) -> list[float]:
    """Easy, saturates: an answer line for sums, a JSON object for JSON, a full stop else."""
    scores = []
    for text, kind in zip(completions, category, strict=True):
        if kind == "arith":
            scores.append(float(_answer_line(text) is not None))
        elif kind == "json":
            scores.append(float(_json_object(text) is not None))
        else:
            scores.append(float(text.strip().endswith((".", "?", "!"))))
    return scores


def length(completions: list[str], category: list[str], target: list[str], **_: Any) -> list[float]:
    """A length target a correct answer meets: the asked number of words, else the category's
    :data:`LENGTH_TARGETS` (1 for a ``#### 12`` line, 4 for the JSON answer, 8 for prose)."""
    scores = []
    for text, kind, raw in zip(completions, category, target, strict=True):
        goal = json.loads(raw)["words"] if kind == "words" else LENGTH_TARGETS[kind]
        count = len(_word_list(text))
        scores.append(max(0.0, 1.0 - abs(count - goal) / goal))
    return scores


def judge_score(text: str, goal: dict[str, Any]) -> float:
    """The judge's true opinion of a ``mention`` answer, 0-5: the keyword, on topic, some body."""
    words = _word_list(text)
    score = 3.0 * (goal["keyword"] in words) + 1.0 * (goal["subject"] in words)
    return score + float(len(set(words)) >= 6)


def make_judge(noise: float, seed: int, scale: float = 1.0) -> Callable[..., list[float | None]]:
    """The keyword judge: an integer 0-5, with Gaussian noise of ``noise`` before rounding (0
    for evaluation), divided by ``scale`` (1: raw 0-5; :data:`JUDGE_SCALE`: on [0, 1]); only
    ``mention`` prompts are judged."""
    rng = np.random.default_rng(seed)

    def judge(
        completions: list[str], category: list[str], target: list[str], **_: Any
    ) -> list[float | None]:
        scores: list[float | None] = []
        for text, kind, raw in zip(completions, category, target, strict=True):
            if kind != "mention":
                scores.append(None)
                continue
            opinion = judge_score(text, json.loads(raw)) + noise * rng.standard_normal()
            scores.append(float(np.clip(np.rint(opinion), 0, 5)) / scale)
        return scores

    judge.__name__ = "judge"
    return judge


def repetition(completions: list[str], **_: Any) -> list[float]:
    """1 minus the share of repeated words (a stutter costs)."""
    scores = []
    for text in completions:
        words = _word_list(text)
        scores.append(1.0 - (len(words) - len(set(words))) / len(words) if words else 0.0)
    return scores


def reward_functions(
    judge_noise: float, seed: int, judge_scale: float = 1.0
) -> list[Callable[..., list[float | None]]]:
    """The five objectives, in :data:`OBJECTIVES` order, as TRL reward functions; the judge
    divided by ``judge_scale``."""
    functions: list[Callable[..., Any]] = [
        correctness,
        format_ok,
        length,
        make_judge(judge_noise, seed, judge_scale),
        repetition,
    ]
    return functions


def held_out_scores(completions: list[str], prompts: list[Prompt]) -> dict[str, Any]:
    """Noise-free scores on [0, 1] (the judge divided by :data:`JUDGE_SCALE`): ``scores``, the
    mean per objective over the completions it applies to; ``by_category``, the same per
    prompt category."""
    columns = {
        "category": [prompt["category"] for prompt in prompts],
        "target": [prompt["target"] for prompt in prompts],
    }
    kinds = np.array(columns["category"])
    scores: dict[str, float] = {}
    by_category: dict[str, dict[str, float]] = {
        kind: {} for kind in dict.fromkeys(columns["category"])
    }
    for name, function in zip(OBJECTIVES, reward_functions(0.0, 0, JUDGE_SCALE), strict=True):
        values = np.array(function(completions, **columns), dtype=float)  # None -> nan
        scores[name] = float(np.nanmean(values))
        for kind in by_category:
            selected = values[kinds == kind]
            if np.isfinite(selected).any():
                by_category[kind][name] = float(np.nanmean(selected))
    return {"scores": scores, "by_category": by_category}
