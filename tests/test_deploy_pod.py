"""deploy/k8s's service pod and Redis, run locally as the manifests write them: Redis from the
StatefulSet's start script and redis.conf, `spard serve` with the ConfigMap's settings and the
Secrets as files, and Debian's nginx with the proxy container's config in front. Only the
paths (a pod's mounts) and ports are moved under a temporary folder and to free loopback ports.
uvicorn bounds no request's read time: the proxy must cut a client that stalls mid-body."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
import yaml

from tests.servers import ServiceProcess, free_port

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
OBJECTS = {
    (doc["kind"], doc["metadata"]["name"]): doc
    for path in (DEPLOY / "k8s").glob("*.yaml")
    for doc in yaml.safe_load_all(path.read_text())
    if doc and "metadata" in doc
}
PROXY_CONF = OBJECTS[("ConfigMap", "spard-proxy")]["data"]["default.conf"]
HTTP_TIMEOUT_S = 30  # a loaded 2-core machine can be slow to answer; none of these should fail
API_KEY, METRICS_KEY, PASSWORD = "key-of-team-a", "m" * 24, "0123456789abcdef" * 4

pytestmark = pytest.mark.slow  # waits out the 10 s body timeout once


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed: run `make test`, which installs it")
    return path


def nginx_config(directory: Path, server_block: str) -> Path:
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


def wait_until(check, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if check():
                return
        except (httpx.TransportError, redis.ConnectionError, redis.BusyLoadingError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


@dataclass
class Pod:
    url: str
    proxy_port: int
    redis: redis.Redis


@pytest.fixture(scope="module")
def pod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pod]:
    tmp_path = tmp_path_factory.mktemp("pod")
    # The pod's mounts, under tmp_path: the Secrets' files, Redis's config, auth file and data.
    moved = {
        "/run/secrets/": f"{tmp_path}/secrets/",
        "/run/redis/": f"{tmp_path}/redis-auth/",
        "/etc/redis/": f"{tmp_path}/redis-conf/",
        "dir /data": f"dir {tmp_path}/data",
    }
    redis_port, proxy_port = free_port(), free_port()

    def move(text: str) -> str:
        for old, new in moved.items():
            text = text.replace(old, new)
        return text

    for folder in ("secrets/spard", "secrets/redis", "redis-auth", "redis-conf", "data"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "secrets/spard/api-keys").write_text(f"{API_KEY}=team-a\n")
    (tmp_path / "secrets/spard/metrics-key").write_text(METRICS_KEY)
    (tmp_path / "secrets/redis/password").write_text(PASSWORD)
    redis_conf = OBJECTS[("ConfigMap", "redis")]["data"]["redis.conf"]
    redis_conf = move(redis_conf).replace("port 6379", f"port {redis_port}\nbind 127.0.0.1")
    (tmp_path / "redis-conf/redis.conf").write_text(redis_conf)
    (container,) = OBJECTS[("StatefulSet", "redis")]["spec"]["template"]["spec"]["containers"]
    script = move(container["args"][0])
    script = script.replace("exec redis-server", f"exec {binary('redis-server')}")
    processes: list[subprocess.Popen[bytes]] = []
    service = None
    try:
        processes.append(subprocess.Popen(["sh", "-c", script], stdout=subprocess.DEVNULL))
        store = redis.Redis(port=redis_port, password=PASSWORD)
        wait_until(store.ping, processes[-1], "redis-server")

        config = OBJECTS[("ConfigMap", "spard")]["data"]
        env = {name: move(value) for name, value in config.items()}
        env["SPARD_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        # On a free port (--port over SPARD_PORT). Two workers (the ConfigMap's) start slowly
        # on a loaded 2-core machine: more time than the helper's default.
        service = ServiceProcess(env=env)
        service.start(timeout_s=120)

        block = PROXY_CONF.replace("listen 8080;", f"listen 127.0.0.1:{proxy_port};")
        block = block.replace("http://127.0.0.1:8000;", f"{service.url};")
        nginx = [binary("nginx"), "-c", str(nginx_config(tmp_path, block)), "-p", str(tmp_path)]
        processes.append(subprocess.Popen(nginx))
        url = f"http://127.0.0.1:{proxy_port}"
        wait_until(lambda: httpx.get(f"{url}/proxy-healthz").is_success, processes[-1], "nginx")
        yield Pod(url, proxy_port, store)
    finally:
        if service is not None:
            service.stop()
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=10)


def test_the_pod_serves_through_the_proxy_with_its_secrets_from_files(pod):
    with httpx.Client(base_url=pod.url, timeout=HTTP_TIMEOUT_S) as http:
        assert http.get("/readyz").status_code == 200  # the app's readiness probe
        run = {"run_id": "r", "objectives": ["a", "b"]}
        assert http.post("/v1/runs", json=run).status_code == 401  # keys from the file: on
        team_a = {"Authorization": f"Bearer {API_KEY}"}
        assert http.post("/v1/runs", json=run, headers=team_a).status_code == 201
        scrape = http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_KEY}"})
        assert 'run_id="r"' in scrape.text  # the ServiceMonitor's key sees per-run series
    # Redis: AOF on, the run stored, and nothing without the password.
    assert pod.redis.config_get("appendonly") == {"appendonly": "yes"}
    assert pod.redis.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert pod.redis.keys("*team-a*")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=pod.redis.connection_pool.connection_kwargs["port"]).ping()


def test_the_proxy_cuts_a_client_that_stalls_mid_body(pod):
    stalled = socket.create_connection(("127.0.0.1", pod.proxy_port))
    head = (
        "POST /v1/runs HTTP/1.1\r\nHost: spard\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {API_KEY}\r\nContent-Length: 1000\r\n\r\n"
    )
    stalled.sendall(head.encode() + b'{"run_id": "stalled"')  # and then nothing
    started = time.monotonic()
    # Meanwhile the service answers others: the stalled body is nginx's, not a worker's.
    assert httpx.get(f"{pod.url}/readyz", timeout=HTTP_TIMEOUT_S).status_code == 200
    stalled.settimeout(60)
    answer = b""
    while chunk := stalled.recv(4096):  # until nginx closes the connection
        answer += chunk
    waited = time.monotonic() - started
    stalled.close()
    timeout_s = int(PROXY_CONF.split("client_body_timeout ")[1].split("s;")[0])
    # Closed by the timeout (late only by how loaded the machine is), not held open.
    assert timeout_s - 1 <= waited <= timeout_s + 20
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:80]


def test_the_redis_start_script_refuses_a_password_that_would_need_quoting(tmp_path):
    (container,) = OBJECTS[("StatefulSet", "redis")]["spec"]["template"]["spec"]["containers"]
    (tmp_path / "password").write_text('pass"; rename-command')
    script = container["args"][0].replace("/run/secrets/redis/", f"{tmp_path}/")
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "letters, digits, - and _ only" in done.stderr


def test_the_compose_gateway_config_is_valid_nginx(tmp_path):
    """nginx -t on deploy/nginx.conf (its upstream host pointed at loopback: `spard` resolves
    only on the compose network)."""
    block = (DEPLOY / "nginx.conf").read_text().replace("server spard:8000;", "server 127.0.0.1:9;")
    block = block.replace("listen 8000;", f"listen 127.0.0.1:{free_port()};")
    config = nginx_config(tmp_path, block)
    done = subprocess.run(
        [binary("nginx"), "-t", "-c", str(config), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
