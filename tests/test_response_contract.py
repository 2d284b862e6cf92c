"""Every response body matches the schema the OpenAPI document publishes for its route and
status, nothing undocumented included; those schemas are the documents of
``spard.service.protocol.documents``; and the SDK reads each answer as that same document."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import httpx
import numpy as np
import pytest
from conftest import service_client, service_settings
from jsonschema import Draft202012Validator
from pydantic import TypeAdapter

from spard.client import AsyncSpardClient
from spard.service.protocol import documents

pytestmark = pytest.mark.anyio
OBJECTIVES = ["a", "b"]
DOCUMENTS = [
    documents.RunSummary,
    documents.RunList,
    documents.StepResponse,
    documents.CommitResponse,
    documents.WeightsResponse,
    documents.HistoryPage,
    documents.ObserveResponse,
    documents.ErrorBody,
]


def openapi() -> dict[str, Any]:
    from spard.service import Settings
    from spard.service.http.app import create_app

    return create_app(Settings(auth_disabled=True)).openapi()


def closed(schema: Any) -> Any:
    """``schema`` with every object that lists its properties closed to other keys: a body
    conforms only if the service sends nothing it does not document."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copy = {key: closed(value) for key, value in schema.items()}
    if "properties" in copy and "additionalProperties" not in copy:
        copy["additionalProperties"] = False
    return copy


class Contract:
    """The published OpenAPI document, as a validator of real answers."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.components = closed(document["components"])

    def schema_for(self, method: str, path: str, status: int) -> dict[str, Any]:
        for template, operations in self.document["paths"].items():
            if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path):
                responses = operations[method.lower()]["responses"]
                assert str(status) in responses, f"{method} {path} answered {status}, undocumented"
                return responses[str(status)]["content"]["application/json"]["schema"]
        raise AssertionError(f"{path} is not in the OpenAPI document")

    def check(self, response: httpx.Response) -> Any:
        """The JSON of ``response``, once it has passed its documented schema."""
        request = response.request
        schema = self.schema_for(request.method, request.url.path, response.status_code)
        body = response.json()
        validator = Draft202012Validator({**schema, "components": self.components})
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
        assert not errors, (request.method, request.url.path, errors)
        return body


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract(openapi())


def without_null_defaults(schema: Any) -> Any:
    """FastAPI leaves ``"default": null`` out of what it publishes; nothing else differs."""
    if isinstance(schema, list):
        return [without_null_defaults(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {
        key: without_null_defaults(value)
        for key, value in schema.items()
        if not (key == "default" and value is None)
    }


def test_the_openapi_components_are_the_documents_schemas(contract):
    components = contract.document["components"]["schemas"]
    for document in DOCUMENTS:
        schema = TypeAdapter(document).json_schema(ref_template="#/components/schemas/{model}")
        schema = without_null_defaults(schema)
        for name, definition in schema.pop("$defs", {}).items():
            assert components[name] == definition, name
        assert components[document.__name__] == schema, document.__name__


async def test_every_endpoint_answers_its_documented_schema(client, contract):
    created = await client.post("/v1/runs", json={"run_id": "c", "objectives": OBJECTIVES})
    contract.check(created)
    scores = [[[1.0, 0.0], [0.0, 1.0]]]
    body = {"step": 0, "scores": scores, "return_advantages": True, "prompt_ids": ["p"]}
    contract.check(await client.post("/v1/runs/c/steps", json=body))
    for path in ["/v1/runs", "/v1/runs/c", "/v1/runs/c/history", "/v1/runs/c/weights"]:
        contract.check(await client.get(path))
    observations = {
        "observations": [
            {"step": 1, "group_id": 0, "rollout_index": r, "scores": {"a": r, "b": 1 - r}}
            for r in range(2)
        ]
    }
    contract.check(await client.post("/v1/runs/c/observations", json=observations))
    commit = await client.post("/v1/runs/c/steps/1/commit", json={"return_advantages": True})
    contract.check(commit)
    state = (await client.get("/v1/runs/c/state")).json()
    contract.check(await client.put("/v1/runs/c/state", json=state))
    for answer in (
        await client.get("/v1/runs/missing"),
        await client.post("/v1/runs/c/steps", json={"scores": []}),
        await client.post("/v1/runs/c/steps", content=b"{", headers=JSON),
        await client.post("/v1/runs", content=b'"\xff"', headers=JSON),
        await client.post("/v1/runs", json={"run_id": "c", "objectives": OBJECTIVES}),
        await client.post("/v1/runs", json={"objectives": OBJECTIVES, "colour": 1}),
    ):
        assert answer.status_code >= 400
        contract.check(answer)


JSON = {"content-type": "application/json"}


class Recorder(httpx.AsyncBaseTransport):
    """The SDK's transport to the app, keeping every answer it received."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.answers: list[httpx.Response] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.answers.append(response)
        return response

    def last(self) -> httpx.Response:
        return self.answers[-1]


def agrees(parsed: Any, document: dict[str, Any]) -> None:
    """Every field of an SDK object that the document also has holds the document's value
    (arrays element by element; weights (K,) by objective)."""
    shared = [f.name for f in dataclasses.fields(parsed) if f.name in document]
    assert len(shared) >= 4, (type(parsed).__name__, shared)
    for name in shared:
        value, expected = getattr(parsed, name), document[name]
        if isinstance(value, np.ndarray) and isinstance(expected, dict):
            assert dict(zip(parsed.objectives, value.tolist(), strict=True)) == expected, name
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, np.asarray(expected, dtype=value.dtype))
        else:
            assert value == expected, name


@pytest.fixture
async def sdk(store_kind, request):
    from spard.service import create_app

    redis = request.getfixturevalue("redis_server") if store_kind == "redis" else None
    app = create_app(service_settings(store_kind, redis))
    async with app.router.lifespan_context(app):
        recorder = Recorder(httpx.ASGITransport(app=app))
        # Observations go when flushed, in one request: the last answer is the whole report.
        client = AsyncSpardClient(
            "http://spard.test", transport=recorder, retries=0, flush_interval_s=3600
        )
        try:
            yield client, recorder
        finally:
            await client.aclose()


async def test_the_sdk_reads_every_answer_as_its_document(sdk, contract):
    client, recorder = sdk
    streaming = {"group_size": 2}
    run = await client.create_run(OBJECTIVES, run_id="s", streaming=streaming)
    agrees(run, contract.check(recorder.last()))
    outcome = await client.step("s", np.eye(2)[None], step=0, return_advantages=True)
    agrees(outcome, contract.check(recorder.last()))
    agrees(await client.get_run("s"), contract.check(recorder.last()))
    weights = await client.weights("s")
    agrees(weights, contract.check(recorder.last()))
    for rollout in range(2):
        await client.observe("s", "g", {"a": rollout, "b": 1 - rollout}, step=1)
    summary = await client.flush()
    report = contract.check(recorder.last())
    assert (summary.accepted, summary.duplicates) == (report["accepted"], report["duplicates"])
    assert summary.late == report["late"] == []
    committed = await client.commit("s", 1, return_advantages=True)
    document = contract.check(recorder.last())
    agrees(committed, document)
    assert committed.group_ids == document["prompt_ids"] == ["g"]
    history = await client.history("s")
    assert history == contract.check(recorder.last())["entries"]
    assert [entry["step"] for entry in history] == [0, 1]
    state = await client.export_state("s")
    agrees(await client.import_state("s", state), contract.check(recorder.last()))


async def test_the_limits_answers_are_documented_where_they_are_sent(contract, store_kind, request):
    """The request gate's 413 on bodies that are not steps, and the 409 of one open step too
    many, on the routes that send them, each naming its field."""
    redis = request.getfixturevalue("redis_server") if store_kind == "redis" else None
    settings = service_settings(store_kind, redis, max_body_bytes=4096, max_open_steps=1)
    async with service_client(settings) as client:
        create = {"run_id": "l", "objectives": OBJECTIVES}
        contract.check(await client.post("/v1/runs", json=create))
        state = (await client.get("/v1/runs/l/state")).json()
        padded = {**create, "run_id": "x" * 5000}
        for answer in (
            await client.post("/v1/runs", json=padded),
            await client.put("/v1/runs/l/state", json={**state, "padding": "x" * 5000}),
        ):
            assert (answer.status_code, answer.json()["field"]) == (413, "body")
            contract.check(answer)
        for step in (0, 1):  # step 1 would be a second open step
            one = {"step": step, "group_id": 0, "rollout_index": 0, "scores": {"a": 1, "b": 0}}
            answer = await client.post("/v1/runs/l/observations", json=one)
            contract.check(answer)
        assert (answer.status_code, answer.json()["field"]) == (409, "step")
