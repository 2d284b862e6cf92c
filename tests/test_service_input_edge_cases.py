"""The 500s and validation gaps of #13.7, each answered with a clear 4xx naming the field."""

from __future__ import annotations

import json
import re

import msgpack
import numpy as np
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
    "names", [["a\u200b", "b"], ["a", "b\x00"], ["a\x85", "b"]], ids=["zero-width", "nul", "c1"]
)
def test_invisible_characters_in_objective_names_are_refused(names):
    with pytest.raises(spard.InputError, match="control or invisible") as caught:
        spard.init(names)
    assert caught.value.field == "objectives"


def test_objective_names_are_known_by_their_nfc_form():
    state = spard.init(["cafe\u0301", "b"], prior_weights={"cafe\u0301": 1.0, "b": 3.0})
    assert state.objectives == ("caf\u00e9", "b")
    np.testing.assert_allclose(state.prior_weights, [0.25, 0.75])
    with pytest.raises(spard.InputError, match="more than once"):
        spard.init(["caf\u00e9", "cafe\u0301"])
    config = spard.SpardConfig(strategy="saw", saw_offsets={"cafe\u0301": 3.0})
    assert spard.init(["caf\u00e9"], config).config.saw_offsets == {"caf\u00e9": 3.0}


async def test_streamed_scores_find_their_objective_in_any_normal_form(client):
    await client.post("/v1/runs", json={"run_id": "n", "objectives": ["caf\u00e9"]})
    body = {"step": 0, "group_id": 0, "scores": {"cafe\u0301": 1.0}}
    answer = await client.post("/v1/runs/n/observations", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 1


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
    from spard.service.http.app import create_app

    document = create_app(Settings(auth_disabled=True)).openapi()
    text = json.dumps(document)
    referenced = set(re.findall(r"#/components/schemas/([A-Za-z0-9_]+)", text))
    assert referenced <= set(document["components"]["schemas"])
    assert '"$ref": "#/$defs/' not in text
