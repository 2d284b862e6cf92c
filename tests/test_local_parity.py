"""Local mode is the service: every malformed request of the service tests, sent to
``SpardClient.local()``'s transport and to a real ``spard serve``, gets the same status, field
and message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client import REGISTRY
from test_service_errors import BINARY_CASES, CREATE_CASES, GOOD, JSON_CASES, PATH_CASES
from test_streaming import OBSERVATION_CASES

from spard.client import SpardClient
from spard.client.local import LocalTransport
from spard.service.protocol.wire import IDEMPOTENCY_HEADER
from tests.servers import ServiceProcess

pytestmark = pytest.mark.slow
JSON = {"content-type": "application/json"}

# (method, path, keyword arguments of httpx.request): each case of the service tests, and the
# ones that local mode once answered differently (before it ran the service's own app).
CASES: list[tuple[str, str, dict[str, Any]]] = [
    *[("POST", "/v1/runs/r/steps", {"content": body, "headers": JSON}) for body, *_ in JSON_CASES],
    *[
        ("POST", "/v1/runs/r/steps", {"content": body, "headers": {"content-type": kind}})
        for body, kind, *_ in BINARY_CASES
    ],
    *[("POST", "/v1/runs", {"json": body}) for body, _ in CREATE_CASES],
    *[(method, path, {}) for method, path, _ in PATH_CASES],
    *[
        (
            "POST",
            "/v1/runs/bad/observations",
            {"content": b'{"observations": [%s]}' % case, "headers": JSON}
            if isinstance(case, bytes)
            else {"json": {"observations": [case]}},
        )
        for case, _ in OBSERVATION_CASES
    ],
    ("POST", "/v1/runs/r/steps", {"json": {"scores": GOOD, "return_advantages": "yes"}}),
    ("POST", "/v1/runs/r/steps", {"json": {"scores": GOOD, "prompt_ids": ["only-one"]}}),
    ("POST", "/v1/runs", {"json": {"run_id": "x", "objectives": ["a"], "colour": "red"}}),
    ("POST", "/v1/runs", {"json": {"run_id": "r", "objectives": ["a", "b"]}}),
    ("GET", "/v1/runs/r/history?limit=-3", {}),
    ("GET", "/v1/runs/nope", {}),
    ("GET", "/v1/runs/nope/weights", {}),
    ("DELETE", "/v1/runs/nope", {}),
    ("PATCH", "/v1/runs/r", {}),
    ("POST", "/v1/runs/r/steps", {"content": b"a=b", "headers": {"content-type": "text/plain"}}),
    ("POST", "/v1/runs/r/steps/7/commit", {"json": {}}),
    ("POST", "/v1/runs/r/steps/x/commit", {"json": {}}),
    ("PUT", "/v1/runs/r/state", {"json": {"objectives": ["a"]}}),
    ("PUT", "/v1/runs/r/state", {"content": b"[", "headers": JSON}),
    ("POST", "/v1/runs/r/steps", {"json": {"scores": GOOD}, "headers": {IDEMPOTENCY_HEADER: ""}}),
    ("POST", "/v1/runs/bad/observations", {"json": {"observations": []}}),
]


@pytest.fixture(scope="module")
def both() -> Iterator[tuple[httpx.Client, httpx.Client]]:
    server = ServiceProcess(env={"SPARD_AUTH_DISABLED": "true"}).start()
    remote = httpx.Client(base_url=server.url)
    local = httpx.Client(transport=LocalTransport(), base_url="http://spard.local")
    try:
        for http in (remote, local):
            created = http.post("/v1/runs", json={"run_id": "r", "objectives": ["a", "b"]})
            assert created.status_code == 201, created.text
            assert http.post("/v1/runs/r/steps", json={"step": 0, "scores": GOOD}).is_success
            streaming = {"run_id": "bad", "objectives": ["a", "b", "c"]}
            assert http.post("/v1/runs", json={**streaming, "streaming": {"group_size": 4}})
        yield remote, local
    finally:
        local.close()
        remote.close()
        server.stop()


@pytest.mark.parametrize(("method", "path", "options"), CASES)
def test_local_mode_answers_like_the_server(both, method, path, options):
    remote, local = both
    expected = remote.request(method, path, **options)
    answered = local.request(method, path, **options)
    assert 400 <= expected.status_code < 500, (expected.status_code, expected.text)
    assert answered.status_code == expected.status_code, (answered.text, expected.text)
    assert answered.json() == expected.json()
    assert answered.headers.get("allow") == expected.headers.get("allow")


def test_local_and_remote_runs_match_after_the_same_steps(both):
    remote, local = both
    scores = np.random.default_rng(3).random((4, 2, 2)).tolist()
    for http in (remote, local):
        assert http.post("/v1/runs/r/steps", json={"step": 1, "scores": scores}).is_success
    states = [http.get("/v1/runs/r/state").json() for http in (remote, local)]
    assert states[0] == states[1]


def test_local_steps_answer_like_the_server(both):
    """A local step answers as a server's (both through the same front door): the same
    documents for an applied step with advantages and prompt ids, its replay, and a retry
    under the same Idempotency-Key."""
    remote, local = both
    scores = np.random.default_rng(4).random((2, 2, 2)).tolist()
    bodies = [
        {"step": 2, "scores": scores, "return_advantages": True, "prompt_ids": ["p", 7]},
        {"step": 2, "scores": scores, "return_advantages": True, "prompt_ids": ["p", 7]},
        {"scores": scores},
        {"scores": scores},
    ]
    key = {IDEMPOTENCY_HEADER: "retry-of-step-3"}
    for index, body in enumerate(bodies):
        headers = key if index >= 2 else {}
        expected = remote.post("/v1/runs/r/steps", json=body, headers=headers)
        answered = local.post("/v1/runs/r/steps", json=body, headers=headers)
        assert expected.status_code == answered.status_code == 200, answered.text
        assert answered.json() == expected.json()
        assert answered.headers["content-type"] == expected.headers["content-type"]
    assert answered.json()["replayed"] is True


def _served_steps() -> float:
    labels = {"method": "POST", "route": "/v1/runs/{run_id}/steps", "status": "200"}
    found = REGISTRY.get_sample_value("spard_http_request_duration_seconds_count", labels)
    return found or 0.0


def test_local_steps_pass_the_app_once():
    """A local step goes through the app's middleware like a server's: timed once, under the
    step route's label."""
    with SpardClient.local() as client:
        run = client.create_run(["a", "b"])
        before = _served_steps()
        for t in range(3):
            client.step(run.run_id, [[[1.0, 0.0], [0.0, 1.0]]], step=t)
        assert _served_steps() - before == 3
