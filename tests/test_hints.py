"""Errors that name their fix (#26): a config typo gets the closest knob (one helper for the
CLI and the API), a base URL without a scheme or one that is not a SPARD service is refused
at once with the fix, a key sent to a service with auth off is told so, and ``spard serve``
on a busy port names ``SPARD_PORT``."""

from __future__ import annotations

import re
import socket

import httpx
import pytest
from conftest import service_client, service_settings

from spard.cli import main
from spard.client import SpardClient
from spard.client.errors import RunNotFoundError, SpardServiceError
from spard.errors import did_you_mean


def test_did_you_mean_names_the_closest_known_name_or_nothing():
    assert did_you_mean("warmpu", ["warmup", "step_size"]) == " (did you mean warmup?)"
    assert did_you_mean("zzz", ["warmup", "step_size"]) == ""


@pytest.mark.anyio
async def test_a_config_typo_gets_the_closest_knob():
    async with service_client(service_settings("memory", None)) as http:
        body = {"objectives": ["a", "b"], "config": {"warmpu": 2}}
        answer = await http.post("/v1/runs", json=body)
        assert answer.status_code == 422
        assert answer.json()["field"] == "config.warmpu"
        assert "unknown key (did you mean warmup?)" in answer.json()["detail"]
        body = {"objectives": ["a", "b"], "streaming": {"group_sise": 4}}
        answer = await http.post("/v1/runs", json=body)
        assert "did you mean group_size?" in answer.json()["detail"]


@pytest.mark.anyio
async def test_a_key_sent_to_a_service_without_auth_is_told_so():
    async with service_client(service_settings("memory", None)) as http:
        answer = await http.get("/v1/runs/r", headers={"authorization": "Bearer k"})
        assert answer.status_code == 401
        assert "runs without auth" in answer.json()["detail"]
    with_keys = service_settings("memory", None, api_keys={"k1": "t"}, auth_disabled=None)
    async with service_client(with_keys) as http:
        answer = await http.get("/v1/runs/r", headers={"authorization": "Bearer k"})
        assert answer.json()["detail"] == "unknown API key"


@pytest.mark.parametrize("url", ["localhost:8000", "127.0.0.1:8000", "ftp://host"])
def test_a_base_url_without_http_is_refused_at_once(url):
    with pytest.raises(ValueError, match=re.escape("needs http:// or https://")):
        SpardClient(url)


def test_a_base_url_that_is_not_a_spard_service_says_so():
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/v1/runs/real"):  # the service's own "no such run"
            body = {"detail": "run 'real' not found", "field": "run_id"}
            return httpx.Response(404, json=body)
        return httpx.Response(404, json={"detail": "Not Found"})  # a route it does not have

    client = SpardClient("http://127.0.0.1:8000/docs", transport=httpx.MockTransport(answer))
    with pytest.raises(SpardServiceError, match="base_url should be the service's root") as err:
        client.get_run("demo")
    assert not isinstance(err.value, RunNotFoundError)
    with pytest.raises(RunNotFoundError):
        client.get_run("real")


def test_serve_on_a_busy_port_names_spard_port(capsys, monkeypatch):
    pytest.importorskip("uvicorn")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("SPARD_AUTH_DISABLED", "true")
        monkeypatch.setenv("SPARD_PORT", str(port))  # restored after (serve sets it)
        assert main(["serve"]) == 2
    assert f"port {port} on 127.0.0.1 is in use: choose another with SPARD_PORT" in (
        capsys.readouterr().err
    )
