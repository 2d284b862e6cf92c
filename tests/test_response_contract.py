"""Every response body matches the response model the OpenAPI document publishes for it."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from spard.service.protocol.schemas import (
    CommitResponse,
    ErrorBody,
    HistoryPage,
    ObserveResponse,
    RunSummary,
    StepResponse,
    WeightsResponse,
)

pytestmark = pytest.mark.anyio
OBJECTIVES = ["a", "b"]


def conforms(model: type[BaseModel], body: dict) -> None:
    parsed = model.model_validate(body)
    # Nothing undocumented either: the model's fields are every key the service sent.
    assert set(body) <= set(model.model_fields), set(body) - set(model.model_fields)
    assert parsed is not None


async def test_every_endpoint_answers_its_documented_model(client):
    created = await client.post("/v1/runs", json={"run_id": "c", "objectives": OBJECTIVES})
    conforms(RunSummary, created.json())
    scores = [[[1.0, 0.0], [0.0, 1.0]]]
    step = await client.post(
        "/v1/runs/c/steps", json={"step": 0, "scores": scores, "return_advantages": True}
    )
    conforms(StepResponse, step.json())
    conforms(RunSummary, (await client.get("/v1/runs/c")).json())
    conforms(HistoryPage, (await client.get("/v1/runs/c/history")).json())
    conforms(WeightsResponse, (await client.get("/v1/runs/c/weights")).json())
    observations = {
        "observations": [
            {"step": 1, "group_id": 0, "rollout_index": r, "scores": {"a": r, "b": 1 - r}}
            for r in range(2)
        ]
    }
    observed = await client.post("/v1/runs/c/observations", json=observations)
    conforms(ObserveResponse, observed.json())
    commit = await client.post("/v1/runs/c/steps/1/commit", json={"return_advantages": True})
    conforms(CommitResponse, commit.json())
    state = (await client.get("/v1/runs/c/state")).json()
    conforms(RunSummary, (await client.put("/v1/runs/c/state", json=state)).json())
    for answer in (
        await client.get("/v1/runs/missing"),
        await client.post("/v1/runs/c/steps", json={"scores": []}),
        await client.post("/v1/runs", json={"run_id": "c", "objectives": OBJECTIVES}),
    ):
        assert answer.status_code >= 400
        conforms(ErrorBody, answer.json())
