"""The 500s and validation gaps of #13.7, each answered with a clear 4xx naming the field."""

from __future__ import annotations

import json
import re

import msgpack
import pytest
from conftest import service_client, service_settings

import spard

pytestmark = pytest.mark.anyio


async def create(client, run_id="g"):
    answer = await client.post("/v1/runs", json={"run_id": run_id, "objectives": ["a", "b"]})
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize("key", [[1, 2], {"x": 1}])
async def test_a_msgpack_map_with_a_container_key_is_a_422(client, key):
    await create(client)
    body = msgpack.packb({"step": 0, "scores": b"", "shape": [0, 0, 0], (1,): 2}, use_bin_type=True)
    body = body.replace(b"\x91\x01", msgpack.packb(key))  # the key, as a real client could send
    answer = await client.post(
        "/v1/runs/g/steps", content=body, headers={"content-type": "application/msgpack"}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "body"


async def test_json_booleans_are_not_scores(client):
    await create(client)
    scores = [[[True, 0.5], [False, 0.25]]]
    answer = await client.post("/v1/runs/g/steps", json={"scores": scores})
    assert answer.status_code == 422
    assert answer.json()["field"] == "scores"
    fine = [[[1.0, 0.5], [0.0, 0.25]]]
    body = {"scores": fine, "return_advantages": True, "prompt_ids": ["true"]}
    assert (await client.post("/v1/runs/g/steps", json=body)).status_code == 200


@pytest.mark.parametrize(
    "names",
    [["cafe\u0301", "b"], ["a\u200b", "b"], ["a", "b\x00"]],
    ids=["nfd", "zero-width", "nul"],
)
def test_lookalike_objective_names_are_refused(names):
    with pytest.raises(spard.InputError, match="NFC-normalised") as caught:
        spard.init(names)
    assert caught.value.field == "objectives"


async def test_a_non_json_create_body_names_the_body(client):
    answer = await client.post(
        "/v1/runs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422
    assert answer.json()["field"] == "body"


async def test_huge_request_headers_get_431(client):
    answer = await client.get("/healthz", headers={"x-padding": "p" * 70_000})
    assert answer.status_code == 431
    assert answer.json()["field"] == "headers"


async def test_default_auth_follows_the_real_bind_not_spard_host():
    # The in-memory store with no keys and no explicit choice: local-only default. Served on a
    # non-loopback address anyway (uvicorn --host 0.0.0.0 ignores SPARD_HOST), it refuses.
    settings = service_settings("memory", None, auth_disabled=None)
    assert not settings.auth_required
    async with service_client(settings) as client:  # ASGI scope server: ("spard.test", 80)
        answer = await client.post("/v1/runs", json={"run_id": "x", "objectives": ["a"]})
        assert answer.status_code == 401
        assert answer.json()["field"] == "Authorization"


def test_openapi_has_no_dangling_references():
    from spard.service import Settings
    from spard.service.app import create_app

    document = create_app(Settings(auth_disabled=True)).openapi()
    text = json.dumps(document)
    referenced = set(re.findall(r"#/components/schemas/([A-Za-z0-9_]+)", text))
    assert referenced <= set(document["components"]["schemas"])
    assert '"$ref": "#/$defs/' not in text
