"""The TRL language-model benchmark's smoke run: the SPARD arm, 5 steps, through a real
``spard serve`` on Redis, with its mid-run checkpoint resumed and its report written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="the trl extra is not installed")
ROOT = Path(__file__).resolve().parents[1]


def _smoke(out: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    """The benchmark's 5-step SPARD arm, as ``--smoke`` runs it."""
    command = [sys.executable, "-m", "benchmarks.trl_lm", "--smoke", "--out", str(out)]
    return subprocess.run(
        [*command, "--cache", str(cache)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.mark.slow
def test_the_smoke_run_trains_resumes_and_reports(tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    done = _smoke(out, cache)
    assert done.returncode == 0, done.stderr[-3000:]
    (result,) = (out / "runs").glob("spard-seed0-*.json")  # named by the protocol's hash
    run = json.loads(result.read_text())
    assert (run["arm"], run["steps"]) == ("spard", 5)
    # The checkpoint at step 2 brought back the curriculum after the service forgot the run.
    assert run["resume"] == {"checkpoint": "checkpoint-2", "state_restored": True, "last_step": 1}
    assert [entry["step"] for entry in run["history"]] == [0, 1, 2, 3, 4]
    assert len(run["step_seconds"]) == 5
    assert [evaluation["step"] for evaluation in run["evals"]] == [0, 1, 2, 3, 4, 5]
    results = json.loads((out / "results.json").read_text())
    spard = results["summary"]["arms"]["spard"]
    assert 0 < spard["overhead_fraction"] < 1
    assert "SPARD's own work per step" in (out / "results.md").read_text()
    assert (out / "held_out.png").stat().st_size > 0
    assert (out / "weights.png").stat().st_size > 0
    assert list((out / "work" / "spard-seed0" / "runs").rglob("events.out.tfevents.*"))
    # A rerun finds the run finished and only re-writes the report.
    again = _smoke(out, cache)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(result.read_text()) == run


def _run(arm: str, seed: int, digest: str, mean: float) -> dict[str, object]:
    from benchmarks.trl_lm.tasks import OBJECTIVES

    scores = dict.fromkeys(OBJECTIVES, mean)
    return {
        "arm": arm,
        "seed": seed,
        "steps": 4,
        "protocol_hash": digest,
        "evals": [
            {"step": 0, "scores": dict.fromkeys(OBJECTIVES, 0.0), "by_category": {"x": {"a": 0.4}}},
            {"step": 4, "scores": scores, "by_category": {"x": {"a": 0.4 * mean}}},
        ],
    }


def test_the_field_report_pairs_field_arms_with_the_frozen_protocols_runs(tmp_path):
    from benchmarks.trl_lm import field_report

    runs = [_run("spard", s, "frozen", 0.5 + 0.01 * s) for s in range(3)]
    runs += [_run("gdpo", s, "frozen", 0.4) for s in range(3)]
    runs += [_run("drw", s, "field", 0.52 + 0.01 * s) for s in range(2)]
    runs += [_run("drw", 9, "stale", 0.0)]  # another protocol's file: never mixed in
    for run in runs:
        (tmp_path / f"{run['arm']}-seed{run['seed']}-{run['protocol_hash']}.json").write_text(
            json.dumps(run)
        )
    page = field_report.write(tmp_path, tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "field.json").read_text())
    drw = summary["arms"]["drw"]
    assert (summary["field_hash"], drw["seeds"]) == ("field", [0, 1])
    assert drw["versus"]["spard"]["difference"] == pytest.approx(0.02)
    assert drw["versus"]["spard"]["seeds"] == 2
    assert drw["versus"]["gdpo"]["difference"] == pytest.approx(0.125)
    assert "grpo_avg_unit" not in drw["versus"]  # no runs of it: no comparison
    assert "| drw | 2 |" in page
    # a run regresses where a category's score ends below half its step 0's (gdpo's 0.16 < 0.2)
    assert "| drw | 0/2 | - |" in page
    assert "| spard | 0/3 | - |" in page
    assert "| gdpo | 3/3 | " + "; ".join(f"{s}: x a 0.40 -> 0.16" for s in range(3)) + " |" in page


def test_the_field_arms_leave_the_frozen_protocol_and_its_hash_alone():
    from benchmarks.trl_lm import protocol

    assert not set(protocol.FIELD_ARMS) & set(protocol.ARMS)
    settings, key = protocol.Settings(), "policy-key"
    frozen = protocol.description(settings, key)
    assert "field_arms" not in frozen
    assert protocol.field_hash(settings, key) != protocol.protocol_hash(settings, key)
    import spard

    assert {arm.strategy for arm in protocol.FIELD_ARMS.values()} <= set(spard.STRATEGIES)


def test_a_run_regresses_where_it_ends_below_half_its_step_zero_score():
    from benchmarks.trl_lm.regressions import regressions, summarise_regressions

    def run(arm: str, seed: int, final: float) -> dict:
        start = {"json": {"correctness": 0.4, "format_ok": 0.8}}
        end = {"json": {"correctness": final, "format_ok": 0.8}}
        evals = [{"step": 0, "by_category": start}, {"step": 160, "by_category": end}]
        return {"arm": arm, "seed": seed, "evals": evals}

    assert regressions(run("spard", 0, 0.2)) == []  # exactly half: kept
    assert regressions(run("spard", 0, 0.19)) == [
        {"category": "json", "objective": "correctness", "step0": 0.4, "final": 0.19}
    ]
    found = summarise_regressions(
        [run("spard", 0, 0.1), run("spard", 1, 0.5), run("gdpo", 0, 0.5), run("other", 0, 0.0)],
        ["spard", "gdpo"],
    )
    assert {arm: (item["runs"], len(item["regressed"])) for arm, item in found.items()} == {
        "spard": (2, 1),
        "gdpo": (1, 0),
    }
