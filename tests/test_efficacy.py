"""The efficacy suite: scorers checked by hand, families, statistics, the loop learns, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("scipy")
from spard.efficacy import tasks
from spard.efficacy.families import FAMILIES, make_family
from spard.efficacy.select import leave_one_family_out
from spard.efficacy.stats import build_table, family_balanced_bootstrap, paired_test, win_rate
from spard.efficacy.tasks import DIGITS, EOS, HASH, LETTERS, MAX_LEN, PAD, Prompts
from spard.efficacy.train import Arm, BenchConfig, train_run, zero_signal_groups


def completion(*tokens: int) -> list[int]:
    return (list(tokens) + [EOS] + [PAD] * MAX_LEN)[:MAX_LEN]


def test_original_family_scores_by_hand():
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
    values = make_family("original", 0).score(prompts, completions, rollouts=2, rng=None)
    nan = np.nan
    expected = [
        [[1, nan, 1, 1], [0, nan, 1, 0]],
        [[nan, 1, 1, nan], [nan, 0, 0.5, nan]],
    ]
    np.testing.assert_array_equal(values, np.array(expected))


def test_original_judge_noise_only_on_chat_keyword_and_prompts_are_reproducible():
    family = make_family("original", 0)
    prompts = family.sample_prompts(np.random.default_rng(0), 30)
    again = tasks.sample_prompts(np.random.default_rng(0), 30)
    np.testing.assert_array_equal(prompts.tokens, again.tokens)
    completions = np.tile(completion(HASH, LETTERS[0]), (60, 1))
    clean = family.score(prompts, completions, 2, rng=None)
    noisy = family.score(prompts, completions, 2, rng=np.random.default_rng(1))
    chat = prompts.source == 1
    assert not np.allclose(noisy[chat][..., 1], clean[chat][..., 1])
    np.testing.assert_array_equal(noisy[~chat], clean[~chat])
    np.testing.assert_array_equal(noisy[..., [0, 2, 3]], clean[..., [0, 2, 3]])


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_is_reproducible_and_its_true_scores_are_bounded(name):
    family, again = make_family(name, 3), make_family(name, 3)
    assert family.objective_names == again.objective_names
    np.testing.assert_array_equal(family.informs, again.informs)
    assert family.informs.any(axis=0).all(), "every objective is scored by some source"
    prompts = family.sample_prompts(np.random.default_rng(0), 64)
    completions = np.random.default_rng(1).integers(1, 18, (64 * 4, MAX_LEN))
    true = family.score(prompts, completions, 4, rng=None)
    assert true.shape == (64, 4, len(family.objectives))
    finite = true[np.isfinite(true)]
    assert finite.size
    assert finite.min() >= -1.0 / 6.0 - 1e-12  # length: 1 - |8 - 1| / 6 at worst
    assert finite.max() <= 1.0
    judged = family.score(prompts, completions, 4, rng=np.random.default_rng(2))
    # Judges only add noise or failures where the objective is scored at all.
    assert not np.isfinite(judged[np.isnan(true)]).any()


def test_families_isolate_their_traits():
    rng = np.random.default_rng(0)
    completions = rng.integers(1, 18, (256 * 8, MAX_LEN))
    rubric = make_family("rubric", 0)
    assert 6 <= len(rubric.objectives) <= 8
    prompts = rubric.sample_prompts(rng, 256)
    judged = rubric.score(prompts, completions, 8, rng)
    values = judged[np.isfinite(judged)]
    np.testing.assert_array_equal(values, np.rint(values))
    assert values.min() >= 0
    assert values.max() <= 5
    failures = make_family("judge_failures", 0)
    prompts = failures.sample_prompts(rng, 256)
    missing = np.isnan(failures.score(prompts, completions, 8, rng)).mean(axis=(0, 1))
    assert missing[0] == 0.0
    assert (missing[1:] > 0.05).all()
    verifiable = make_family("verifiable", 0)
    prompts = verifiable.sample_prompts(rng, 256)
    correct = verifiable.score(prompts, completions, 8, rng)[..., :1]
    assert zero_signal_groups(correct).mean() > 0.5  # most groups carry no signal
    assert len(verifiable.objectives) == 2
    assert {len(make_family("rubric", seed).objectives) for seed in range(20)} == {6, 7, 8}


def test_zero_signal_groups_ignore_unscored_objectives():
    scores = np.array(
        [
            [[1.0, np.nan], [1.0, np.nan]],  # constant where scored: no signal
            [[1.0, np.nan], [0.0, np.nan]],  # varies on objective 0
            [[np.nan, np.nan], [np.nan, np.nan]],  # scored on nothing
        ]
    )
    np.testing.assert_array_equal(zero_signal_groups(scores), [True, False, True])


def test_statistics_on_a_known_table():
    runs = []
    for family in ("f1", "f2"):
        for seed in range(4):
            for arm, level in (("static", 0.5), ("better", 0.6)):
                scores = [[0.0, 0.0], [level + 0.01 * seed, level + 0.1 + 0.01 * seed]]
                runs.append(
                    {
                        "arm": arm,
                        "family": family,
                        "seed": seed,
                        "scores": scores,
                        "eval_steps": [0, 10],
                    }
                )
    table = build_table(runs)
    better, static = table.mean[table.arm("better")], table.mean[table.arm("static")]
    assert win_rate(better, static) == 1.0
    assert win_rate(static, better) == 0.0
    estimate, low, high = family_balanced_bootstrap(better - static)
    assert estimate == pytest.approx(0.1)
    assert low == pytest.approx(0.1)
    assert high == pytest.approx(0.1)
    difference, p_value = paired_test(better[0], static[0])
    assert difference == pytest.approx(0.1)
    assert p_value == 1.0
    noisy = better[0] + np.array([0.02, -0.03, 0.01, 0.0])
    assert paired_test(noisy, static[0])[1] < 0.01
    selection = leave_one_family_out(table, ["static", "better"])
    assert selection["frozen"] == "better"
    assert [fold["chosen"] for fold in selection["folds"]] == ["better", "better"]


def test_the_grpo_loop_learns_a_single_objective():
    bench = BenchConfig(steps=30, eval_every=30, objectives=("format",))
    run = train_run(Arm("static", "static"), "original", 0, bench)
    first, last = run["scores"][0][0], run["scores"][-1][0]
    assert first < 0.2
    assert last > 0.9


def test_dynamic_sampling_leaves_fewer_zero_signal_groups():
    bench = BenchConfig(steps=6, eval_every=6, eval_prompts=16)
    plain = train_run(Arm("static", "static"), "verifiable", 0, bench)
    dynamic = train_run(
        Arm("static", "static"),
        "verifiable",
        0,
        BenchConfig(**{**bench.__dict__, "dynamic_sampling": True}),
    )
    assert dynamic["zero_signal_share"] < plain["zero_signal_share"]
    assert dynamic["groups_generated"] > plain["groups_generated"] == 6 * bench.prompts_per_step


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
    assert set(results["summary"]["arms"]) == {"static", "spard", "gdpo"}
    assert len(results["runs"]) == 3 * 3 * 2
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 18
    assert set(results["summary"]["targets"]) >= {"beats_static_on_75pct_of_pairs"}
    text = (tmp_path / "results.md").read_text()
    assert "| static |" in text
    assert "**verifiable**" in text
    for image in ("families.png", "learning_curves.png", "weights.png"):
        assert (tmp_path / image).read_bytes()[:4] == b"\x89PNG"
    assert text in done.stdout
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "spard.cli",
            "bench",
            "--from-runs",
            str(tmp_path / "runs.jsonl"),
            "--out",
            str(tmp_path / "again"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert (tmp_path / "again" / "results.md").read_text() == text


def test_spard_bench_rejects_unknown_names_before_training(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "spard.cli", "bench", "--families", "nope", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "unknown family ['nope']" in done.stderr
    assert not (tmp_path / "runs.jsonl").exists()
