"""The examples run as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
def test_trl_example_runs_offline(tmp_path):
    pytest.importorskip("trl")
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "trl_grpo_spard.py"),
            "--max-steps",
            "3",
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "SPARD at the last step:" in done.stdout
    assert "reward_weights/correctness" in done.stdout
