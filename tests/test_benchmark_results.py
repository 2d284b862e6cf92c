"""Benchmark results say where they came from: when they were written and from which code."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks.harness import provenance, write_result

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(folder: Path, *args: str) -> str:
    command = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def test_a_result_records_its_commit_and_whether_tracked_files_differed(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git(tmp_path, "add", "code.py")
    git(tmp_path, "commit", "-q", "-m", "one")
    clean = provenance(tmp_path)
    assert clean["commit"] == git(tmp_path, "rev-parse", "HEAD")
    assert clean["tree_clean"] is True
    (tmp_path / "untracked.json").write_text("{}")  # results written beside the code
    assert provenance(tmp_path)["tree_clean"] is True
    (tmp_path / "code.py").write_text("x = 2\n")
    assert provenance(tmp_path)["tree_clean"] is False


def test_outside_a_checkout_the_commit_is_null(tmp_path):
    assert provenance(tmp_path)["commit"] is None
    assert provenance(tmp_path)["tree_clean"] is None


def test_write_result_keeps_the_result_and_adds_its_provenance(tmp_path):
    out = tmp_path / "deeper" / "result.json"
    write_result(out, {"benchmark": "x", "cases": [1, 2]})
    written = json.loads(out.read_text())
    assert written["benchmark"] == "x"
    assert written["cases"] == [1, 2]
    assert set(written["provenance"]) == {"written_at", "commit", "tree_clean"}
    assert written["provenance"]["written_at"].endswith("+00:00")
