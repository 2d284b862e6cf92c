"""The spard command line, run as a real subprocess through the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import spard

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "replay_sample.jsonl"


def spard_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("spard", path=str(Path(sys.executable).parent))
    command = [executable] if executable else [sys.executable, "-m", "spard.service.cli"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def test_version():
    done = spard_cli("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"spard {spard.__version__}"


def test_replay_prints_a_weight_table_and_writes_plot_and_json(tmp_path):
    plot, results = tmp_path / "weights.png", tmp_path / "results.jsonl"
    done = spard_cli("replay", str(SAMPLE), "--plot", str(plot), "--json", str(results))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["step", "correctness", "format", "fluency", "zero-signal"]
    rows = [line.split() for line in lines[2:] if line and line.split()[0].isdigit()]
    assert [int(row[0]) for row in rows] == list(range(30))
    assert all(abs(sum(float(v) for v in row[1:4]) - 1.0) < 1e-3 for row in rows)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    logged = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(logged) == 30
    assert set(logged[0]["reward_weights"]) == {
        "correctness",
        "format",
        "fluency",
    }


@pytest.mark.parametrize("strategy", spard.STRATEGIES)
def test_replay_runs_every_strategy(strategy):
    done = spard_cli("replay", str(SAMPLE), "--strategy", strategy, "--set", "warmup=2")
    assert done.returncode == 0, done.stderr


def test_plot_without_a_file_writes_an_ignored_file_named_after_the_input(tmp_path):
    done = spard_cli("replay", str(SAMPLE), "--plot", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    written = tmp_path / "spard-replay-replay_sample.png"
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {written.name}" in done.stdout
    ignored = (Path(__file__).resolve().parents[1] / ".gitignore").read_text().splitlines()
    assert "spard-replay-*.png" in ignored


def test_replay_with_objectives_flag_and_no_header(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"scores": [[[1, 0], [0, 1]]]}\n\n{"scores": [[[1, 1], [0, 1]]]}\n')
    done = spard_cli("replay", str(path), "--objectives", "x,y", "--pawa-mode", "lag")
    assert done.returncode == 0, done.stderr
    assert "x" in done.stdout.splitlines()[0]


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ('{"scores": [[[1]]]}\n', [], "objectives are not named"),
        ('{"objectives": ["a"]}\n{"scores": [[[1], [Infinity]]]}\n', [], "line 2: scores"),
        ('{"objectives": ["a"]}\nnot json\n', [], ":2: not valid JSON"),
        ('{"objectives": ["a"]}\n{"scores": [[[1], [0]]], "step": "x"}\n', [], "'step'"),
        ('{"objectives": ["a"]}\n', [], "no step records"),
        ('{"objectives": ["a"]}\n{"scores": [[[1], [0]]]}\n', ["--set", "warmup=0"], "warmup"),
        ('{"objectives": ["a"]}\n{"scores": [[[1], [0]]]}\n', ["--set", "oops"], "KEY=VALUE"),
    ],
)
def test_replay_errors_are_one_clear_line(tmp_path, content, args, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    done = spard_cli("replay", str(path), *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_replay_of_a_missing_file():
    done = spard_cli("replay", "/nonexistent/file.jsonl")
    assert done.returncode == 2
    assert "no such file" in done.stderr


def test_a_set_typo_names_the_closest_key_and_lists_the_keys():
    done = spard_cli("replay", str(SAMPLE), "--set", "stepsize=0.3")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "unknown key 'stepsize' (did you mean step_size?)" in line
    assert "replay_max_prompts" in line
    bad = spard_cli("replay", str(SAMPLE), "--set", "step_size=-1")
    assert (
        bad.stderr.strip() == "spard replay: error: set.step_size: Input should be greater than 0"
    )


def test_output_paths_are_checked_before_the_replay(tmp_path):
    done = spard_cli("replay", str(SAMPLE), "--plot", str(tmp_path / "missing" / "w.png"))
    assert done.returncode == 2
    assert done.stdout == ""  # refused before the weight table was computed
    assert "--plot: no folder" in done.stderr


def test_replay_help_is_plain_text_with_every_option_explained():
    done = spard_cli("replay", "--help")
    assert done.returncode == 0
    assert "``" not in done.stdout
    assert "(default: spard)" in done.stdout
    assert "step_size" in done.stdout  # --set lists its keys


def test_bench_is_not_installed_and_says_how_to_run_it_from_a_clone(tmp_path):
    """The efficacy benchmark left the package (it needs torch): the old command names the
    new one and imports nothing of the benchmark."""
    done = spard_cli("bench", "--quick", "--out", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert "python -m benchmarks.efficacy" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []
    assert "bench" not in spard_cli("--help").stdout
