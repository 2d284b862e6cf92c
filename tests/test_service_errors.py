"""Every malformed request gets a clear 4xx naming the field, and stored state is untouched."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from conftest import service_client, service_settings

from spard.service.protocol.wire import encode_step

pytestmark = pytest.mark.anyio
GOOD = [[[1, 0], [0, 1]], [[1, 1], [0, 0]]]  # (2, 2, 2)


@pytest.fixture
async def run(client):
    created = await client.post("/v1/runs", json={"run_id": "r", "objectives": ["a", "b"]})
    assert created.status_code == 201
    assert (
        await client.post("/v1/runs/r/steps", json={"step": 0, "scores": GOOD})
    ).status_code == 200
    return client


JSON_CASES = [
    (b"{not json", "body", "not valid JSON"),
    (b"NaN", "body", "not valid JSON"),
    (b'{"step": 1, "scores": [[[NaN, 1], [0, 1]]]}', "body", "not valid JSON"),
    (b"[1, 2]", "body", "must be an object"),
    (b'{"step": 1}', "scores", "scores is required"),
    (b'{"step": 1, "scores": [[[1, 0], [0, 1]]], "colour": 1}', "colour", "unknown field"),
    (b'{"step": -1, "scores": [[[1, 0], [0, 1]]]}', "step", "non-negative integer"),
    (b'{"step": true, "scores": [[[1, 0], [0, 1]]]}', "step", "non-negative integer"),
    (b'{"step": "1", "scores": [[[1, 0], [0, 1]]]}', "step", "non-negative integer"),
    (b'{"step": 1.5, "scores": [[[1, 0], [0, 1]]]}', "step", "non-negative integer"),
    (
        b'{"step": 1, "scores": [[[1, 0], [0, 1]]], "return_advantages": 1}',
        "return_advantages",
        "true or false",
    ),
    (b'{"step": 1, "scores": [[[1, 0], [0]]]}', "scores", "ragged"),
    (b'{"step": 1, "scores": [[["1", 0], [0, 1]]]}', "scores", "numbers or null"),
    (b'{"step": 1, "scores": [[[{}, 0], [0, 1]]]}', "scores", "numbers or null"),
    (b'{"step": 1, "scores": [[[1e999, 0], [0, 1]]]}', "body", "not valid JSON"),
    (b'{"step": 1, "scores": [[[1, 0, 1], [0, 1, 1]]]}', "scores", "K = 3"),
    (b'{"step": 1, "scores": [[[1, 0]]]}', "scores", "G = 1"),
    (b'{"step": 1, "scores": []}', "scores", "dimension"),
    (b'{"step": 1, "scores": 3}', "scores", "dimension"),
    (b'{"step": 1, "scores": [[[null, null], [null, null]]]}', "scores", "every entry is missing"),
    (
        b'{"step": 1, "scores": [[[1, 0], [0, 1]]], "prompt_ids": ["a", "b"]}',
        "prompt_ids",
        "1 strings",
    ),
    (b'{"step": 1, "scores": [[[1, 0], [0, 1]]], "prompt_ids": [true]}', "prompt_ids", "strings"),
]


@pytest.mark.parametrize(
    "body",
    [b'{"step": 0, "scores": [[1, 0], [0, 1]]}', b'{"step": 0, "scores": [[[1, 0]]]}'],
)
async def test_a_malformed_batch_is_refused_before_its_run_is_looked_up(run, body):
    """Scores wrong whatever the run (a rank, one rollout per prompt) are a 422 naming
    ``scores`` even for a run that does not exist: nothing of the run is read for them."""
    response = await run.post(
        "/v1/runs/missing/steps", content=body, headers={"content-type": "application/json"}
    )
    assert (response.status_code, response.json()["field"]) == (422, "scores"), response.text


async def test_only_steps_refused_against_their_run_count_as_rejected(run):
    from prometheus_client import REGISTRY

    def rejected() -> float:
        return REGISTRY.get_sample_value("spard_steps_total", {"outcome": "rejected"}) or 0.0

    before = rejected()
    one_rollout = await run.post("/v1/runs/r/steps", json={"step": 1, "scores": [[[1, 0]]]})
    assert (one_rollout.status_code, rejected()) == (422, before)  # malformed whatever the run
    wrong_k = await run.post("/v1/runs/r/steps", json={"step": 1, "scores": [[[1], [0]]]})
    assert (wrong_k.status_code, wrong_k.json()["field"]) == (422, "scores")
    assert rejected() == before + 1  # the run has 2 objectives


@pytest.mark.parametrize(("body", "field", "message"), JSON_CASES)
async def test_malformed_json_steps(run, body, field, message):
    before = (await run.get("/v1/runs/r/state")).json()
    response = await run.post(
        "/v1/runs/r/steps", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert message in response.json()["detail"]
    assert (await run.get("/v1/runs/r/state")).json() == before


def binary_header_with(**changes) -> bytes:
    body = bytearray(encode_step(np.array(GOOD, float), 1, return_advantages=False))
    if "magic" in changes:
        body[0:4] = changes["magic"]
    if "version" in changes:
        body[4] = changes["version"]
    if "truncate" in changes:
        body = body[: changes["truncate"]]
    return bytes(body)


BINARY_CASES = [
    (binary_header_with(truncate=10), "application/octet-stream", "body", "shorter than"),
    (binary_header_with(magic=b"XXXX"), "application/octet-stream", "body", "magic"),
    (binary_header_with(version=7), "application/octet-stream", "body", "version 7"),
    (binary_header_with(truncate=40), "application/octet-stream", "scores", "needs 32"),
    (
        encode_step(np.array(GOOD, float)[..., :1], 1, return_advantages=False),
        "application/octet-stream",
        "scores",
        "K = 1",
    ),
    (b"\xc1", "application/msgpack", "body", "not valid msgpack"),
    (
        msgpack.packb({"step": 1, "shape": [2, 2], "scores": b""}),
        "application/msgpack",
        "shape",
        "[N, G, K]",
    ),
    (
        msgpack.packb({"step": 1, "shape": [1, 2, 2], "scores": b"1234"}),
        "application/msgpack",
        "scores",
        "needs 16",
    ),
    (
        msgpack.packb({"step": 1, "shape": [1, 2, 2], "scores": [1, 2]}),
        "application/msgpack",
        "scores",
        "bytes",
    ),
]


@pytest.mark.parametrize(("body", "content_type", "field", "message"), BINARY_CASES)
async def test_malformed_binary_steps(run, body, content_type, field, message):
    response = await run.post(
        "/v1/runs/r/steps", content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert message in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/runs"),
        ("POST", "/v1/runs/r/steps"),
        ("POST", "/v1/runs/r/observations"),
        ("POST", "/v1/runs/r/steps/1/commit"),
        ("PUT", "/v1/runs/r/state"),
    ],
)
@pytest.mark.parametrize(
    "body", [b"{not json", b'"\xff"', b"\xff\xfe"], ids=["syntax", "utf8", "bom"]
)
async def test_a_body_that_is_not_json_has_one_answer(run, method, path, body):
    # Whichever parser met it (orjson in the codec and observations, FastAPI's for the rest,
    # which answered 400 for bytes that are not UTF-8): 422, field body, one message.
    headers = {"content-type": "application/json"}
    response = await run.request(method, path, content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "body"
    assert response.json()["detail"].startswith("body is not valid JSON: ")


async def test_unsupported_content_type_is_415(run):
    response = await run.post(
        "/v1/runs/r/steps", content=b"a=b", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.json()["field"] == "Content-Type"


async def test_size_limits_give_413(store_kind, request):
    redis = request.getfixturevalue("redis_server") if store_kind == "redis" else None
    settings = service_settings(store_kind, redis, max_body_bytes=2000, max_scores=100)
    async with service_client(settings) as client:
        await client.post("/v1/runs", json={"run_id": "r", "objectives": ["a", "b"]})
        too_many = await client.post(
            "/v1/runs/r/steps", json={"step": 0, "scores": np.ones((26, 2, 2)).tolist()}
        )
        assert too_many.status_code == 413
        assert too_many.json()["field"] == "scores"
        assert "limit is 100" in too_many.json()["detail"]
        long_ids = ["x" * 1500, "y" * 1500]  # 4 scores, but a body over 2000 bytes
        too_long = await client.post(
            "/v1/runs/r/steps", json={"step": 0, "scores": GOOD, "prompt_ids": long_ids}
        )
        assert too_long.status_code == 413
        assert too_long.json()["field"] == "body"

        async def chunks():
            for _ in range(100):
                yield b" " * 100

        streamed = await client.post(
            "/v1/runs/r/steps", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        binary = encode_step(np.ones((30, 2, 2)), 0, return_advantages=False)
        response = await client.post(
            "/v1/runs/r/steps", content=binary, headers={"content-type": "application/octet-stream"}
        )
        assert response.status_code == 413
        assert (await client.get("/v1/runs/r")).json()["last_step"] is None


CREATE_CASES = [
    ({"objectives": []}, "objectives"),
    ({"objectives": ["a", "a"]}, "objectives"),
    ({"objectives": ["a\n"]}, "objectives.0"),
    ({"objectives": "abc"}, "objectives"),
    ({"objectives": ["a"], "run_id": "bad id!"}, "run_id"),
    ({"objectives": ["a"], "run_id": "{tag}"}, "run_id"),
    ({"objectives": ["a"], "strategy": "best"}, "strategy"),
    ({"objectives": ["a"], "config": {"warmup": 0}}, "config.warmup"),
    ({"objectives": ["a"], "config": {"colour": 1}}, "config.colour"),
    ({"objectives": ["a"], "strategy": "saw", "config": {"strategy": "pawa"}}, "config.strategy"),
    ({"objectives": ["a", "b"], "prior_weights": [1, -1]}, "prior_weights"),
    ({"objectives": ["a", "b"], "prior_weights": {"a": 1}}, "prior_weights"),
    ({"objectives": ["a"], "config": {"saw_offsets": {"z": 1}}}, "config.saw_offsets"),
    ({"objectives": [f"o{k}" for k in range(65)]}, "objectives"),
    ({"objectives": ["a"], "extra": 1}, "extra"),
]


@pytest.mark.parametrize(("body", "field"), CREATE_CASES)
async def test_malformed_create_requests(client, body, field):
    response = await client.post("/v1/runs", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert response.json()["detail"]


PATH_CASES = [
    ("GET", "/v1/runs/bad%20id", "run_id"),
    ("GET", "/v1/runs/r/history?limit=0", "limit"),
    ("GET", "/v1/runs/r/history?after=x", "after"),
]


@pytest.mark.parametrize(("method", "path", "field"), PATH_CASES)
async def test_malformed_paths_and_queries(run, method, path, field):
    response = await run.request(method, path)
    assert response.status_code == 422
    assert response.json()["field"] == field


async def test_tenants_never_see_each_other(store_kind, request):
    redis = request.getfixturevalue("redis_server") if store_kind == "redis" else None
    settings = service_settings(
        store_kind, redis, auth_disabled=None, api_keys={"key-a": "alpha", "key-b": "beta"}
    )
    async with service_client(settings) as client:
        alpha = {"Authorization": "Bearer key-a"}
        beta = {"Authorization": "Bearer key-b"}
        body = {"run_id": "shared-name", "objectives": ["a", "b"]}
        assert (await client.post("/v1/runs", json=body, headers=alpha)).status_code == 201
        assert (await client.post("/v1/runs", json=body, headers=beta)).status_code == 201
        step = {"step": 0, "scores": GOOD}
        assert (
            await client.post("/v1/runs/shared-name/steps", json=step, headers=alpha)
        ).status_code == 200
        assert (await client.get("/v1/runs/shared-name", headers=beta)).json()["last_step"] is None
        private = {"run_id": "alpha-only", "objectives": ["a", "b"]}
        assert (await client.post("/v1/runs", json=private, headers=alpha)).status_code == 201
        # A state that alpha's run would accept, so beta's 404 comes from the lookup alone.
        state = (await client.get("/v1/runs/alpha-only/state", headers=alpha)).json()
        for method, path, kwargs in [
            ("GET", "/v1/runs/alpha-only", {}),
            ("GET", "/v1/runs/alpha-only/state", {}),
            ("GET", "/v1/runs/alpha-only/history", {}),
            ("POST", "/v1/runs/alpha-only/steps", {"json": step}),
            ("PUT", "/v1/runs/alpha-only/state", {"json": state}),
            ("DELETE", "/v1/runs/alpha-only", {}),
        ]:
            response = await client.request(method, path, headers=beta, **kwargs)
            assert response.status_code == 404, (method, path, response.text)
        own = await client.put("/v1/runs/alpha-only/state", json=state, headers=alpha)
        assert own.status_code == 200
        assert (await client.get("/v1/runs/alpha-only", headers=alpha)).status_code == 200
        missing = await client.get("/v1/runs/alpha-only")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = await client.get("/v1/runs/alpha-only", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.json()["field"] == "Authorization"
        assert (await client.get("/healthz")).status_code == 200
