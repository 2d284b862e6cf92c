"""The efficacy suite: held-out prompts, scorers by hand, constant policies, judges,
statistics, the selection rule, resuming, and the loop itself."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("scipy")
from benchmarks.efficacy.constant import best_constant, constant_baseline
from benchmarks.efficacy.families import FAMILIES, Family, ObjectiveSpec, make_family
from benchmarks.efficacy.select import learning_families, leave_one_family_out
from benchmarks.efficacy.stats import (
    build_table,
    hierarchical_bootstrap,
    holm,
    paired_test,
    win_rate,
)
from benchmarks.efficacy.suite import run_jobs
from benchmarks.efficacy.tasks import (
    DIGITS,
    EOS,
    HASH,
    LETTERS,
    MAX_LEN,
    PAD,
    PromptSpace,
    held_out,
)
from benchmarks.efficacy.train import EVAL_SEED, Arm, BenchConfig, train_run, zero_signal_groups

ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(*args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    """``python -m benchmarks.efficacy ARGS`` from the clone's root, as its README says."""
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.efficacy", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )


def completion(*tokens: int) -> list[int]:
    return (list(tokens) + [EOS] + [PAD] * MAX_LEN)[:MAX_LEN]


def test_training_never_samples_a_held_out_prompt_and_sees_every_field_value():
    space = PromptSpace(4, 5)
    train = space.sample_training(np.random.default_rng(0), 20_000)
    assert not held_out(train.tokens).any()
    evaluation = space.evaluation(192, 1)
    assert held_out(evaluation.tokens).all()
    assert len({tuple(row) for row in evaluation.tokens}) == 192  # distinct
    assert 0.18 < space.held_out_rows.size / len(space.every_prompt.tokens) < 0.22
    for column in range(6):  # a held-out prompt is a new combination of seen values
        assert set(evaluation.tokens[:, column]) <= set(train.tokens[:, column])


def test_features_by_hand():
    space = PromptSpace(3, 5)
    rows = np.flatnonzero(
        (space.every_prompt.keyword == LETTERS[0])
        & (space.every_prompt.operand == DIGITS[2])
        & (space.every_prompt.target_length == 3)
    )[:1]
    prompts = space.every_prompt.take(rows)  # keyword "a", a = 2, target length 3
    family = Family(
        "hand",
        "",
        tuple(
            ObjectiveSpec(name, name)
            for name in ("format", "keyword", "length", "echo", "ending", "echo_keyword")
        ),
        np.ones((3, 6), dtype=bool),
        space,
    )
    c = LETTERS[2]  # "c", the partner of "a"
    completions = np.array(
        [
            completion(HASH, DIGITS[2], LETTERS[0]),  # all but ending; length 3
            completion(DIGITS[2], LETTERS[0], LETTERS[1]),  # a second letter: no keyword
            completion(HASH, DIGITS[3], DIGITS[2], c),  # echo is the first digit: 3
            completion(),  # empty
        ]
    )
    values = family.true_scores(prompts, completions, rollouts=4)[0]
    expected = [
        [1, 1, 1, 1, 0, 1],
        [0, 0, 1, 1, 0, 0],
        [1, 0, 2 / 3, 0, 1, 0],
        [0, 0, 0, 0, 0, 0],
    ]
    np.testing.assert_allclose(values, expected)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_is_reproducible_and_its_true_scores_are_on_the_unit_range(name):
    family, again = make_family(name, 3), make_family(name, 3)
    assert family.objective_names == again.objective_names
    np.testing.assert_array_equal(family.informs, again.informs)
    assert family.informs.any(axis=0).all(), "every objective is scored by some source"
    assert family.rollouts * family.prompts_per_step == 256
    prompts = family.space.sample_training(np.random.default_rng(0), 64)
    completions = np.random.default_rng(1).integers(1, 18, (64 * 4, MAX_LEN))
    true = family.true_scores(prompts, completions, 4)
    assert true.shape == (64, 4, len(family.objectives))
    finite = true[np.isfinite(true)]
    assert finite.size
    assert finite.min() >= 0.0
    assert finite.max() <= 1.0
    judged = family.judged_scores(prompts, completions, 4, np.random.default_rng(2))
    assert not np.isfinite(judged[np.isnan(true)]).any()


def test_judges_report_their_own_units_and_rescaling_undoes_them():
    family = make_family("unequal_units", 0)
    prompts = family.space.sample_training(np.random.default_rng(0), 128)
    completions = np.random.default_rng(1).integers(1, 18, (128 * 8, MAX_LEN))
    true = family.true_scores(prompts, completions, 8)
    judged = family.judged_scores(prompts, completions, 8, np.random.default_rng(2))
    names = family.objective_names
    length, ending, keyword = names.index("length"), names.index("ending"), names.index("keyword")
    np.testing.assert_allclose(judged[..., length], 7 * true[..., length] - 7)  # -|len - t|
    assert judged[..., length].min() < -3
    np.testing.assert_allclose(judged[..., ending], 100 * true[..., ending])
    assert set(np.unique(judged[..., keyword])) <= set(range(11))  # a 0-10 judge
    rescaled = family.to_unit_range(judged)
    np.testing.assert_allclose(rescaled[..., [length, ending]], true[..., [length, ending]])


def test_noise_free_twins_share_their_instance_and_failures_are_per_rollout():
    for noisy, clean in (("noisy_judge", "noisy_judge_clean"), ("rubric", "rubric_clean")):
        a, b = make_family(noisy, 4), make_family(clean, 4)
        assert a.objective_names == b.objective_names
        np.testing.assert_array_equal(a.informs, b.informs)
        assert any(spec.judge_noise > 0 for spec in a.objectives)
        assert all(spec.judge_noise == 0 for spec in b.objectives)
    family = make_family("judge_failures", 0)
    prompts = family.space.sample_training(np.random.default_rng(0), 256)
    completions = np.random.default_rng(1).integers(1, 18, (256 * 8, MAX_LEN))
    judged = family.judged_scores(prompts, completions, 8, np.random.default_rng(2))
    missing = np.isnan(judged).mean(axis=(0, 1))
    assert missing[0] == 0.0
    assert (missing[1:] > 0.05).all()
    sparse = make_family("sparse", 0)
    prompts = sparse.space.sample_training(np.random.default_rng(0), 256)
    answer = sparse.judged_scores(prompts, completions, 8, np.random.default_rng(2))[..., 1:2]
    assert zero_signal_groups(answer).mean() > 0.5  # most groups all wrong
    assert {make_family(name, 0).rollouts for name in FAMILIES} == {4, 8, 16}


def test_the_best_constant_is_what_always_answering_the_commonest_thing_scores():
    family = make_family("speeds", 0)
    prompts = family.space.evaluation(192, 1)
    constant = best_constant(family, prompts)
    names = family.objective_names
    shares = np.unique(prompts.operand, return_counts=True)[1] / prompts.operand.size
    assert constant.per_objective[names.index("echo")] == pytest.approx(shares.max())
    assert constant.per_objective[names.index("format")] == 1.0
    targets = prompts.target_length
    best_length = max(np.maximum(0, 1 - np.abs(n - targets) / 3).mean() for n in range(9))
    assert constant.per_objective[names.index("length")] == pytest.approx(best_length)
    tiled = np.tile(np.array(constant.mean_completion), (prompts.tokens.shape[0], 1))
    own = np.nanmean(family.true_scores(prompts, tiled, 1), axis=(0, 1)).mean()
    assert constant.mean == pytest.approx(own)
    # No completion of up to two tokens (all 273, tried one by one) beats the search.
    tokens = np.arange(2, 18)
    short = [[], *[[a] for a in tokens], *[[a, b] for a in tokens for b in tokens]]
    for tried in short:
        tiled = np.tile(np.array(completion(*tried)), (prompts.tokens.shape[0], 1))
        value = np.nanmean(family.true_scores(prompts, tiled, 1), axis=(0, 1)).mean()
        assert value <= constant.mean + 1e-12


def runs_of(levels, constant=0.5):
    """Fake runs: ``levels[arm][family]`` is a list of final means over seeds."""
    runs = []
    for arm, families in levels.items():
        for family, values in families.items():
            for seed, value in enumerate(values):
                runs.append(
                    {
                        "arm": arm,
                        "family": family,
                        "seed": seed,
                        "scores": [[0.0, 0.0], [value, value]],
                        "eval_steps": [0, 10],
                        "constant_mean": constant,
                    }
                )
    return runs


def test_statistics_on_a_known_table():
    table = build_table(
        runs_of(
            {
                "static": {"f1": [0.5, 0.6, 0.7, 0.8], "f2": [0.5, 0.5, 0.5, 0.5]},
                "better": {"f1": [0.6, 0.7, 0.8, 0.9], "f2": [0.6, 0.6, 0.6, 0.503]},
            }
        )
    )
    better, static = table.mean[table.arm("better")], table.mean[table.arm("static")]
    rate = win_rate(better, static)
    assert rate["wins"] == pytest.approx(7 / 8)
    assert rate["ties"] == pytest.approx(1 / 8)
    assert rate["rate"] == pytest.approx(7.5 / 8)
    estimate, low, high = hierarchical_bootstrap(better - static)
    assert estimate == pytest.approx((0.1 * 7 + 0.003) / 8)
    assert 0.003 < low < estimate < high <= 0.1 + 1e-12
    # Families are resampled too: f2's near-tie can be drawn twice, so the interval reaches
    # below what resampling seeds within fixed families gives.
    seeds_only = np.random.default_rng(0).integers(0, 4, size=(10_000, 2, 4))
    within = np.take_along_axis((better - static)[None], seeds_only, axis=2).mean(axis=(1, 2))
    assert low < np.percentile(within, 2.5)
    assert hierarchical_bootstrap(np.full((3, 4), 0.2)) == pytest.approx((0.2, 0.2, 0.2))
    np.testing.assert_allclose(table.learning[0, 0], [0.0, 0.1, 0.2, 0.3])
    assert paired_test(better[0], static[0]) == (pytest.approx(0.1), 1.0)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_selection_prefers_the_candidate_that_never_trails_the_better_baseline():
    levels = {
        "static": {"f1": [0.6, 0.6], "f2": [0.6, 0.6], "f3": [0.6, 0.6], "flat": [0.5, 0.5]},
        "gdpo": {"f1": [0.5, 0.5], "f2": [0.7, 0.7], "f3": [0.6, 0.6], "flat": [0.5, 0.5]},
        # Bold wins big on f1 and loses on f2; steady is never behind the better baseline.
        "bold": {"f1": [0.8, 0.8], "f2": [0.62, 0.62], "f3": [0.61, 0.61], "flat": [0.5, 0.5]},
        "steady": {"f1": [0.65, 0.65], "f2": [0.71, 0.71], "f3": [0.62, 0.62], "flat": [0.5, 0.5]},
    }
    table = build_table(runs_of(levels, constant=0.5))
    assert learning_families(table) == ["f1", "f2", "f3"]  # nothing learns on "flat"
    selection = leave_one_family_out(table, ["bold", "steady"])
    assert selection["families_dropped"] == ["flat"]
    assert selection["frozen"] == "steady"
    # Plain mean margins would have chosen bold: (0.2 - 0.08 + 0.01) / 3 > (0.05 + 0.01 + 0.02) / 3
    assert selection["mean_margin"]["bold"] > selection["mean_margin"]["steady"]


def test_runs_in_the_log_are_read_back_not_trained_again(tmp_path):
    bench = BenchConfig(steps=2, eval_every=2, eval_prompts=8)
    arm = Arm("static", "static")
    log = tmp_path / "runs.jsonl"
    first = run_jobs([arm], ["speeds"], [0], bench, workers=1, log=log)
    log.write_text(log.read_text() + '{"arm": "static", "fam')  # killed while writing
    again = run_jobs([arm], ["speeds"], [0], bench, workers=1, log=log)
    assert again == first
    assert len(log.read_text().splitlines()) == 2
    other = run_jobs(
        [arm], ["speeds"], [0], BenchConfig(**{**asdict(bench), "steps": 3}), workers=1, log=log
    )
    assert other[0]["bench"]["steps"] == 3  # another budget is trained, not read back
    changed = Arm("static", "static", {"advantage_mode": "decoupled"})  # same name, other rule
    retrained = run_jobs([changed], ["speeds"], [0], bench, workers=1, log=log)
    assert retrained[0]["arm_identity"]["rules"]["advantages"] == "decoupled"
    assert len(log.read_text().splitlines()) == 4


def test_the_grpo_loop_learns_a_single_objective():
    bench = BenchConfig(steps=30, eval_every=30, eval_prompts=64, objectives=("format",))
    run = train_run(Arm("static", "static"), "speeds", 0, bench)
    first, last = run["scores"][0][0], run["scores"][-1][0]
    assert first < 0.2
    assert last > 0.9


def test_dynamic_sampling_leaves_fewer_zero_signal_groups():
    bench = BenchConfig(steps=6, eval_every=6, eval_prompts=16)
    plain = train_run(Arm("static", "static"), "sparse", 0, bench)
    dynamic = train_run(
        Arm("static", "static"),
        "sparse",
        0,
        BenchConfig(**{**bench.__dict__, "dynamic_sampling": True}),
    )
    assert dynamic["zero_signal_share"] < plain["zero_signal_share"]
    assert dynamic["groups_generated"] > plain["groups_generated"] == 6 * 32


@pytest.mark.slow
def test_the_benchmark_quick_writes_results(tmp_path):
    done = run_benchmark("--quick", "--out", str(tmp_path), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["summary"]["arms"]) == {"static", "spard", "gdpo"}
    assert len(results["runs"]) == 3 * 3 * 2
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 18
    assert "beats static: difference CI above 0" in results["summary"]["targets"]
    quick = results["bench"]["eval_prompts"]
    for run in results["runs"]:  # each run reports its own instance's best constant
        constant = constant_baseline(run["family"], run["seed"], quick, EVAL_SEED)
        assert run["constant_mean"] == round(constant.mean, 4)
    text = (tmp_path / "results.md").read_text()
    assert "| static |" in text
    assert "**missing_by_source** (best constant policy:" in text
    for image in ("families.png", "learning_curves.png", "weights.png"):
        assert (tmp_path / image).read_bytes()[:4] == b"\x89PNG"
    assert text in done.stdout
    again = run_benchmark(
        "--from-runs", str(tmp_path / "runs.jsonl"), "--out", str(tmp_path / "again"), timeout=300
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert (tmp_path / "again" / "results.md").read_text() == text


@pytest.mark.slow  # a fresh interpreter importing torch, scipy and matplotlib
def test_the_benchmark_rejects_unknown_names_before_training(tmp_path):
    done = run_benchmark("--families", "nope", "--out", str(tmp_path), timeout=120)
    assert done.returncode != 0
    assert "unknown family ['nope']" in done.stderr
    assert not (tmp_path / "runs.jsonl").exists()
