"""Settings from the environment, the auth default, and `spard serve` refusing bad setups."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from spard.service import Settings


def test_api_keys_parse_from_pairs_or_json(monkeypatch):
    monkeypatch.setenv("SPARD_API_KEYS", "k1=alpha, k2=beta")
    assert Settings().api_keys == {"k1": "alpha", "k2": "beta"}
    monkeypatch.setenv("SPARD_API_KEYS", '{"k3": "gamma"}')
    assert Settings().api_keys == {"k3": "gamma"}


@pytest.mark.parametrize("value", ["k1", "k1=", "=alpha", "k1=al}pha", "k1=a:b"])
def test_bad_api_keys_are_refused(monkeypatch, value):
    monkeypatch.setenv("SPARD_API_KEYS", value)
    with pytest.raises(ValueError, match="api_keys"):
        Settings()


@pytest.mark.parametrize(
    ("options", "required"),
    [
        ({}, False),
        ({"host": "localhost"}, False),
        ({"host": "::1"}, False),
        ({"host": "0.0.0.0"}, True),
        ({"redis_url": "redis://x"}, True),
        ({"api_keys": {"k": "t"}}, True),
        ({"host": "0.0.0.0", "auth_disabled": True}, False),
        ({"auth_disabled": False}, True),
    ],
)
def test_auth_is_off_by_default_only_for_the_local_embedded_store(options, required):
    assert Settings(**options).auth_required is required


def test_check_refuses_unsafe_or_broken_setups():
    with pytest.raises(ValueError, match="SPARD_API_KEYS is empty"):
        Settings(host="0.0.0.0").check()
    with pytest.raises(ValueError, match="several workers need SPARD_REDIS_URL"):
        Settings(workers=2).check()
    Settings(host="0.0.0.0", api_keys={"k": "t"}).check()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "SPARD_API_KEYS is empty"),
        (["--workers", "2"], "several workers need SPARD_REDIS_URL"),
    ],
)
def test_serve_refuses_with_one_clear_line(args, message):
    spard = Path(sys.executable).with_name("spard")
    done = subprocess.run(
        [str(spard), "serve", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
