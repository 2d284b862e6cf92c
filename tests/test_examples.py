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


@pytest.mark.slow
def test_the_verl_guide_starts_its_service_as_pasted(redis_server):
    import re
    import time

    import httpx

    from tests.servers import free_port

    guide = (Path(__file__).resolve().parents[1] / "examples/verl_spard.md").read_text()
    block = re.search(r"```bash\n(.*?)```", guide, flags=re.DOTALL).group(1)
    (line,) = [line for line in block.splitlines() if "spard serve" in line]
    port = free_port()
    command = line.replace("redis://localhost:6379/0", redis_server.url).rstrip(" &")
    command += f" --port {port}"
    bin_dir = Path(sys.executable).parent
    process = subprocess.Popen(
        ["bash", "-c", f"PATH={bin_dir}:$PATH exec env {command}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(100):
            if process.poll() is not None:
                pytest.fail(f"the guide's service exited: {process.stderr.read()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("the guide's service never became ready")
    finally:
        process.terminate()
        process.wait(timeout=20)
