"""Settings from the environment, the auth default, and `spard serve` refusing bad setups."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import service_client, service_settings

from spard.service import Settings
from spard.service.settings import describe_error
from tests.servers import RedisServer


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
    if required and "api_keys" not in options:
        # Auth required without a key to check: refused as the settings are made.
        with pytest.raises(ValueError, match="authentication is required"):
            Settings(**options)
        options = {**options, "api_keys": {"k": "t"}}
    assert Settings(**options).auth_required is required


def test_unsafe_or_broken_setups_are_refused_as_the_settings_are_made():
    with pytest.raises(ValueError, match="SPARD_API_KEYS is empty"):
        Settings(host="0.0.0.0")
    with pytest.raises(ValueError, match="several workers need SPARD_REDIS_URL"):
        Settings(workers=2)
    with pytest.raises(ValueError, match="several workers need SPARD_REDIS_URL"):
        Settings.model_validate({"workers": 2})  # every way of making them
    assert Settings(host="0.0.0.0", api_keys={"k": "t"}).auth_required
    assert Settings(workers=2, redis_url="redis://x", api_keys={"k": "t"}).workers == 2


def test_api_keys_from_a_file_count_for_the_auth_check(monkeypatch, tmp_path):
    keys = tmp_path / "api-keys"
    keys.write_text("k1=alpha\n")
    monkeypatch.setenv("SPARD_API_KEYS_FILE", str(keys))
    assert Settings(host="0.0.0.0").api_keys == {"k1": "alpha"}


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


# Secrets from files (Kubernetes mounts Secrets as files; deploy/k8s passes no secret as a
# variable): each *_FILE setting reads its file once, at construction.


def test_api_keys_and_metrics_key_are_read_from_files(monkeypatch, tmp_path):
    keys = tmp_path / "api-keys"
    keys.write_text("k1=alpha,k2=beta\n")  # the newline `echo` leaves is not part of it
    metrics = tmp_path / "metrics-key"
    metrics.write_text("m" * 24 + "\n")
    monkeypatch.setenv("SPARD_API_KEYS_FILE", str(keys))
    monkeypatch.setenv("SPARD_METRICS_KEY_FILE", str(metrics))
    settings = Settings()
    assert settings.api_keys == {"k1": "alpha", "k2": "beta"}
    assert settings.metrics_key == "m" * 24
    assert settings.auth_required
    keys.write_text('{"k3": "gamma"}')
    assert Settings().api_keys == {"k3": "gamma"}


@pytest.mark.parametrize(
    ("variable", "content", "message"),
    [
        ("SPARD_API_KEYS_FILE", None, "SPARD_API_KEYS_FILE: cannot read"),
        ("SPARD_API_KEYS_FILE", "\n", "SPARD_API_KEYS_FILE: .* is empty"),
        ("SPARD_API_KEYS_FILE", "k1", "SPARD_API_KEYS_FILE must be 'key=tenant"),
        ("SPARD_API_KEYS_FILE", "{not json", "SPARD_API_KEYS_FILE is not valid JSON"),
        ("SPARD_API_KEYS_FILE", '{"k": 1}', "SPARD_API_KEYS_FILE must map key strings"),
        ("SPARD_API_KEYS_FILE", "k=a:b", "tenant 'a:b' must match"),
        ("SPARD_METRICS_KEY_FILE", "short", "SPARD_METRICS_KEY_FILE must hold at least 16"),
        ("SPARD_REDIS_PASSWORD_FILE", None, "SPARD_REDIS_PASSWORD_FILE: cannot read"),
        ("SPARD_REDIS_PASSWORD_FILE", "", "SPARD_REDIS_PASSWORD_FILE: .* is empty"),
    ],
)
def test_bad_secret_files_are_refused_naming_the_setting(
    monkeypatch, tmp_path, variable, content, message
):
    path = tmp_path / "secret"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("SPARD_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv(variable, str(path))
    with pytest.raises(ValueError, match=message):
        Settings()


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"SPARD_API_KEYS": "k=a"}, "SPARD_API_KEYS or SPARD_API_KEYS_FILE, not both"),
        ({"SPARD_METRICS_KEY": "m" * 16}, "SPARD_METRICS_KEY or SPARD_METRICS_KEY_FILE"),
        ({"SPARD_REDIS_URL": "redis://:pw@x:6379/0"}, "SPARD_REDIS_URL or SPARD_REDIS_PASSWORD"),
        ({}, "SPARD_REDIS_PASSWORD_FILE is set but SPARD_REDIS_URL is not"),
    ],
)
def test_a_secret_given_twice_or_without_its_use_is_refused(
    monkeypatch, tmp_path, environment, message
):
    secret = tmp_path / "secret"
    secret.write_text("k=tenant" if "SPARD_API_KEYS" in environment else "s" * 16)
    variable = {
        "SPARD_API_KEYS": "SPARD_API_KEYS_FILE",
        "SPARD_METRICS_KEY": "SPARD_METRICS_KEY_FILE",
    }.get(next(iter(environment), ""), "SPARD_REDIS_PASSWORD_FILE")
    for name, value in {**environment, variable: str(secret)}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        Settings()


@pytest.mark.anyio
async def test_the_service_authenticates_to_redis_with_the_password_file(tmp_path):
    server = RedisServer(tmp_path / "redis", password="s3cret-from-a-mounted-file")
    (tmp_path / "redis").mkdir()
    server.start()
    try:
        password = tmp_path / "password"
        password.write_text("s3cret-from-a-mounted-file\n")
        run = {"run_id": "r", "objectives": ["a", "b"]}
        with_file = service_settings("redis", server, redis_password_file=password)
        async with service_client(with_file) as client:
            assert (await client.post("/v1/runs", json=run)).status_code == 201
            assert (await client.get("/v1/runs/r")).status_code == 200
        # The same server without the file: Redis refuses (NOAUTH), the service answers 503.
        async with service_client(service_settings("redis", server)) as client:
            assert (await client.post("/v1/runs", json=run)).status_code == 503
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"SPARD_API_KEYS_FILE": "/nonexistent/api-keys"}, "SPARD_API_KEYS_FILE: cannot read"),
        (
            {"SPARD_METRICS_KEY": "leaked-key-0123456789", "SPARD_METRICS_KEY_FILE": "/x"},
            "set SPARD_METRICS_KEY or SPARD_METRICS_KEY_FILE, not both",
        ),
    ],
)
def test_serve_names_the_bad_setting_in_one_line_without_its_value(environment, message):
    spard = Path(sys.executable).with_name("spard")
    done = subprocess.run(
        [str(spard), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **environment},
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "leaked" not in done.stderr  # a rejected value may be a secret: never echoed


def test_a_settings_error_reads_as_one_line_per_setting_without_values(monkeypatch):
    monkeypatch.setenv("SPARD_API_KEYS", "leaked-key")
    monkeypatch.setenv("SPARD_PORT", "99999")
    with pytest.raises(ValueError, match="2 validation errors") as caught:
        Settings()
    message = describe_error(caught.value)
    assert message == (
        "SPARD_PORT: Input should be less than or equal to 65535; "
        "SPARD_API_KEYS must be 'key=tenant,key2=tenant2' or a JSON object"
    )
    assert describe_error(ValueError("plain")) == "plain"
