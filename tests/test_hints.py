"""Errors that name their fix (#26): a config typo gets the closest knob (one helper for the
CLI and the API), a base URL without a scheme or one that is not a SPARD service is refused
at once with the fix, a key sent to a service with auth off is told so, and ``spard serve``
on a busy port names ``SPARD_PORT``."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from conftest import service_client, service_settings

from spard.client import SpardClient
from spard.client.errors import RunNotFoundError, SpardServiceError
from spard.errors import did_you_mean
from spard.service.cli import main


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
        # A top-level key of the body too; a name close to none gets no guess.
        answer = await http.post("/v1/runs", json={"objectives": ["a", "b"], "confg": {}})
        assert answer.status_code == 422
        assert answer.json()["field"] == "confg"
        assert answer.json()["detail"].endswith("(did you mean config?)")
        answer = await http.post("/v1/runs", json={"objectives": ["a", "b"], "zzz": 1})
        assert "did you mean" not in answer.json()["detail"]


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


PAGE = "<!doctype html><html><head><title>Welcome</title></head><body>" + "x" * 5000


class _HtmlHost(BaseHTTPRequestHandler):
    """Some other web server: a 200 page for GET, 405 for POST, 501 for DELETE, all HTML."""

    def _page(self, status: int) -> None:
        body = PAGE.encode()
        self.send_response(status)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._page(200)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self._page(405)

    def do_DELETE(self) -> None:
        self._page(501)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def html_host() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HtmlHost)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("call", "status"),
    [
        (lambda c: c.get_run("demo"), 200),
        (lambda c: c.create_run(["a", "b"], run_id="demo"), 405),
        (lambda c: c.delete_run("demo"), 501),
    ],
)
def test_a_host_answering_html_is_not_a_spard_service(html_host, call, status):
    client = SpardClient(html_host, retries=0)
    with pytest.raises(SpardServiceError, match="not a path of a SPARD service") as err:
        call(client)
    client.close()
    assert err.value.status_code == status
    message = str(err.value)
    assert "text/html, not JSON: <!doctype html><html><head><title>Welcome" in message
    assert len(message) < 500  # the page cut short, not pasted whole


@pytest.mark.anyio
async def test_the_async_client_says_so_too(html_host):
    from spard.client import AsyncSpardClient

    async with AsyncSpardClient(html_host, retries=0) as client:
        with pytest.raises(SpardServiceError, match="not a path of a SPARD service"):
            await client.get_run("demo")


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
