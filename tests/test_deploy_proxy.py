"""The proxy in front of uvicorn, run for real: Debian's nginx with the Kubernetes proxy
container's own config (deploy/k8s/proxy.yaml; the compose gateway has the same timeouts, as
tests/test_deploy.py checks) in front of `spard serve`. uvicorn bounds no request's read time;
the proxy must cut a client that stalls mid-body while other requests go through."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from servers import ServiceProcess, free_port

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
PROXY_CONF = next(
    doc
    for doc in yaml.safe_load_all((DEPLOY / "k8s/proxy.yaml").read_text())
    if doc and doc["metadata"]["name"] == "spard-proxy"
)["data"]["default.conf"]

pytestmark = pytest.mark.slow  # waits out the 10 s body timeout once


def nginx_binary() -> str:
    binary = shutil.which("nginx")
    if binary is None:
        raise RuntimeError("nginx is not installed: run `make test`, which installs it")
    return binary


def main_config(directory: Path, server_block: str) -> Path:
    """An nginx.conf around ``server_block`` that writes only under ``directory``."""
    temp_paths = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    lines = [
        "daemon off;",
        "worker_processes 1;",
        f"pid {directory / 'nginx.pid'};",
        f"error_log {directory / 'error.log'} info;",
        "events {}",
        "http {",
        "access_log off;",
        *(f"{name}_temp_path {directory / name};" for name in temp_paths),
        server_block,
        "}",
    ]
    path = directory / "nginx.conf"
    path.write_text("\n".join(lines))
    return path


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """`spard serve` on the in-memory store behind nginx with the Kubernetes proxy config
    (only the ports changed); yields the proxy's URL and port."""
    service = ServiceProcess(env={"SPARD_AUTH_DISABLED": "true"}).start()
    port = free_port()
    block = PROXY_CONF.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    block = block.replace("http://127.0.0.1:8000;", f"{service.url};")
    assert str(port) in block
    assert service.url in block
    nginx = subprocess.Popen(
        [nginx_binary(), "-c", str(main_config(tmp_path, block)), "-p", str(tmp_path)],
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(100):
            if nginx.poll() is not None:
                assert nginx.stderr is not None
                raise RuntimeError(f"nginx exited: {nginx.stderr.read().decode()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/proxy-healthz", timeout=1).is_success:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", port
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        service.stop()


def test_the_proxy_serves_and_cuts_a_client_that_stalls_mid_body(proxied):
    url, port = proxied
    assert httpx.get(f"{url}/readyz").status_code == 200
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.sendall(
        b"POST /v1/runs HTTP/1.1\r\nHost: spard\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1000\r\n\r\n{"run_id": "stalled"'
    )
    started = time.monotonic()
    # Meanwhile the service answers others: the stalled body is nginx's, not a worker's.
    created = httpx.post(f"{url}/v1/runs", json={"run_id": "r", "objectives": ["a", "b"]})
    assert created.status_code == 201
    stalled.settimeout(30)
    answer = b""
    while chunk := stalled.recv(4096):  # until nginx closes the connection
        answer += chunk
    waited = time.monotonic() - started
    stalled.close()
    timeout_s = int(PROXY_CONF.split("client_body_timeout ")[1].split("s;")[0])
    assert timeout_s - 1 <= waited <= timeout_s + 5
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert httpx.get(f"{url}/v1/runs/stalled").status_code == 404


def test_the_compose_gateway_config_is_valid_nginx(tmp_path):
    """nginx -t on deploy/nginx.conf (its upstream host pointed at loopback: `spard` resolves
    only on the compose network)."""
    block = (DEPLOY / "nginx.conf").read_text().replace("server spard:8000;", "server 127.0.0.1:9;")
    block = block.replace("listen 8000;", f"listen 127.0.0.1:{free_port()};")
    config = main_config(tmp_path, block)
    done = subprocess.run(
        [nginx_binary(), "-t", "-c", str(config), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
