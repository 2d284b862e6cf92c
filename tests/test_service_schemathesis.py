"""Schemathesis fuzzes the live OpenAPI document: no request may get a 5xx."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from servers import ServiceProcess


@pytest.mark.slow
def test_no_server_errors_on_the_openapi_document(redis_server):
    env = {"SPARD_API_KEYS": "fuzz-key=fuzzer", "SPARD_KEY_PREFIX": "fuzz"}
    server = ServiceProcess("--redis-url", redis_server.url, env=env).start()
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert executable, "schemathesis is a dev dependency"
    try:
        done = subprocess.run(
            [
                executable,
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "40",
                "--header",
                "Authorization: Bearer fuzz-key",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "passed" in done.stdout
