"""The request gate (issue 24, items 14 and 16): a stalled body times out with 408, an
unauthenticated request is refused before its body is read, and a streamed (chunked) body over
SPARD_MAX_BODY_BYTES is a 413 on every route."""

from __future__ import annotations

import asyncio
import time

import pytest
from conftest import service_client, service_settings

pytestmark = pytest.mark.anyio
OBJECTIVES = ["a", "b"]


async def stalled_body():
    yield b'{"objectives": ["a", '
    await asyncio.sleep(3600)  # the rest never comes


async def test_a_stalled_body_times_out_with_408():
    settings = service_settings("memory", None, body_timeout_s=0.3)
    async with service_client(settings) as client:
        started = time.perf_counter()
        answer = await asyncio.wait_for(client.post("/v1/runs", content=stalled_body()), 10)
        assert answer.status_code == 408
        assert answer.json()["field"] == "body"
        assert time.perf_counter() - started < 5
        created = await client.post("/v1/runs", json={"run_id": "ok", "objectives": OBJECTIVES})
        assert created.status_code == 201


async def test_a_request_without_credentials_is_refused_before_its_body_is_read():
    settings = service_settings("memory", None, auth_disabled=None, api_keys={"k" * 20: "t"})
    async with service_client(settings) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            answer = await asyncio.wait_for(
                client.post("/v1/runs", content=stalled_body(), headers=headers), 10
            )
            assert answer.status_code == 401
            assert answer.json()["field"] == "Authorization"
        good = {"Authorization": "Bearer " + "k" * 20}
        created = await client.post("/v1/runs", json={"objectives": OBJECTIVES}, headers=good)
        assert created.status_code == 201
        assert (await client.get("/healthz")).status_code == 200  # no key needed there


@pytest.mark.parametrize("path", ["/v1/runs", "/v1/runs/r/steps"])
async def test_with_two_authorization_headers_the_gate_and_the_handler_read_the_same_one(path):
    """The first header decides everywhere: the gate does not refuse what the handler would
    accept, nor let through what it would refuse."""
    good, bad = ("Bearer " + "k" * 20), "Bearer wrong"
    settings = service_settings("memory", None, auth_disabled=None, api_keys={"k" * 20: "t"})
    async with service_client(settings) as client:
        created = await client.post(
            "/v1/runs",
            json={"run_id": "r", "objectives": OBJECTIVES},
            headers={"Authorization": good},
        )
        assert created.status_code == 201
        body = (
            {"scores": [[[0.0, 1.0], [1.0, 0.0]]]}
            if path.endswith("steps")
            else {"objectives": OBJECTIVES}
        )
        first_good = await client.post(
            path, json=body, headers=[("Authorization", good), ("Authorization", bad)]
        )
        assert first_good.status_code in (200, 201), first_good.text
        first_bad = await client.post(
            path, json=body, headers=[("Authorization", bad), ("Authorization", good)]
        )
        assert first_bad.status_code == 401
        assert first_bad.json()["field"] == "Authorization"


async def test_behind_a_proxy_prefix_too_credentials_come_before_the_body():
    """Served under a root path (a proxy's prefix), the gate still sees the API's routes."""
    import httpx

    from spard.service.http.app import create_app

    settings = service_settings("memory", None, auth_disabled=None, api_keys={"k" * 20: "t"})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, root_path="/spard")
        async with httpx.AsyncClient(transport=transport, base_url="http://spard.test") as client:
            for path in ("/spard/v1/runs", "/spard/v1/runs/r/steps"):
                answer = await asyncio.wait_for(client.post(path, content=stalled_body()), 10)
                assert (answer.status_code, answer.json()["field"]) == (401, "Authorization")


async def chunks(total: int, size: int = 256):
    body = b'{"objectives": ["a"], "run_id": "' + b"x" * total + b'"}'
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("path", ["/v1/runs", "/v1/runs/r/observations", "/v1/runs/r/steps"])
async def test_a_chunked_body_over_the_limit_is_413(path):
    settings = service_settings("memory", None, max_body_bytes=1000)
    async with service_client(settings) as client:
        await client.post("/v1/runs", json={"run_id": "r", "objectives": OBJECTIVES})
        answer = await client.post(path, content=chunks(2000))
        assert answer.status_code == 413, answer.text
        assert answer.json()["field"] == "body"
        # Under the limit, the same streamed form goes through to the route.
        assert (await client.post(path, content=chunks(10))).status_code != 413


async def test_a_refused_request_closes_its_connection():
    # Kept alive, a client trickling bytes after its 401/408/413 would hold the connection.
    settings = service_settings(
        "memory",
        None,
        auth_disabled=None,
        api_keys={"k" * 20: "t"},
        body_timeout_s=0.3,
        max_body_bytes=1000,
    )
    good = {"Authorization": "Bearer " + "k" * 20}
    async with service_client(settings) as client:
        refused = [
            await client.post("/v1/runs", content=stalled_body()),  # 401
            await client.post("/v1/runs", content=stalled_body(), headers=good),  # 408
            await client.post("/v1/runs", content=chunks(2000), headers=good),  # 413
        ]
        assert [answer.status_code for answer in refused] == [401, 408, 413]
        assert all(answer.headers["connection"] == "close" for answer in refused)
        created = await client.post("/v1/runs", json={"objectives": OBJECTIVES}, headers=good)
        assert "connection" not in created.headers


async def test_a_client_that_leaves_before_the_answer_is_not_counted_as_a_server_error():
    from prometheus_client import REGISTRY

    from spard.service.http.middleware import TimingMiddleware

    async def leaves(scope, receive, send):
        return  # what the gate does when the client disconnects mid-body

    async def fails(scope, receive, send):
        raise RuntimeError("boom")

    def count(status):
        labels = {"method": "POST", "route": "unmatched", "status": status}
        return REGISTRY.get_sample_value("spard_http_request_duration_seconds_count", labels) or 0

    scope = {"type": "http", "method": "POST", "path": "/v1/runs", "headers": []}
    before = count("499"), count("500")
    await TimingMiddleware(leaves)(scope, None, None)
    with pytest.raises(RuntimeError):
        await TimingMiddleware(fails)(scope, None, None)
    assert (count("499"), count("500")) == (before[0] + 1, before[1] + 1)
