"""The README's Python examples run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import spard
from spard.client import SpardClient
from tests.servers import ServiceProcess

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def server() -> Iterator[ServiceProcess]:
    """What ``make serve`` runs: the in-memory store, no auth."""
    process = ServiceProcess().start()
    yield process
    process.stop()


def test_readme_python_blocks_run(server):
    text = README.read_text().replace("http://127.0.0.1:8000", server.url)
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert blocks
    namespaces = []
    for block in blocks:
        namespace: dict[str, object] = {}
        exec(compile(block, str(README), "exec"), namespace)
        namespaces.append(namespace)
    engine = next(ns for ns in namespaces if "state" in ns)
    assert engine["state"].steps_applied == 100
    first_run = next(ns for ns in namespaces if "outcome" in ns)
    assert first_run["outcome"].step == 4


@pytest.mark.slow  # the CLI in subprocesses, matplotlib among them
def test_readme_shell_blocks_after_the_quick_start_run(server, tmp_path):
    """Pasted in order into one shell, as a newcomer would after ``make serve``: the
    environment is this one (a superset of .venv-serve), the port the test server's.

    Known limits: the blocks run in the test's environment, not in ``.venv-serve`` as the
    README says (``source .venv-serve/bin/activate`` is dropped), and ``pip install -e
    '.[plot]'`` is replaced by ``true`` (matplotlib is in the dev extra): a missing package in
    .venv-serve, or that install line failing there, would not be caught here. Building that
    venv in this test would cost a fresh install per run."""
    text = README.read_text().split("## Quick start", 1)[1].split("## Use with TRL", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)[1:]  # after make serve
    script = "set -e\n" + "\n".join(blocks)
    script = script.replace("source .venv-serve/bin/activate", "")
    script = script.replace("pip install -e '.[plot]'", "true")  # in the dev extra
    script = script.replace("localhost:8000", f"127.0.0.1:{server.port}")
    (tmp_path / "examples").symlink_to(README.parent / "examples")
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"spard {spard.__version__}" in done.stdout
    assert '"run_id":"demo"' in done.stdout
    assert '"reward_weights"' in done.stdout
    assert (tmp_path / "spard-replay-replay_sample.png").is_file()


def test_the_readmes_openrlhf_reward_function_scores_through_a_real_service():
    block = next(
        b
        for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
        if "make_reward_func" in b
    )
    server = ServiceProcess(env={"SPARD_AUTH_DISABLED": "true"}).start()
    try:
        with SpardClient(server.url) as client:
            client.create_run(
                ["correctness", "format"], run_id="my-run", streaming={"group_size": 2}
            )
        namespace: dict[str, Any] = {}
        exec(
            compile(block.replace("http://127.0.0.1:8000", server.url), "README", "exec"), namespace
        )
        prompts = ["2+2=", "2+2="]
        answer = namespace["reward_func"](["2+2= <answer>4", "2+2= 5"], prompts, [4, 4])
        # Before any step the weights are the prior (equal): the mean of the two scores.
        assert answer["rewards"].tolist() == [1.0, 0.0]
        assert answer["extra_logs"]["correctness"].tolist() == [1.0, 0.0]
        assert answer["extra_logs"]["spard_weight/format"].tolist() == [0.5, 0.5]
        with SpardClient(server.url) as client:  # both samples were stored: one group of 2
            commit = client.commit("my-run", 0)
        assert commit.observations == 2
        assert commit.sample_weights.shape == (1,)
    finally:
        server.stop()


def test_the_knobs_table_lists_every_config_field():
    import spard

    table = README.read_text().split("## Knobs", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([a-z_]+)`", table))
    assert set(spard.SpardConfig.model_fields) <= listed
