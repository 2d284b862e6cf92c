"""The efficacy benchmark: scorers checked by hand, the GRPO loop learns, quick mode runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
from spard.efficacy.tasks import (
    DIGITS,
    EOS,
    HASH,
    LETTERS,
    MAX_LEN,
    PAD,
    Prompts,
    sample_prompts,
    score,
)
from spard.efficacy.train import BenchConfig, Variant, train_run


def completion(*tokens: int) -> list[int]:
    return (list(tokens) + [EOS] + [PAD] * MAX_LEN)[:MAX_LEN]


def test_scores_by_hand():
    # One math prompt (target length 2, keyword "a", 2 + 3) and one chat prompt (length 3, "b").
    prompts = Prompts(
        tokens=np.zeros((2, 6), dtype=int),
        source=np.array([0, 1]),
        target_length=np.array([2, 3]),
        keyword=np.array([LETTERS[0], LETTERS[1]]),
        answer=np.array([DIGITS[5], DIGITS[5]]),
    )
    completions = np.array(
        [
            completion(HASH, DIGITS[5]),  # math: format, correct, length 2
            completion(DIGITS[5], HASH),  # math: no format, so not correct; length 2
            completion(LETTERS[1], HASH, HASH),  # chat: keyword, length 3
            completion(),  # chat: empty
        ]
    )
    values = score(prompts, completions, rollouts=2, rng=None)
    nan = np.nan
    expected = [
        [[1, nan, 1, 1], [0, nan, 1, 0]],
        [[nan, 1, 1, nan], [nan, 0, 0.5, nan]],
    ]
    np.testing.assert_array_equal(values, np.array(expected))


def test_judge_noise_only_on_chat_keyword_and_prompts_are_reproducible():
    prompts = sample_prompts(np.random.default_rng(0), 30)
    again = sample_prompts(np.random.default_rng(0), 30)
    np.testing.assert_array_equal(prompts.tokens, again.tokens)
    completions = np.tile(completion(HASH, LETTERS[0]), (60, 1))
    clean = score(prompts, completions, 2, rng=None)
    noisy = score(prompts, completions, 2, rng=np.random.default_rng(1))
    chat = prompts.source == 1
    assert not np.allclose(noisy[chat][..., 1], clean[chat][..., 1])
    np.testing.assert_array_equal(noisy[~chat], clean[~chat])
    np.testing.assert_array_equal(noisy[..., [0, 2, 3]], clean[..., [0, 2, 3]])


def test_the_grpo_loop_learns_a_single_objective():
    run = train_run(
        Variant("static", "static"), 0, BenchConfig(steps=30, eval_every=30, objectives=("format",))
    )
    first, last = run["scores"][0][0], run["scores"][-1][0]
    assert first < 0.2
    assert last > 0.9


@pytest.mark.slow
def test_spard_bench_quick_writes_results(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "spard.cli", "bench", "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["summary"]["variants"]) == {"static", "spard", "gdpo"}
    assert len(results["runs"]) == 6
    assert "| static |" in (tmp_path / "results.md").read_text()
    for image in ("learning_curves.png", "weights.png"):
        assert (tmp_path / image).read_bytes()[:4] == b"\x89PNG"
    assert Path(tmp_path / "results.md").read_text() in done.stdout
